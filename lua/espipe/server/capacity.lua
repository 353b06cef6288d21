-- A capacity model of a loaded cluster for the dev server (--capacity SPEC),
-- so batch size, concurrency and pre-sorting show up as throughput:
--   each node works through bulk work one request at a time at docs_per_s,
--   plus per_request_ms for every (sub-)request it handles and per_shard_ms
--   for every distinct shard a request touches on it; items for shards held
--   by other nodes are forwarded (hop_ms more latency, and a sub-request on
--   the other node); a node holds at most `queue` shard-level write tasks not
--   yet completed, and rejects the items of a shard task beyond that with
--   es_rejected_execution_exception 429s, like the write thread pool.
-- A request's response waits until the work of every node it touched is done
-- (each node's busy-until time), so queueing shows up as latency first.
-- Pure Lua, time passed in: the handler sleeps until `finish` says. No random
-- draws: the same requests at the same times get the same answers.
local M = {}

local KEYS = {
  docs_per_s = "positive", per_request_ms = "non-negative", per_shard_ms = "non-negative",
  hop_ms = "non-negative", queue = "count", nodes = "count",
  change_after_s = "non-negative", change_factor = "positive",
}
local DEFAULTS = { docs_per_s = 40000, per_request_ms = 3, per_shard_ms = 1.5, hop_ms = 1, queue = 200,
                   change_factor = 1 }

local function known_keys()
  local known = {}
  for k in pairs(KEYS) do known[#known + 1] = k end
  table.sort(known)
  return table.concat(known, ", ")
end

-- parse("docs_per_s=40000,queue=200") -> config with defaults | nil, message
function M.parse(spec)
  if type(spec) ~= "string" then return nil, "spec must be a string" end
  local out = {}
  for k, v in pairs(DEFAULTS) do out[k] = v end
  for item in spec:gmatch("[^,]+") do
    local key, value = item:match("^%s*([%w_]+)%s*=%s*(.-)%s*$")
    if not key then return nil, "expected key=value, got '" .. item .. "'" end
    local kind = KEYS[key]
    if not kind then return nil, "unknown key '" .. key .. "' (known: " .. known_keys() .. ")" end
    local n = tonumber(value)
    local ok = n and ((kind == "positive" and n > 0) or (kind == "non-negative" and n >= 0)
      or (kind == "count" and n >= 1 and n == math.floor(n)))
    if not ok then
      local want = kind == "count" and "an integer >= 1" or kind == "positive" and "a number > 0" or "a number >= 0"
      return nil, key .. " must be " .. want .. ", got '" .. value .. "'"
    end
    out[key] = n
  end
  return out
end

local Model = {}
Model.__index = Model

local function new_node()
  return { busy_until = 0, tasks = {}, rejected = 0, completed = 0, largest = 0, docs = 0,
           requests = 0, busy_seconds = 0 }
end

-- new(config, node_count)
function M.new(cfg, node_count)
  local self = setmetatable({ cfg = cfg, nodes = {}, started = nil }, Model)
  for i = 0, (node_count or cfg.nodes or 1) - 1 do self.nodes[i] = new_node() end
  return self
end

-- documents per second per node at time t (after change_after_s the model's
-- capacity is multiplied by change_factor: other tenants start indexing)
function Model:rate(t)
  local c = self.cfg
  if c.change_after_s and self.started and t - self.started >= c.change_after_s then
    return c.docs_per_s * c.change_factor
  end
  return c.docs_per_s
end

-- shard tasks of `node` not completed at t (drops the completed ones)
local function pending(node, t)
  local tasks, kept = node.tasks, 0
  for i = 1, #tasks do
    local e = tasks[i]
    if e > t then
      kept = kept + 1
      tasks[kept] = e
    else
      node.completed = node.completed + 1
    end
  end
  for i = #tasks, kept + 1, -1 do tasks[i] = nil end
  return kept
end

local Plan = {}
Plan.__index = Plan

-- A bulk request arriving at node `coord` at time t.
function Model:begin(coord, t)
  if not self.started then self.started = t end
  return setmetatable({ model = self, coord = coord, t = t, seen = {}, new_tasks = {}, rejected = 0 }, Plan)
end

M.REJECTION = { type = "es_rejected_execution_exception",
  reason = "rejected execution of primary operation on the write thread pool: queue capacity reached "
    .. "(espipe serve --capacity)" }

-- Whether the items for `shard` (a table with .node) may enter this node's
-- write queue; decided once per shard and request, as one shard task.
function Plan:admit(shard)
  local d = self.seen[shard]
  if d == nil then
    local n = shard.node
    local node = self.model.nodes[n]
    local queued = pending(node, self.t) + (self.new_tasks[n] or 0)
    d = queued < self.model.cfg.queue
    if d then
      self.new_tasks[n] = (self.new_tasks[n] or 0) + 1
    else
      node.rejected = node.rejected + 1
    end
    self.seen[shard] = d
  end
  if not d then self.rejected = self.rejected + 1 end
  return d
end

-- per_shard: shard -> documents written. Books the work on each node and
-- returns the time the response is due.
function Plan:finish(per_shard)
  local m, cfg, t, coord = self.model, self.model.cfg, self.t, self.coord
  local shards, docs = {}, {}
  for shard, count in pairs(per_shard) do
    local n = shard.node
    shards[n] = (shards[n] or 0) + 1
    docs[n] = (docs[n] or 0) + count
  end
  local rate = m:rate(t)
  local done = t
  local cn = m.nodes[coord]
  if cn and not shards[coord] then
    -- the coordinating node parses and splits the request even if it holds none of it
    local start = math.max(t, cn.busy_until)
    cn.busy_until = start + cfg.per_request_ms / 1000
    cn.busy_seconds = cn.busy_seconds + cfg.per_request_ms / 1000
    done = cn.busy_until
  end
  for n, s in pairs(shards) do
    local node = m.nodes[n]
    local hop = n ~= coord and cfg.hop_ms / 1000 or 0
    local work = cfg.per_request_ms / 1000 + s * cfg.per_shard_ms / 1000 + docs[n] / rate
    local start = math.max(t + hop, node.busy_until)
    node.busy_until = start + work
    node.busy_seconds = node.busy_seconds + work
    node.requests = node.requests + 1
    node.docs = node.docs + docs[n]
    local tasks = node.tasks
    for _ = 1, s do tasks[#tasks + 1] = node.busy_until end
    if #tasks > node.largest then node.largest = #tasks end
    done = math.max(done, node.busy_until + hop)
  end
  return done
end

-- The write thread pool and indexing totals of node n at time t, shaped
-- like _nodes/stats.
function Model:node_stats(n, t)
  local node = self.nodes[n]
  local queued = pending(node, t)
  return {
    thread_pool = { write = { threads = 1, queue = queued, active = queued > 0 and 1 or 0,
                              rejected = node.rejected, largest = node.largest, completed = node.completed } },
    indices = { indexing = { index_total = node.docs, index_time_in_millis = math.floor(node.busy_seconds * 1000) } },
  }
end

-- The server's model: made from opts.capacity on the first request (the
-- state lives in the one nginx worker, like the cluster's); false without.
local server_model
function M.server_model(opts, node_count)
  if server_model == nil then
    local cfg = opts.capacity and M.parse(opts.capacity)
    server_model = cfg and M.new(cfg, node_count) or false
  end
  return server_model
end

-- The plan for a bulk request arriving now at `coord`, or nil without a model.
function M.plan(opts, node_count, coord)
  local m = M.server_model(opts, node_count)
  if not m then return nil end
  ngx.update_time()
  return m:begin(coord, ngx.now())
end

-- Holds a bulk response until the model's due time. The response's buffer
-- is shared by all requests (espipe.server.api_bulk), so its bytes move to
-- a buffer of this response's own before the handler yields.
function M.respond_at(due, status, resp)
  local own = require("string.buffer").new()
  own:put(resp[2]:get())
  resp[2], resp.free = own, true
  ngx.update_time()
  local wait = due - ngx.now()
  if wait > 0 then ngx.sleep(wait) end
  return status, resp
end

-- GET _nodes/stats/...: each node's write thread pool and indexing totals
-- (zeros without a model).
function M.nodes_stats(opts, node_count)
  local m = M.server_model(opts, node_count) or M.new({ queue = 0 }, node_count)
  local nodes = {}
  for i = 0, node_count - 1 do
    local st = m:node_stats(i, ngx.now())
    st.name = "espipe-" .. i
    nodes["espipe-node-" .. i] = st
  end
  return 200, { _nodes = { total = node_count, successful = node_count, failed = 0 },
                cluster_name = "espipe", nodes = nodes }
end

return M
