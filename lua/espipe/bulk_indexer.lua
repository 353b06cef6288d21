-- The bulk indexer: documents in, _bulk requests out, every document
-- accounted for. Each document ends in exactly one of: acknowledged (ok), or
-- dead-lettered with its reason (failed); added == ok + failed after close().
--
-- Lua drives the loop (no threads, no timers): :index() appends to the
-- current batch; a full batch is sent when one of `concurrency` slots is
-- free, otherwise the indexer handles completions until one is. So memory is
-- about batch_bytes x (concurrency + 1) plus the retry queue, which is itself
-- bounded (max_retry_bytes): when it is full, :index() drives the loop until
-- it drains. flush_interval is checked on each call (outside nginx there is
-- no timer): a batch older than that is sent at the next :index() or :tick().
--
-- Outcomes per item: success; retryable (429, 503,
-- es_rejected_execution_exception) -> re-sent later with exponential backoff
-- and jitter, up to `retries` attempts; anything else -> on_error and the
-- dead letter. Whole request: transport error, 429 or 5xx -> the batch is
-- retried the same way; 413 -> split in half; other statuses -> every item
-- dead-lettered; a 200 whose body is not a complete bulk response with one
-- item per action -> retried (never assumed successful).
--
-- Dead letter (dead_letter = PATH | function(record)): one NDJSON line per
-- failed document, appended and flushed per batch:
--   {"action":{"index":{"_index":"i","_id":"1"}},"source":{...},
--    "status":400,"error":{"type":...,"reason":...},"attempts":1}
-- ("source" is absent for deletes). `action` + `source` are the two _bulk
-- lines to replay; dead_letter_bulk = PATH also writes just those lines, a
-- file `curl --data-binary @PATH .../_bulk` or `espipe load --format bulk`
-- can send as it is.
local core = require("espipe.core")
local json = require("espipe.json")
local errors = require("espipe.errors")
local url = require("espipe.client.url")

local type, pairs, ipairs, tostring, error, setmetatable = type, pairs, ipairs, tostring, error, setmetatable
local concat, remove = table.concat, table.remove
local min, random, floor = math.min, math.random, math.floor
local encode = json.encode
local scan_response = core.bulk_response

local M = {}
local Indexer = {}
Indexer.__index = Indexer

local FILTER_PATH = "errors,items.*.status,items.*.error,items.*.result"

local DEFAULTS = {
  batch_docs = 1000, batch_bytes = 5 * 1024 * 1024, concurrency = 4, retries = 5,
}

local KNOWN = {
  index = true, batch_docs = true, batch_bytes = true, concurrency = true, flush_interval = true,
  retries = true, backoff = true, on_error = true, dead_letter = true, dead_letter_bulk = true,
  compress = true, refresh = true, pipeline = true, routing = true, timeout = true,
  max_retry_bytes = true, require_alias = true,
}

local function check_positive(opts, k, level, integer)
  local v = opts[k]
  if v == nil then return end
  if type(v) ~= "number" or v <= 0 or (integer and v ~= floor(v)) then
    error("bulk_indexer: " .. k .. " must be a positive " .. (integer and "integer" or "number"), level + 1)
  end
end

function M.new(client, opts, level)
  level = level or 2
  opts = opts or {}
  if type(opts) ~= "table" then error("bulk_indexer expects an options table", level) end
  for k in pairs(opts) do
    if not KNOWN[k] then error("bulk_indexer: unknown option '" .. tostring(k) .. "'", level) end
  end
  for _, k in ipairs{ "batch_docs", "batch_bytes", "concurrency", "max_retry_bytes" } do
    check_positive(opts, k, level, true)
  end
  check_positive(opts, "flush_interval", level)
  if opts.retries ~= nil and (type(opts.retries) ~= "number" or opts.retries < 0) then
    error("bulk_indexer: retries must be a number >= 0", level)
  end
  if opts.index ~= nil and (type(opts.index) ~= "string" or opts.index == "") then
    error("bulk_indexer: index must be a non-empty string", level)
  end
  local backoff = opts.backoff or {}
  if type(backoff) ~= "table" then error("bulk_indexer: backoff must be a table { base =, max = }", level) end
  local dl = opts.dead_letter
  if dl ~= nil and type(dl) ~= "string" and type(dl) ~= "function" then
    error("bulk_indexer: dead_letter must be a path or a function", level)
  end
  if opts.on_error ~= nil and type(opts.on_error) ~= "function" then
    error("bulk_indexer: on_error must be a function", level)
  end

  local self = setmetatable({
    client = client,
    owner = { inbox = {} },
    index_name = opts.index,
    batch_docs = opts.batch_docs or DEFAULTS.batch_docs,
    batch_bytes = opts.batch_bytes or DEFAULTS.batch_bytes,
    concurrency = opts.concurrency or DEFAULTS.concurrency,
    retries = opts.retries or DEFAULTS.retries,
    backoff_base = backoff.base or 0.1,
    backoff_max = backoff.max or 10,
    flush_interval = opts.flush_interval,
    on_error = opts.on_error,
    compress = opts.compress,
    timeout = opts.timeout,
    inflight = {},        -- request id -> batch
    n_inflight = 0,
    retryq = {},          -- batches waiting for their due time
    retry_bytes = 0,
    closed = false,
    stats = { added = 0, ok = 0, created = 0, updated = 0, deleted = 0, noop = 0, not_found = 0,
              failed = 0, retried = 0, requests = 0, bytes = 0, elapsed = 0 },
  }, Indexer)
  self.max_retry_bytes = opts.max_retry_bytes or self.batch_bytes * self.concurrency
  self.path = (opts.index and ("/" .. url.segment(opts.index, "index")) or "") .. "/_bulk"
  local q = { filter_path = FILTER_PATH, refresh = opts.refresh, pipeline = opts.pipeline,
              routing = opts.routing, require_alias = opts.require_alias }
  self.query = url.query(q)
  self.started = client:now()
  self.cur = self:_new_batch()

  if type(dl) == "string" then
    local f, err = io.open(dl, "a")
    if not f then error("bulk_indexer: cannot open dead letter " .. dl .. ": " .. tostring(err), level) end
    self.dead_file, self.stats.dead_letter = f, dl
  elseif type(dl) == "function" then
    self.dead_fn = dl
  end
  if opts.dead_letter_bulk then
    local f, err = io.open(opts.dead_letter_bulk, "a")
    if not f then
      error("bulk_indexer: cannot open " .. opts.dead_letter_bulk .. ": " .. tostring(err), level)
    end
    self.dead_bulk, self.stats.dead_letter_bulk = f, opts.dead_letter_bulk
  end
  return self
end

function Indexer:_new_batch()
  return { lines = {}, attempts = {}, n = 0, bytes = 0, born = self.client:now() }
end

----------------------------------------------------------------------------
-- Building items: one string "action\nsource\n" per document

local META_KEYS = {
  -- user key -> bulk metadata key, in the order written
  { "index", "_index" }, { "_index", "_index" }, { "id", "_id" }, { "_id", "_id" },
  { "routing", "routing" }, { "if_seq_no", "if_seq_no" }, { "if_primary_term", "if_primary_term" },
  { "version", "version" }, { "version_type", "version_type" }, { "pipeline", "pipeline" },
  { "retry_on_conflict", "retry_on_conflict" }, { "require_alias", "require_alias" },
  { "dynamic_templates", "dynamic_templates" },
}
local META_ALLOWED = {}
for _, kv in ipairs(META_KEYS) do META_ALLOWED[kv[1]] = true end

local function id_json(id)
  if type(id) == "string" and not id:find('[%c"\\\128-\255]') then return '"' .. id .. '"' end
  if type(id) == "number" and id == floor(id) then return string.format('"%d"', id) end
  return encode(type(id) == "number" and tostring(id) or id)
end

local function action_line(op, meta, level)
  if meta == nil then return '{"' .. op .. '":{}}\n' end
  if type(meta) ~= "table" then error("bulk_indexer: meta must be a table", level + 1) end
  -- the common case, { id = x } alone, without the general loop
  local k1 = next(meta)
  if k1 == "id" and next(meta, k1) == nil then
    return '{"' .. op .. '":{"_id":' .. id_json(meta.id) .. '}}\n'
  end
  local parts = {}
  for k in pairs(meta) do
    if not META_ALLOWED[k] then error("bulk_indexer: unknown meta key '" .. tostring(k) .. "'", level + 1) end
  end
  for _, kv in ipairs(META_KEYS) do
    local v = meta[kv[1]]
    if v ~= nil then
      if type(v) == "number" and (kv[2] == "_id" or kv[2] == "routing") then
        v = (v == floor(v)) and string.format("%d", v) or tostring(v)
      end
      parts[#parts + 1] = '"' .. kv[2] .. '":' .. encode(v)
    end
  end
  return '{"' .. op .. '":{' .. concat(parts, ",") .. '}}\n'
end

local function source_line(doc, level)
  local t = type(doc)
  if t == "table" then return encode(doc) .. "\n" end
  if t == "string" then
    if doc:find("\n", 1, true) then
      error("bulk_indexer: a raw JSON source must be one line (no newline)", level + 1)
    end
    return doc .. "\n"
  end
  error("bulk_indexer: document must be a table or a raw JSON string, got " .. t, level + 1)
end

function Indexer:_check_open(level)
  if self.closed then error("bulk_indexer: already closed", level + 1) end
end

function Indexer:_add(line)
  local stats = self.stats
  stats.added = stats.added + 1
  local b = self.cur
  local n = b.n + 1
  b.n, b.lines[n], b.attempts[n] = n, line, 0
  b.bytes = b.bytes + #line
  if n >= self.batch_docs or b.bytes >= self.batch_bytes then
    self:_ship_current()
  elseif self.flush_interval then
    self:tick()
  end
  if self.retry_bytes > self.max_retry_bytes then self:_drain_retries() end
end

-- :index(doc, meta) where doc is a table or a raw JSON string, meta =
-- { id =, index =, routing =, if_seq_no =, if_primary_term =, pipeline =, ... }
function Indexer:index(doc, meta)
  self:_check_open(2)
  if meta == nil then
    return self:_add('{"index":{}}\n' .. source_line(doc, 2))
  end
  return self:_add(action_line("index", meta, 2) .. source_line(doc, 2))
end

function Indexer:create(doc, meta)
  self:_check_open(2)
  return self:_add(action_line("create", meta, 2) .. source_line(doc, 2))
end

-- :update(body, meta): body = { doc =, upsert =, doc_as_upsert =, script =, ... }
function Indexer:update(body, meta)
  self:_check_open(2)
  if type(meta) ~= "table" or (meta.id == nil and meta._id == nil) then
    error("bulk_indexer: update needs meta.id", 2)
  end
  if type(body) == "table" and body.doc == nil and body.script == nil and body.upsert == nil then
    error("bulk_indexer: update body needs doc, script or upsert", 2)
  end
  return self:_add(action_line("update", meta, 2) .. source_line(body, 2))
end

function Indexer:delete(meta)
  self:_check_open(2)
  if type(meta) ~= "table" or (meta.id == nil and meta._id == nil) then
    error("bulk_indexer: delete needs meta.id", 2)
  end
  return self:_add(action_line("delete", meta, 2))
end

-- :raw(action_json, source_json?) appends two pre-built _bulk lines as they are.
function Indexer:raw(action, source)
  self:_check_open(2)
  if type(action) ~= "string" or action:find("\n", 1, true) then
    error("bulk_indexer: raw action must be one line of JSON", 2)
  end
  if source == nil then return self:_add(action .. "\n") end
  return self:_add(action .. "\n" .. source_line(source, 2))
end

----------------------------------------------------------------------------
-- Sending and completing

function Indexer:_submit(batch)
  local body = concat(batch.lines, "", 1, batch.n)
  local req = { method = "POST", path = self.path, query = self.query, body = body,
                headers = { ["Content-Type"] = "application/x-ndjson" },
                compress = self.compress, timeout = self.timeout }
  local id, err = self.client:_submit(self.owner, req)
  self.stats.requests = self.stats.requests + 1
  self.stats.bytes = self.stats.bytes + #body
  if not id then
    -- the transport refused outright (closed, bad host): same as a failed request
    return self:_batch_failed(batch, require("espipe.client").transport_error(err, req), 0, nil)
  end
  self.inflight[id] = batch
  self.n_inflight = self.n_inflight + 1
end

function Indexer:_ship_current()
  local b = self.cur
  if b.n == 0 then return end
  self.cur = self:_new_batch()
  self:_pump(0)
  while self.n_inflight >= self.concurrency do self:_pump(1) end
  self:_submit(b)
end

-- Send a batch older than flush_interval; call it when idle to keep data moving.
function Indexer:tick()
  local b = self.cur
  if b.n > 0 and self.flush_interval and self.client:now() - b.born >= self.flush_interval then
    self:_ship_current()
  else
    self:_pump(0)
  end
end

-- The earliest retry batch, and its position in the queue.
function Indexer:_earliest()
  local best, at
  for i, b in ipairs(self.retryq) do
    if not best or b.due < best.due then best, at = b, i end
  end
  return best, at
end

function Indexer:_send_due()
  while self.n_inflight < self.concurrency and #self.retryq > 0 do
    local b, at = self:_earliest()
    if b.due > self.client:now() then return end
    remove(self.retryq, at)
    self.retry_bytes = self.retry_bytes - b.bytes
    self:_submit(b)
  end
end

-- One turn of the loop: send due retries, wait at most `wait` for completions.
function Indexer:_pump(wait)
  self:_send_due()
  if self.n_inflight == 0 then
    if wait > 0 and #self.retryq > 0 then
      local b = self:_earliest()
      local d = b.due - self.client:now()
      if d > 0 then self.client:sleep(min(d, wait)) end
      self:_send_due()
    end
    return
  end
  local done = self.client:_wait(self.owner, wait)
  local failure
  for _, res in ipairs(done) do
    local ok, err = pcall(self._complete, self, res)
    if not ok and not failure then failure = err end
  end
  if failure then error(failure, 0) end
  self:_send_due()
end

function Indexer:_drain_retries()
  while self.retry_bytes > self.max_retry_bytes do self:_pump(1) end
end

local function is_retryable_item(f)
  return f.status == 429 or f.status == 503 or f.type == "es_rejected_execution_exception"
end

function Indexer:_complete(res)
  local batch = self.inflight[res.id]
  if not batch then return end
  self.inflight[res.id] = nil
  self.n_inflight = self.n_inflight - 1
  local req = { method = "POST", path = self.path }
  if res.err then
    return self:_batch_failed(batch, require("espipe.client").transport_error(res.err, req), 0, nil)
  end
  local status = res.status
  if status == 200 then
    local r, msg, off = scan_response(res.body or "")
    if r and r.count == batch.n then
      return self:_items_done(batch, r)
    end
    local reason = r and ("bulk response has " .. r.count .. " items for " .. batch.n .. " actions")
      or ("unreadable bulk response: " .. tostring(msg) .. " at byte " .. tostring(off))
    return self:_batch_failed(batch, errors.new{ kind = "http", status = 200, reason = reason,
                                                 type = "bad_response", request = req }, 200, nil)
  end
  if status == 413 then return self:_split(batch) end
  local err = require("espipe.client").http_error(res, req)
  if status == 429 or status >= 500 then
    return self:_batch_failed(batch, err, status, res.body)
  end
  -- any other status: this request can never succeed as it is
  local raw = '{"type":' .. encode(err.type or "http_error") .. ',"reason":' .. encode(err.reason or "") .. '}'
  for i = 1, batch.n do
    self:_dead(batch.lines[i], batch.attempts[i] + 1, status, raw, err.type, err.reason)
  end
  self:_flush_dead()
end

function Indexer:_items_done(batch, r)
  local stats = self.stats
  stats.ok = stats.ok + r.ok
  stats.created = stats.created + r.created
  stats.updated = stats.updated + r.updated
  stats.deleted = stats.deleted + r.deleted
  stats.noop = stats.noop + r.noop
  stats.not_found = stats.not_found + r.not_found
  if r.failed == 0 then return end
  local again
  for _, f in ipairs(r.failures) do
    local line, attempts = batch.lines[f.pos], batch.attempts[f.pos] + 1
    if is_retryable_item(f) and attempts <= self.retries then
      again = again or self:_new_batch()
      local n = again.n + 1
      again.n, again.lines[n], again.attempts[n] = n, line, attempts
      again.bytes = again.bytes + #line
    else
      self:_dead(line, attempts, f.status, f.error or encode(f.reason or ""), f.type, f.reason)
    end
  end
  if again then self:_queue_retry(again) end
  self:_flush_dead()
end

-- Whole-request failure: retry every item that has attempts left.
function Indexer:_batch_failed(batch, err, status, _)
  local again = self:_new_batch()
  local raw
  for i = 1, batch.n do
    local attempts = batch.attempts[i] + 1
    local line = batch.lines[i]
    if attempts <= self.retries then
      local n = again.n + 1
      again.n, again.lines[n], again.attempts[n] = n, line, attempts
      again.bytes = again.bytes + #line
    else
      raw = raw or ('{"type":' .. encode(err.type or err.kind or "error") .. ',"reason":'
        .. encode(tostring(err.reason or err.message or err)) .. '}')
      self:_dead(line, attempts, status ~= 0 and status or nil, raw, err.type or err.kind,
                 err.reason or err.message)
    end
  end
  if again.n > 0 then self:_queue_retry(again) end
  self:_flush_dead()
end

function Indexer:_backoff(attempt)
  local d = min(self.backoff_max, self.backoff_base * 2 ^ (attempt - 1))
  return d * (0.5 + 0.5 * random()) -- jitter: retries of many batches spread out
end

function Indexer:_queue_retry(batch)
  local worst = 0
  for i = 1, batch.n do if batch.attempts[i] > worst then worst = batch.attempts[i] end end
  batch.due = self.client:now() + (worst > 0 and self:_backoff(worst) or 0)
  self.stats.retried = self.stats.retried + batch.n
  self.retryq[#self.retryq + 1] = batch
  self.retry_bytes = self.retry_bytes + batch.bytes
end

-- 413: halve the batch; one document still too large is dead-lettered.
function Indexer:_split(batch)
  if batch.n == 1 then
    self:_dead(batch.lines[1], batch.attempts[1] + 1, 413,
      '{"type":"request_entity_too_large","reason":"the document alone exceeds the request size limit"}',
      "request_entity_too_large", "the document alone exceeds the request size limit")
    return self:_flush_dead()
  end
  local half = floor(batch.n / 2)
  for _, range in ipairs{ { 1, half }, { half + 1, batch.n } } do
    local part = self:_new_batch()
    for i = range[1], range[2] do
      local n = part.n + 1
      part.n, part.lines[n], part.attempts[n] = n, batch.lines[i], batch.attempts[i]
      part.bytes = part.bytes + #batch.lines[i]
    end
    part.due = self.client:now()
    self.retryq[#self.retryq + 1] = part
    self.retry_bytes = self.retry_bytes + part.bytes
  end
end

----------------------------------------------------------------------------
-- Dead letters

function Indexer:_dead(line, attempts, status, raw_error, etype, reason)
  self.stats.failed = self.stats.failed + 1
  local nl = line:find("\n", 1, true)
  local action = line:sub(1, nl - 1)
  local source = (nl < #line) and line:sub(nl + 1, #line - 1) or nil
  if self.index_name and not action:find('^{"%a+":{"_index":') then
    -- the index was in the URL: put it in the action so the line replays anywhere
    local op, rest = action:match('^{"(%a+)":{(.*)$')
    action = '{"' .. op .. '":{"_index":' .. encode(self.index_name) .. (rest:sub(1, 1) == "}" and "" or ",") .. rest
  end
  local rec = '{"action":' .. action .. (source and (',"source":' .. source) or "")
    .. (status and (',"status":' .. status) or "") .. ',"error":' .. raw_error
    .. ',"attempts":' .. attempts .. '}\n'
  if self.dead_file then self.dead_file:write(rec) end
  if self.dead_bulk then self.dead_bulk:write(action, "\n", source and (source .. "\n") or "") end
  if self.dead_fn or self.on_error then
    local item = { action = action, source = source, status = status, error = raw_error,
                   type = etype, reason = reason, attempts = attempts, record = rec }
    if self.dead_fn then self.dead_fn(item) end
    if self.on_error then self.on_error(item) end
  end
end

function Indexer:_flush_dead()
  if self.dead_file then self.dead_file:flush() end
  if self.dead_bulk then self.dead_bulk:flush() end
end

----------------------------------------------------------------------------
-- Ending

-- Send everything and wait until every document is acknowledged or dead-lettered.
function Indexer:flush()
  self:_check_open(2)
  self:_ship_current()
  while self.n_inflight > 0 or #self.retryq > 0 do self:_pump(1) end
  return self:stats_now()
end

function Indexer:stats_now()
  local s = {}
  for k, v in pairs(self.stats) do s[k] = v end
  s.elapsed = self.client:now() - self.started
  return s
end

-- Flush, close the dead letter, and return the final stats.
function Indexer:close()
  if self.closed then return self.final end
  local ok, err = pcall(self.flush, self)
  self.closed = true
  if self.dead_file then self.dead_file:close() end
  if self.dead_bulk then self.dead_bulk:close() end
  self.final = self:stats_now()
  if not ok then error(err, 0) end
  return self.final
end

return M
