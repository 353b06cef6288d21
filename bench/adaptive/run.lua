-- One bulk run against `espipe serve --capacity ...` for bench/adaptive:
--   lua5.4 bench/adaptive/run.lua URL SECONDS CONCURRENCY|auto BATCH_MB|auto [TRACE_FILE]
-- Indexes the benchmark document (bench/bulk/docs.lua) into a fresh 6-shard
-- index for SECONDS, then closes the indexer (what is in flight is
-- acknowledged and counted, and the elapsed time includes it). With a trace
-- file, the indexer's concurrency and batch size are written there once a
-- second ("t c batch_bytes reason_c | reason_b": why each value last changed). Prints:
--   concurrency batch docs elapsed_s docs_per_s retried_items retried_pct
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/5.4/?.so;" .. package.cpath
local gen = dofile("bench/bulk/docs.lua")

local url, seconds, conc, batch, trace_path = arg[1], tonumber(arg[2]), arg[3], arg[4], arg[5]
local MB = 1024 * 1024
local client = require("espipe.client").new{ hosts = { url }, max_inflight = 64 }
local index = "bench_adaptive"
client.indices:delete{ index = index, ignore_unavailable = true }
assert(client.indices:create{ index = index, body = { settings = { index = { number_of_shards = 6 } } } })

local opts = { index = index, batch_docs = 1e9, filter_path = false,
               concurrency = conc == "auto" and "auto" or tonumber(conc),
               batch_bytes = batch == "auto" and "auto" or math.floor(tonumber(batch) * MB) }
local bi = client:bulk_indexer(opts)
local trace = trace_path and assert(io.open(trace_path, "w"))
local t0 = client:now()
local next_sample, i = t0, 0
while true do
  for _ = 1, 1000 do
    i = i + 1
    bi:index(gen.doc(i))
  end
  local now = client:now()
  if now - t0 >= seconds then break end
  if trace and now >= next_sample then
    local st = bi.adaptive and bi.adaptive:state()
    trace:write(string.format("%.1f %d %d %s | %s\n", now - t0, bi.concurrency, bi.batch_bytes,
      st and st.concurrency_reason or "fixed", st and st.batch_reason or "fixed"))
    next_sample = next_sample + 1
  end
end
local st = bi:close()
if trace then trace:close() end
assert(st.failed == 0, "documents failed")
client.indices:delete{ index = index }
io.write(string.format("%s %s %d %.2f %.0f %d %.2f\n", conc, batch, st.ok, st.elapsed, st.ok / st.elapsed,
  st.retried, 100 * st.retried / math.max(1, st.ok)))
