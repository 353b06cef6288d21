-- Ship events from nginx workers to Elasticsearch.
--
--   init_worker_by_lua_block { require("espipe.ngx.log_shipper").start{ hosts = {...}, index = "logs" } }
--   log_by_lua_block         { require("espipe.ngx.log_shipper").push{ status = ngx.status, ... } }
--
-- push() does no network I/O (cosockets are off in the log phase): it
-- encodes the event with the C core, gives it an _id (so a batch sent twice
-- indexes each event once) and queues it in the worker. A timer drains the
-- queue through the bulk indexer on cosockets, in chunks of batch_docs x
-- concurrency events.
--
-- Without a spool, the queue is bounded by max_queue_docs and
-- max_queue_bytes; when full, push() refuses the event, counts it in
-- stats().dropped and logs the running count (at most once per log_interval
-- seconds); an event still failing after retry_for/retries, or of a batch
-- the indexer gave up on (a cluster that never answered), is logged and
-- counted in stats().failed.
--
-- With spool_dir, each worker keeps an on-disk spool (espipe.ngx.spool): a
-- chunk whose events still fail with a retryable error (connection refused,
-- timeout, 429, 503, 5xx) after retry_for/retries, or that the indexer gave
-- up on, goes to the spool instead, and so does the memory queue when full; while anything is spooled,
-- new events are appended behind it, and the timer replays the spool oldest
-- first when the cluster answers again (backing off up to 5 s between
-- attempts). A worker that stops (nginx -s quit/reload) writes its memory
-- queue to the spool; the next worker with the same number replays it. The
-- spool holds at most spool_max_bytes: past that, its oldest file is
-- removed and its events are counted in stats().spool_dropped and logged.
-- Events rejected for good (a mapping error) are logged, counted in
-- stats().failed and written to dead_letter when it is a path.
local json = require "espipe.json"

local ngx = ngx
local type, pairs, pcall, tostring, floor = type, pairs, pcall, tostring, math.floor

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
  spool_max_bytes = 256 * 1024 * 1024,
  spool_file_bytes = 4 * 1024 * 1024,
}
local OTHER_KEYS = { hosts = true, auth = true, tls = true, timeout = true, dead_letter = true, spool_dir = true,
                     retry_for = true }
local MAX_BACKOFF = 5

local cfg, spool
local queue, head, tail, queued_bytes = {}, 1, 0, 0
local running = false
local counters = { pushed = 0, dropped = 0, shipped = 0, failed = 0, retried = 0, drains = 0, errors = 0,
                   spooled = 0, replayed = 0 }
local last_drop_log, drops_since_log, last_spool_drops = 0, 0, 0
local id_prefix, id_seq = "", 0
local backoff, next_try = 0, 0
-- On a reload the worker this one replaces spools its memory queue as it
-- exits: look for such files for a while after the start.
local RESCAN_FOR = 60
local rescan_until = 0

local function queued() return tail - head + 1 end

local drain

local function schedule_now()
  if not running then
    local ok, err = ngx.timer.at(0, drain)
    if not ok then ngx.log(ngx.ERR, "espipe log shipper: cannot start a drain timer: ", err) end
  end
end

-- Every line is "<_id>\t<event JSON>" in memory and in the spool (a line
-- cut short by a crash may have no id: it is sent as it is).
local function split(line)
  local tab = line:find("\t", 1, true)
  if not tab then return nil, line end
  return line:sub(1, tab - 1), line:sub(tab + 1)
end

local function slice(list, from, to)
  local out = {}
  for i = from, to or #list do out[#out + 1] = list[i] end
  return out
end

local function retryable(item)
  local s = item.status
  return s == nil or s == 0 or s == 429 or s >= 500 or item.type == "es_rejected_execution_exception"
end

local function take_memory(n)
  local out = {}
  while head <= tail and #out < n do
    local line = queue[head]
    queue[head] = nil
    head = head + 1
    queued_bytes = queued_bytes - #line
    out[#out + 1] = line
  end
  return out
end

local function log_spool_drops()
  if spool and spool.dropped > last_spool_drops then
    ngx.log(ngx.ERR, "espipe log shipper: spool over spool_max_bytes: dropped ", spool.dropped - last_spool_drops,
            " oldest event(s), ", spool.dropped, " in all")
    last_spool_drops = spool.dropped
  end
end

local function dead_letter(item)
  if type(cfg.dead_letter) ~= "string" then return end
  local f = require("espipe.pipeline.private_file").open(cfg.dead_letter, "ab")
  if not f then return end
  f:write(item.record)
  f:close()
end

-- Sends lines; -> the lines that failed with a retryable error or were
-- never settled (the indexer stopped: the cluster refuses connections, or a
-- 401) in their order when a spool will take them, else {} (they were
-- logged and counted as failed). Each line's position is its token.
local function ship(client, lines)
  local again, settled = {}, {}
  local indexer, ierr = client:bulk_indexer{
    index = cfg.index, batch_docs = cfg.batch_docs, batch_bytes = cfg.batch_bytes,
    concurrency = cfg.concurrency, retries = cfg.retries, retry_for = cfg.retry_for,
    max_errors = "100%", -- a failed event is logged or spooled; the shipper never gives up
    dead_letter = not spool and cfg.dead_letter or nil,
    on_batch = function(b)
      for _, t in ipairs(b.tokens) do settled[t] = true end
    end,
    on_error = function(item)
      local id = item.action:match('"_id":"([^"]+)"')
      if spool and id and retryable(item) then
        again[id] = true
        return
      end
      ngx.log(ngx.ERR, "espipe log shipper: event failed after ", item.attempts, " attempt(s): ",
              tostring(item.status), " ", tostring(item.type), ": ", tostring(item.reason))
      if spool then dead_letter(item) end
    end,
  }
  if not indexer then -- its dead letter cannot be opened (only used without a spool)
    ngx.log(ngx.ERR, "espipe log shipper: events lost: ", tostring(ierr))
    counters.errors = counters.errors + 1
    counters.failed = counters.failed + #lines
    return {}
  end
  local meta = {}
  local ok, err = pcall(function()
    for i = 1, #lines do
      local id, event = split(lines[i])
      meta.id, meta.token = id, i
      if not indexer:index(event, meta) then return end -- stopped: see close()
    end
  end)
  local stats, halt = indexer:close()
  if not ok or halt then
    ngx.log(ngx.ERR, "espipe log shipper: ", spool and "spooling: " or "events lost: ", tostring(halt or err))
    counters.errors = counters.errors + 1
  end
  local out, n_again, unsettled = {}, 0, 0
  for i = 1, #lines do
    local id = split(lines[i])
    local retry = id and again[id]
    if retry then n_again = n_again + 1 end
    if not settled[i] then unsettled = unsettled + 1 end
    if spool and (retry or not settled[i]) then out[#out + 1] = lines[i] end
  end
  counters.shipped = counters.shipped + stats.ok
  counters.failed = counters.failed + stats.failed - n_again + (spool and 0 or unsettled)
  counters.retried = counters.retried + (stats.retried or 0)
  return out
end

local function concat(a, b)
  for i = 1, #b do a[#a + 1] = b[i] end
  return a
end

local function spool_memory()
  local lines = take_memory(queued())
  for i = 1, #lines do spool:append(lines[i]) end
  counters.spooled = counters.spooled + #lines
end

-- One file of the spool, chunk by chunk; false when the cluster failed again.
local function replay(client, chunk)
  local entry, lines = spool:oldest()
  local i = 1
  while i <= #lines do
    local part = slice(lines, i, math.min(#lines, i + chunk - 1))
    local failed = ship(client, part)
    counters.replayed = counters.replayed + #part - #failed
    if #failed > 0 then
      spool:finish(entry, concat(failed, slice(lines, i + #part)))
      return false
    end
    i = i + #part
  end
  spool:finish(entry, nil)
  return true
end

local client -- one per worker: it remembers that the cluster answered (a refusal is then a restart)

local function ship_all()
  client = client or require("espipe.client").new{
    hosts = cfg.hosts, auth = cfg.auth, tls = cfg.tls, timeout = cfg.timeout,
  }
  local chunk = cfg.batch_docs * cfg.concurrency
  if spool and spool:empty() and ngx.now() < rescan_until then spool:rescan() end
  -- Events pushed while this drain yields are picked up by the same loop.
  while not ngx.worker.exiting() do
    if spool and not spool:empty() then
      if not replay(client, chunk) then return false end
    elseif queued() > 0 then
      local failed = ship(client, take_memory(chunk))
      if #failed > 0 then
        local lines = concat(failed, take_memory(queued()))
        spool:prepend(lines)
        counters.spooled = counters.spooled + #lines
        return false
      end
    else
      return true
    end
  end
  return true
end

function drain(premature)
  if premature or ngx.worker.exiting() then
    if spool and not running then spool_memory(); spool:close() end
    return
  end
  if running or (queued() == 0 and (not spool or (spool:empty() and ngx.now() >= rescan_until))) then return end
  if ngx.now() < next_try then return end
  running = true
  counters.drains = counters.drains + 1
  local ok, res = pcall(ship_all)
  running = false
  if not ok then
    counters.errors = counters.errors + 1
    ngx.log(ngx.ERR, "espipe log shipper: drain failed: ", tostring(res))
  end
  log_spool_drops()
  if ok and res then
    backoff = 0
  else -- the cluster is not answering: wait longer before the next replay
    backoff = math.min(MAX_BACKOFF, backoff > 0 and backoff * 2 or cfg.flush_interval)
    next_try = ngx.now() + backoff
  end
  if ngx.worker.exiting() and spool then spool_memory(); spool:close() return end
  if ok and res and queued() >= cfg.batch_docs then schedule_now() end
end

local function check_options(opts)
  if type(opts) ~= "table" then error("log_shipper.start expects an options table", 3) end
  if type(opts.hosts) ~= "table" and type(opts.hosts) ~= "string" then
    error("log_shipper.start needs hosts", 3)
  end
  local c = {}
  for k, v in pairs(DEFAULTS) do c[k] = v end
  for k, v in pairs(opts) do
    if DEFAULTS[k] == nil and not OTHER_KEYS[k] then
      error("log_shipper.start: unknown option '" .. tostring(k) .. "'", 3)
    end
    c[k] = v
  end
  if c.spool_dir ~= nil and type(c.spool_dir) ~= "string" then
    error("log_shipper.start: spool_dir must be a directory path", 3)
  end
  if c.spool_file_bytes * 4 > c.spool_max_bytes then
    error("log_shipper.start: spool_max_bytes must be at least 4 x spool_file_bytes", 3)
  end
  if type(c.hosts) == "string" then c.hosts = { c.hosts } end
  return c
end

-- start{ hosts=, index=, auth=, tls=, flush_interval=, batch_docs=, batch_bytes=,
--        concurrency=, retry_for=, retries=, dead_letter=, max_queue_docs=, max_queue_bytes=,
--        spool_dir=, spool_max_bytes=, spool_file_bytes= }
function M.start(opts)
  cfg = check_options(opts)
  local worker = ngx.worker.id() or 0
  id_prefix = string.format("%x-%x-%d-", floor(ngx.now() * 1000), ngx.worker.pid(), worker)
  if cfg.spool_dir then
    local err
    spool, err = require("espipe.ngx.spool").open{ dir = cfg.spool_dir, name = "worker-" .. worker,
      pid = ngx.worker.pid(), max_bytes = cfg.spool_max_bytes, file_bytes = cfg.spool_file_bytes }
    rescan_until = ngx.now() + RESCAN_FOR
    if not spool then error("log_shipper.start: " .. tostring(err), 2) end
  end
  local ok, err = ngx.timer.every(cfg.flush_interval, drain)
  if not ok then error("log_shipper.start: cannot start the flush timer: " .. tostring(err), 2) end
end

local function refuse()
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

-- push(event) -> true | false, "queue full". event: a table, or a JSON object text.
function M.push(event)
  if not cfg then error("log_shipper.push before log_shipper.start", 2) end
  local line = event
  if type(event) ~= "string" then line = json.encode(event) end
  id_seq = id_seq + 1
  line = id_prefix .. id_seq .. "\t" .. line
  counters.pushed = counters.pushed + 1
  local full = queued() >= cfg.max_queue_docs or queued_bytes + #line > cfg.max_queue_bytes
  if spool and (full or not spool:empty()) then
    -- behind what is spooled already: the order of events is kept
    if queued() > 0 then spool_memory() end
    counters.spooled = counters.spooled + 1
    if not spool:append(line) then counters.spooled = counters.spooled - 1 end
    return true
  end
  if full then return refuse() end
  tail = tail + 1
  queue[tail] = line
  queued_bytes = queued_bytes + #line
  if queued() >= cfg.batch_docs then schedule_now() end
  return true
end

-- Counters of this worker: pushed, dropped, shipped, failed, retried, drains,
-- errors, queued, queued_bytes, draining; with a spool also spooled (events
-- written to it), replayed, spool_dropped, spool_bytes, spool_files.
function M.stats()
  local s = {}
  for k, v in pairs(counters) do s[k] = v end
  s.queued, s.queued_bytes, s.draining = queued(), queued_bytes, running
  if spool then
    s.spool_dropped, s.spool_bytes, s.spool_files = spool.dropped, spool.bytes, spool.files
  end
  return s
end

return M
