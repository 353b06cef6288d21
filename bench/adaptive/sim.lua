-- The controller against the capacity model in simulated time (no server,
-- no client CPU): what the real runs of run.sh measure, without the noise.
--   lua5.4 bench/adaptive/sim.lua CAPACITY_SPEC SECONDS CONC|auto BATCH_MB|auto [trace]
-- Requests of BATCH bytes (360-byte documents spread over 6 shards, 2 a
-- node, coordinators round-robin) go out as slots free; a rejected item is
-- re-sent in a later request, as the indexer does. At the end what is in
-- flight is drained and counted, elapsed time included (as run.lua's close()).
-- CLIENT_DOCS_PER_S=N: the client builds batches at that rate. Prints:
--   conc batch docs elapsed_s docs_per_s retried retried_pct
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
local capacity = require("espipe.server.capacity")
local adaptive = require("espipe.client.adaptive")

local spec, seconds, conc, batch, trace = arg[1], tonumber(arg[2]), arg[3], arg[4], arg[5]
local MB, DOC, SHARDS = 1024 * 1024, 360, 6
local cfg = assert(capacity.parse(spec))
local nodes = cfg.nodes or 3
local model = capacity.new(cfg, nodes)
local shards = {}
for s = 1, SHARDS do shards[s] = { node = (s - 1) % nodes } end
local t = 0
local ctl = adaptive.new { concurrency = conc == "auto" and "auto" or tonumber(conc),
  batch_bytes = batch == "auto" and "auto" or math.floor(tonumber(batch) * MB), now = function() return t end }

local inflight = {} -- { due =, docs =, bytes =, sent =, rejected = }
local ok, retried, backlog, coord = 0, 0, 0, 0
local function send()
  local bytes = ctl:batch_bytes()
  local docs = math.floor(bytes / DOC)
  local plan = model:begin(coord, t)
  coord = (coord + 1) % nodes
  local per_shard, rejected = {}, 0
  for i = 1, docs do
    local s = shards[(i - 1) % SHARDS + 1]
    if plan:admit(s) then per_shard[s] = (per_shard[s] or 0) + 1 else rejected = rejected + 1 end
  end
  inflight[#inflight + 1] = { due = plan:finish(per_shard), docs = docs, bytes = bytes, sent = t, rejected = rejected }
end

local out = trace and assert(io.open(trace, "w"))
local next_sample = 0
-- CLIENT_DOCS_PER_S: the client builds one batch at a time at that rate (the
-- next one from when the last went out) and sends it when a slot is free,
-- as the indexer does; unset: batches are ready at once
local client_rate = tonumber(os.getenv("CLIENT_DOCS_PER_S") or "")
local ready_at = 0
local function arrive(r)
  t = math.max(t, r.due)
  ok = ok + r.docs - r.rejected
  retried = retried + r.rejected
  backlog = backlog + r.rejected
  ctl:on_response { rtt = t - r.sent, docs = r.docs, bytes = r.bytes, rejected_items = r.rejected, status = 200 }
end
while t < seconds do
  while #inflight < ctl:concurrency() and ready_at <= t do
    send()
    if client_rate then ready_at = t + math.floor(ctl:batch_bytes() / DOC) / client_rate end
  end
  table.sort(inflight, function(a, b) return a.due < b.due end)
  if #inflight < ctl:concurrency() and (#inflight == 0 or ready_at < inflight[1].due) then
    t = ready_at
  else
    arrive(table.remove(inflight, 1))
  end
  while out and t >= next_sample do
    out:write(string.format("%.1f %d %d\n", next_sample, ctl:concurrency(), ctl:batch_bytes()))
    next_sample = next_sample + 1
  end
end
if out then out:close() end
-- close(): what is in flight is acknowledged and counted, its drain timed (as run.lua measures)
for _, r in ipairs(inflight) do
  t = math.max(t, r.due)
  ok, retried = ok + r.docs - r.rejected, retried + r.rejected
end
io.write(string.format("%s %s %d %.2f %.0f %d %.2f\n", conc, batch, ok, t, ok / t, retried, 100 * retried / ok))
