-- Ship events from nginx workers to Elasticsearch.
--
--   init_worker_by_lua_block { require("espipe.ngx.log_shipper").start{ hosts = {...}, index = "logs" } }
--   log_by_lua_block         { require("espipe.ngx.log_shipper").push{ status = ngx.status, ... } }
--
-- push() does no I/O (cosockets are off in the log phase): it encodes the
-- event with the C core and queues it in the worker. A timer drains the queue
-- through the bulk indexer on cosockets, so batching, retries with backoff,
-- per-item errors and the dead letter are the client's. The queue is bounded
-- by max_queue_docs and max_queue_bytes; when full, push() refuses the event,
-- counts it in stats().dropped and logs the running count (at most once per
-- log_interval seconds) — an event is never dropped silently.
local json = require "espipe.json"

local ngx = ngx
local type, pairs, pcall, tostring = type, pairs, pcall, tostring

local M = {}

local DEFAULTS = {
  index = "logs",
  flush_interval = 1,          -- seconds between timer drains
  batch_docs = 1000,
  batch_bytes = 1024 * 1024,
  concurrency = 2,
  retries = 5,
  max_queue_docs = 10000,
  max_queue_bytes = 8 * 1024 * 1024,
  log_interval = 5,
}

local cfg
local queue, head, tail, queued_bytes = {}, 1, 0, 0
local running = false
local counters = { pushed = 0, dropped = 0, shipped = 0, failed = 0, retried = 0, drains = 0, errors = 0 }
local last_drop_log, drops_since_log = 0, 0

local function queued() return tail - head + 1 end

local drain

local function schedule_now()
  if not running then
    local ok, err = ngx.timer.at(0, drain)
    if not ok then ngx.log(ngx.ERR, "espipe log shipper: cannot start a drain timer: ", err) end
  end
end

local function ship_queue()
  local client = require("espipe.client").new{
    hosts = cfg.hosts, auth = cfg.auth, tls = cfg.tls, timeout = cfg.timeout,
  }
  local indexer = client:bulk_indexer{
    index = cfg.index, batch_docs = cfg.batch_docs, batch_bytes = cfg.batch_bytes,
    concurrency = cfg.concurrency, retries = cfg.retries, dead_letter = cfg.dead_letter,
    on_error = function(item)
      ngx.log(ngx.ERR, "espipe log shipper: event failed after ", item.attempts, " attempt(s): ",
              tostring(item.status), " ", tostring(item.type), ": ", tostring(item.reason))
    end,
  }
  -- Events pushed while this drain yields are picked up by the same loop.
  while head <= tail do
    local line = queue[head]
    queue[head] = nil
    head = head + 1
    queued_bytes = queued_bytes - #line
    indexer:index(line)
  end
  local stats = indexer:close()
  counters.shipped = counters.shipped + stats.ok
  counters.failed = counters.failed + stats.failed
  counters.retried = counters.retried + (stats.retried or 0)
end

function drain(premature)
  if running or queued() == 0 then return end
  running = true
  counters.drains = counters.drains + 1
  local ok, err = pcall(ship_queue)
  running = false
  if not ok then
    counters.errors = counters.errors + 1
    ngx.log(ngx.ERR, "espipe log shipper: drain failed: ", tostring(err))
  end
  if not premature and queued() >= cfg.batch_docs then schedule_now() end
end

-- start{ hosts=, index=, auth=, tls=, flush_interval=, batch_docs=, batch_bytes=,
--        concurrency=, retries=, dead_letter=, max_queue_docs=, max_queue_bytes= }
function M.start(opts)
  if type(opts) ~= "table" then error("log_shipper.start expects an options table", 2) end
  if type(opts.hosts) ~= "table" and type(opts.hosts) ~= "string" then
    error("log_shipper.start needs hosts", 2)
  end
  local c = {}
  for k, v in pairs(DEFAULTS) do c[k] = v end
  for k, v in pairs(opts) do
    if DEFAULTS[k] == nil and k ~= "hosts" and k ~= "auth" and k ~= "tls" and k ~= "timeout"
       and k ~= "dead_letter" then
      error("log_shipper.start: unknown option '" .. tostring(k) .. "'", 2)
    end
    c[k] = v
  end
  if type(c.hosts) == "string" then c.hosts = { c.hosts } end
  cfg = c
  local ok, err = ngx.timer.every(cfg.flush_interval, drain)
  if not ok then error("log_shipper.start: cannot start the flush timer: " .. tostring(err), 2) end
end

-- push(event) -> true | false, "queue full". event: a table, or a JSON object text.
function M.push(event)
  if not cfg then error("log_shipper.push before log_shipper.start", 2) end
  local line = event
  if type(event) ~= "string" then line = json.encode(event) end
  counters.pushed = counters.pushed + 1
  if queued() >= cfg.max_queue_docs or queued_bytes + #line > cfg.max_queue_bytes then
    counters.dropped = counters.dropped + 1
    drops_since_log = drops_since_log + 1
    local t = ngx.now()
    if t - last_drop_log >= cfg.log_interval then
      ngx.log(ngx.ERR, "espipe log shipper: queue full (", queued(), " events, ", queued_bytes,
              " bytes): dropped ", drops_since_log, " event(s), ", counters.dropped, " in all")
      last_drop_log, drops_since_log = t, 0
    end
    return false, "queue full"
  end
  tail = tail + 1
  queue[tail] = line
  queued_bytes = queued_bytes + #line
  if queued() >= cfg.batch_docs then schedule_now() end
  return true
end

-- Counters of this worker: pushed, dropped, shipped, failed, retried, drains,
-- errors, queued, queued_bytes, draining.
function M.stats()
  local s = {}
  for k, v in pairs(counters) do s[k] = v end
  s.queued, s.queued_bytes, s.draining = queued(), queued_bytes, running
  return s
end

return M
