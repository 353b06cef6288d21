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
-- A batch is an espipe.bulk buffer (csrc/bulk.c): each document is encoded
-- straight into it by one C call, the buffer itself is the request body (the
-- curl transport sends it without a copy), and retries, 413 splits and dead
-- letters pick items out of the sent buffer by position. Buffers are reset
-- and reused (a pool of concurrency + 1), so memory stays flat however many
-- documents pass through.
--
-- Outcomes per item: success; retryable (429, 503,
-- es_rejected_execution_exception) -> re-sent later with capped exponential
-- backoff and full jitter for as long as `retry_for` seconds (600) allow,
-- counted from the batch's first failure; anything else -> on_error and the
-- dead letter. Whole request: classified by espipe.client.retry: retryable
-- (transport error, 429, 5xx, a 200 whose body is not a complete bulk
-- response with one item per action: never assumed successful) -> retried
-- the same way; 413 -> split in half; systemic (401, 403, TLS, unknown host,
-- a refused connection before the cluster ever answered) -> the indexer stops
-- at once: nothing more is sent and nothing is dead-lettered (the documents
-- not acknowledged are counted in stats.unsent), every later call returns
-- nil, err with err.kind == "systemic"; other statuses -> every item
-- dead-lettered. `retries = N` (deprecated) also caps the attempts.
--
-- Ids (server_ids = false, the default): every index/create action without
-- an _id gets a time-based one (20 URL-safe characters, like Elasticsearch's
-- own) when it is added, before the first send, so a retry after a lost
-- response overwrites instead of duplicating, and a 409 on the create of an
-- id the indexer made is its own earlier attempt: counted as done.
-- server_ids = true leaves the _id to Elasticsearch: a retry after a lost
-- response can then index a document twice.
--
-- Stopping early: the error budget (max_errors = N | "P%", or error_budget =
-- an espipe.pipeline.error_budget shared with the caller; default: more than
-- 1000 failed, or all of the first 1000) and stall_timeout (300 s: requests
-- pending and no answer but timeouts for that long). Once either trips,
-- index() and friends return nil, err and take nothing more (a document
-- they returned true for was taken, and is accounted). The budget
-- still lets flush()/close() send everything accepted (added == ok + failed);
-- a stall, like a systemic error, abandons what is pending (stats.unsent).
-- flush() and close() return stats, err.
--
-- Dead letter (dead_letter = PATH | function(record)): one NDJSON line per
-- failed document, appended and flushed per batch:
--   {"action":{"index":{"_index":"i","_id":"1"}},"source":{...},
--    "status":400,"error":{"type":...,"reason":...},"attempts":1}
-- ("source" is absent for deletes). `action` + `source` are the two _bulk
-- lines to replay; dead_letter_bulk = PATH also writes just those lines, a
-- file `curl --data-binary @PATH .../_bulk` or `espipe load --format bulk`
-- can send as it is.
--
-- Other options: filter_path = true (default: only errors, status, error
-- and result per item come back) | false (the full response) | a string;
-- on_batch = function{ ok =, failed =, tokens = { ... } } called as each
-- request settles, with the meta.token of every document it settled (a
-- retried document's token comes back when its retry settles), so a caller
-- can checkpoint without flush(), and failed_tokens = { ... }, those of
-- them that were dead-lettered (listed in tokens too); conflict_ok = true counts a 409 on create
-- as done (stats.conflicts); :ship() sends the current batch now.
-- shard_aware = true (see espipe.client.bulk_router, espipe.client.shard_map)
-- sends each document to the node holding its primary shard: the client
-- passes the router, the strategy that picks each document's node.
-- concurrency = "auto" and/or batch_bytes = "auto" (caps max_concurrency,
-- max_batch_bytes): espipe.client.adaptive sets them after each response;
-- an auto batch is bounded by bytes only unless batch_docs is given.
-- doc_type = "_doc": the `_type` every action carries (Elasticsearch 6.x
-- needs one); by default the one espipe.client.wire names for the cluster's
-- profile, when the client has read it (espipe.client.version.of), else none.
local core = require("espipe.core")
local json = require("espipe.json")
local errors = require("espipe.client.errors")

-- err is private_file.open's, which begins with the path
local function cannot_open(what, err)
  return errors.new { kind = "output", message = "bulk_indexer: cannot open " .. what .. " " .. tostring(err) }
end
local http_error = require("espipe.client.dispatch").http_error
local options = require("espipe.client.options")
local private_file = require("espipe.pipeline.private_file")
local url = require("espipe.client.url")
local retry = require("espipe.client.retry")
local error_budget = require("espipe.pipeline.error_budget")
local adaptive = require("espipe.client.adaptive")
local version = require("espipe.client.version")
local wire = require("espipe.client.wire")

local type, pairs, ipairs, tostring, error, setmetatable, pcall =
  type, pairs, ipairs, tostring, error, setmetatable, pcall
local remove = table.remove
local floor = math.floor
local encode = json.encode
local scan_response = core.bulk_response
local bulk_new = core.bulk_new

-- The buffer methods (every buffer's, taken from one), called directly: no
-- method lookup per document.
local function buffer_methods()
  local b = bulk_new()
  return b.put, b.raw, b.item, b.reset, b.split, b.append_from, b.auto_id
end
local put, put_raw, item_of, reset, split, append_from, auto_id_of = buffer_methods()

local M = {}
local Indexer = {}
Indexer.__index = Indexer

local FILTER_PATH = "errors,items.*.status,items.*.error,items.*.result"
local HEADERS = { ["Content-Type"] = "application/x-ndjson" }

local DEFAULTS = {
  batch_docs = 1000, batch_bytes = 5 * 1024 * 1024, concurrency = 4, retry_for = 600,
  stall_timeout = 300,
}

local KNOWN = {
  index = true, batch_docs = true, batch_bytes = true, concurrency = true, flush_interval = true,
  retries = true, backoff = true, on_error = true, dead_letter = true, dead_letter_bulk = true,
  compress = true, refresh = true, pipeline = true, routing = true, timeout = true,
  max_retry_bytes = true, require_alias = true, filter_path = true,
  shard_aware = true, shard_map = true, on_log = true, on_batch = true, conflict_ok = true,
  retry_for = true, retry = true, server_ids = true, max_errors = true, error_budget = true,
  stall_timeout = true, max_concurrency = true, max_batch_bytes = true, presort = true,
  doc_type = true,
}

local function check_positive(opts, k, level, integer)
  local v = opts[k]
  if v == nil then return end
  if type(v) ~= "number" or v <= 0 or (integer and v ~= floor(v)) then
    error("bulk_indexer: " .. k .. " must be a positive " .. (integer and "integer" or "number"), level + 1)
  end
end

-- bulk_indexer.new(client, opts, level, router): router (an
-- espipe.client.bulk_router, for opts.shard_aware) picks each document's node.
function M.new(client, opts, level, router)
  level = level or 2
  opts = opts or {}
  if type(opts) ~= "table" then error("bulk_indexer expects an options table", level) end
  options.check(opts, KNOWN, "bulk_indexer", level)
  for _, k in ipairs{ "batch_docs", "batch_bytes", "concurrency", "max_retry_bytes" } do
    if opts[k] ~= "auto" or k == "batch_docs" or k == "max_retry_bytes" then check_positive(opts, k, level, true) end
  end
  check_positive(opts, "flush_interval", level)
  check_positive(opts, "stall_timeout", level)
  if opts.retry_for ~= nil and (type(opts.retry_for) ~= "number" or opts.retry_for < 0) then
    error("bulk_indexer: retry_for must be a number of seconds >= 0", level)
  end
  if opts.retry ~= nil and getmetatable(opts.retry) ~= retry.Policy then
    error("bulk_indexer: retry must be a policy from espipe.client.retry.new", level)
  end
  if opts.error_budget ~= nil and getmetatable(opts.error_budget) ~= error_budget.Budget then
    error("bulk_indexer: error_budget must come from espipe.pipeline.error_budget.new", level)
  end
  if opts.retries ~= nil and (type(opts.retries) ~= "number" or opts.retries < 0) then
    error("bulk_indexer: retries must be a number >= 0", level)
  end
  if opts.index ~= nil and (type(opts.index) ~= "string" or opts.index == "") then
    error("bulk_indexer: index must be a non-empty string", level)
  end
  local backoff = opts.backoff or {}
  if type(backoff) ~= "table" then error("bulk_indexer: backoff must be a table { base =, max = }", level) end
  local policy = opts.retry or retry.new({ retry_for = opts.retry_for or DEFAULTS.retry_for,
                                           base = backoff.base, max = backoff.max }, level + 1)
  local budget = opts.error_budget or error_budget.new({ max_errors = opts.max_errors }, level + 1)
  local dl = opts.dead_letter
  if dl ~= nil and type(dl) ~= "string" and type(dl) ~= "function" then
    error("bulk_indexer: dead_letter must be a path or a function", level)
  end
  for _, k in ipairs{ "on_error", "on_batch" } do
    if opts[k] ~= nil and type(opts[k]) ~= "function" then
      error("bulk_indexer: " .. k .. " must be a function", level)
    end
  end
  local fp = opts.filter_path
  if fp ~= nil and fp ~= false and fp ~= true and type(fp) ~= "string" then
    error("bulk_indexer: filter_path must be a boolean or a string", level)
  end
  if opts.doc_type ~= nil and (type(opts.doc_type) ~= "string" or opts.doc_type == "") then
    error("bulk_indexer: doc_type must be a non-empty string", level)
  end
  local doc_type = opts.doc_type or wire.bulk_type(version.known(client))

  local self = setmetatable({
    client = client,
    owner = { inbox = {} },
    index_name = opts.index,
    batch_docs = opts.batch_docs or DEFAULTS.batch_docs,
    batch_bytes = opts.batch_bytes or DEFAULTS.batch_bytes,
    concurrency = opts.concurrency or DEFAULTS.concurrency,
    retries = opts.retries,  -- deprecated: a cap on attempts besides retry_for
    policy = policy,
    budget = budget,
    auto_ids = not opts.server_ids,
    buffer_opts = { auto_ids = not opts.server_ids, doc_type = doc_type },
    stall_timeout = opts.stall_timeout or DEFAULTS.stall_timeout,
    halt = nil,           -- the error that stopped the indexer taking documents
    flush_interval = opts.flush_interval,
    on_error = opts.on_error,
    on_batch = opts.on_batch,
    conflict_ok = opts.conflict_ok == true,
    tokens = {},          -- buffer -> { [position] = meta.token } (on_batch only)
    compress = opts.compress,
    timeout = opts.timeout,
    inflight = {},        -- request id -> batch
    n_inflight = 0,
    retryq = {},          -- batches waiting for their due time
    retry_bytes = 0,
    pool = {},            -- empty buffers kept for reuse
    closed = false,
    stats = { added = 0, ok = 0, created = 0, updated = 0, deleted = 0, noop = 0, not_found = 0,
              failed = 0, retried = 0, requests = 0, bytes = 0, elapsed = 0, unsent = 0 },
  }, Indexer)
  if opts.concurrency == "auto" or opts.batch_bytes == "auto" then self:_attach_adaptive(opts, level + 1) end
  self.max_retry_bytes = opts.max_retry_bytes or self.batch_bytes * self.concurrency
  self.path = (opts.index and ("/" .. url.segment(opts.index, "index")) or "") .. "/_bulk"
  if fp == nil or fp == true then fp = FILTER_PATH end
  local q = { filter_path = fp or nil, refresh = opts.refresh, pipeline = opts.pipeline,
              routing = opts.routing, require_alias = opts.require_alias }
  self.query = url.query(q)
  if self.query == "" then self.query = nil end
  self.started = client:now()
  self.last_answer = self.started
  self.cur = self:_new_buffer()
  self.cur_born = self.started

  -- Dead-letter files are opened now, so an unwritable path fails before any
  -- document is taken; one this indexer created and never wrote is removed
  -- at close().
  local function existed(path)
    local f = io.open(path, "r")
    if f then f:close() end
    return f ~= nil
  end
  -- (a path that cannot be opened is a runtime failure: nil, err)
  if type(dl) == "string" then
    self.dead_file_existed = existed(dl)
    local f, err = private_file.open(dl, "a")
    if not f then return nil, cannot_open("dead letter", err) end
    self.dead_file, self.stats.dead_letter = f, dl
  elseif type(dl) == "function" then
    self.dead_fn = dl
  end
  if opts.dead_letter_bulk then
    self.dead_bulk_existed = existed(opts.dead_letter_bulk)
    local f, err = private_file.open(opts.dead_letter_bulk, "a")
    if not f then
      self:_close_dead_files()
      return nil, cannot_open("dead letter", err)
    end
    self.dead_bulk, self.stats.dead_letter_bulk = f, opts.dead_letter_bulk
  end
  if router then
    self.router = router
    self.route = true
    self.groups = {}          -- transport host index -> { buf =, born =, shard_at = }
    self.url_routing = opts.routing
    self.stats.direct = 0        -- documents sent to their primary's node
    self.stats.node_failures = 0 -- requests to a node that failed as a whole
    -- the documents of the default index are added to self.cur as plain
    -- batches are and move to their node's batch in C when it fills
    -- (_distribute); the ones no node takes go into self.anywhere. With
    -- on_batch tokens (or no default index) each document is routed in Lua.
    if not self.on_batch and type(self.index_name) == "string" then
      self.staged, self.anywhere, self.anywhere_born = true, self:_new_buffer(), self.client:now()
    end
  end
  -- presort = { shards =, ... } (espipe.pipeline.presort): each batch ordered by shard before it goes
  if opts.presort ~= nil then self.presort = require("espipe.pipeline.presort").new(opts.presort, level + 1) end
  self.general = (self.route and not self.staged) or self.on_batch ~= nil
  if self.conflict_ok then self.stats.conflicts = 0 end
  return self
end

-- "auto": the controller picks the concurrency and the next batch's size
function Indexer:_attach_adaptive(opts, level)
  local ok, ctl = pcall(adaptive.new, {
    concurrency = opts.concurrency or DEFAULTS.concurrency, batch_bytes = opts.batch_bytes or DEFAULTS.batch_bytes,
    max_concurrency = opts.max_concurrency, max_batch_bytes = opts.max_batch_bytes,
    now = function() return self.client:now() end })
  if not ok then error("bulk_indexer: " .. tostring(ctl):gsub("^.-espipe%.client%.adaptive: ", ""), level) end
  self.adaptive = ctl
  self.concurrency, self.batch_bytes = ctl:concurrency(), ctl:batch_bytes()
  if opts.batch_bytes == "auto" and opts.batch_docs == nil then self.batch_docs = math.huge end
end

-- A completed request (status 0: no answer) tells the controller what to do next.
function Indexer:_adapt(batch, status, r)
  self.concurrency, self.batch_bytes = self.adaptive:observe(batch.n, batch.bytes,
    self.client:now() - batch.sent, status, r and r.failures)
end

----------------------------------------------------------------------------
-- Buffers

function Indexer:_new_buffer()
  return bulk_new(self.buffer_opts)
end

function Indexer:_take_buffer()
  local pool = self.pool
  local n = #pool
  if n == 0 then return self:_new_buffer() end
  local b = pool[n]
  pool[n] = nil
  return b
end

function Indexer:_release(buf)
  local pool = self.pool
  if #pool <= self.concurrency then
    reset(buf)
    pool[#pool + 1] = buf
  end
end

-- A batch: its buffer, the attempts its items have had, count and bytes.
-- Every item of a batch has had the same number of attempts: a batch is
-- either new, or retried as a whole, or made of the retryable items of one
-- batch, or half of one; so one number per batch is enough.
local function new_batch(buf, att, n, bytes)
  return { buf = buf, att = att, n = n, bytes = bytes }
end

-- A new batch from a filled buffer, with its documents' on_batch tokens.
function Indexer:_batch_of(buf, n)
  local b = new_batch(buf, 0, n, buf:bytes())
  local tokens = self.tokens[buf]
  if tokens then
    b.tokens = tokens
    self.tokens[buf] = nil
  end
  return b
end

----------------------------------------------------------------------------
-- Adding documents: one C call encodes the action and source into the batch

local META_ALLOWED = {
  index = true, _index = true, id = true, _id = true, routing = true, if_seq_no = true,
  if_primary_term = true, version = true, version_type = true, pipeline = true,
  retry_on_conflict = true, require_alias = true, dynamic_templates = true,
}

-- The C builder refused the input: say why in the indexer's words (these
-- checks run only on the failure path).
-- level: of the public method's caller, counted from here.
local function rejected(op, doc, meta, cmsg, with_source, level)
  level = level or 3
  if meta ~= nil then
    if type(meta) ~= "table" then error("bulk_indexer: meta must be a table", level) end
    for k in pairs(meta) do
      if not META_ALLOWED[k] then error("bulk_indexer: unknown meta key '" .. tostring(k) .. "'", level) end
    end
  end
  if with_source then
    local t = type(doc)
    if t ~= "table" and t ~= "string" then
      error("bulk_indexer: document must be a table or a raw JSON string, got " .. t, level)
    end
    if t == "string" and doc:find("[\r\n]") then
      error("bulk_indexer: a raw JSON source must be one line (no newline)", level)
    end
  end
  cmsg = tostring(cmsg):gsub("^bulk %a+: ", "")
  error("bulk_indexer: " .. op .. ": " .. cmsg, level)
end


-- While a batch fills, the requests in flight move only when the transport
-- is driven: without a turn every so many documents, their bodies stall in
-- full socket buffers and their responses wait, and the next ship finds
-- every slot still taken.
local PUMP_EVERY = 256

-- Shard-aware: a document naming its index is routed in Lua (its index has
-- its own shards); the others go into self.cur and are routed in C.
local function names_index(meta)
  return type(meta) == "table" and (meta.index ~= nil or meta._index ~= nil)
end

-- After an append of n items, bytes long: ship a full batch, keep the loop moving.
-- (Indexer:index repeats this body inline: the call costs 3.6% per document.)
function Indexer:_added(n, bytes)
  local stats = self.stats
  stats.added = stats.added + 1
  if n >= self.batch_docs or bytes >= self.batch_bytes then
    self:_ship_current()
  elseif self.flush_interval then
    self:tick()
  elseif n % PUMP_EVERY == 0 and self.n_inflight > 0 then
    self:_pump(0)
  end
  if self.retry_bytes > self.max_retry_bytes then self:_drain_retries() end
  return true
end

function Indexer:_add(op, doc, meta, with_source)
  if self.closed then error("bulk_indexer: already closed", 3) end
  if self.halt then return nil, self.halt end
  local ok, n, bytes = pcall(put, self.cur, op, meta, doc)
  if not ok then rejected(op, doc, meta, n, with_source, 4) end
  return self:_added(n, bytes)
end

-- The path with the options that cost per document: shard-aware routing
-- (one open batch per node) and on_batch tokens (meta.token, kept by
-- position beside the buffer and handed back when the document settles).
function Indexer:_add_general(op, doc, meta, with_source)
  if self.closed then error("bulk_indexer: already closed", 3) end
  if self.halt then return nil, self.halt end
  -- a document naming another index, routed here: the staged ones go
  -- first, so that a node's batch keeps the order the documents came in
  if self.staged then self:_distribute() end
  local token
  if self.on_batch and type(meta) == "table" and meta.token ~= nil then
    token = meta.token
    local copy = {}
    for k, v in pairs(meta) do
      if k ~= "token" then copy[k] = v end
    end
    meta = copy
  end
  local host, shard = 0, nil
  if self.route then host, shard = self.router:route(meta, self.index_name, self.url_routing) end
  local buf, g = self.anywhere or self.cur, nil
  if host ~= 0 then
    g = self:_group(host)
    buf = g.buf
  end
  local ok, n, bytes = pcall(put, buf, op, meta, doc)
  if not ok then rejected(op, doc, meta, n, with_source, 4) end
  if token ~= nil then self:_token_at(buf, n, n, token) end
  if not g and buf == self.cur then return self:_added(n, bytes) end
  if g then g.shard_at[n] = shard end
  local stats = self.stats
  stats.added = stats.added + 1
  if n >= self.batch_docs or bytes >= self.batch_bytes then
    if g then self:_ship_group(host, g) else self:_ship_anywhere() end
  elseif self.flush_interval then
    self:tick()
  end
  if self.retry_bytes > self.max_retry_bytes then self:_drain_retries() end
  return true
end

-- :index(doc, meta) where doc is a table or a raw JSON string, meta =
-- { id =, index =, routing =, if_seq_no =, if_primary_term =, pipeline =, ... }
function Indexer:index(doc, meta)
  if self.general or (self.staged and names_index(meta)) then return self:_add_general("index", doc, meta, true) end
  if self.closed then error("bulk_indexer: already closed", 2) end
  if self.halt then return nil, self.halt end
  local ok, n, bytes = pcall(put, self.cur, "index", meta, doc)
  if not ok then rejected("index", doc, meta, n, true) end
  -- _added, inlined on purpose (the one duplicate left here): calling it
  -- costs 3.6% more instructions per document (callgrind, 50k documents)
  local stats = self.stats
  stats.added = stats.added + 1
  if n >= self.batch_docs or bytes >= self.batch_bytes then
    self:_ship_current()
  elseif self.flush_interval then
    self:tick()
  elseif n % PUMP_EVERY == 0 and self.n_inflight > 0 then
    self:_pump(0)
  end
  if self.retry_bytes > self.max_retry_bytes then self:_drain_retries() end
  return true
end

function Indexer:create(doc, meta)
  if self.general or (self.staged and names_index(meta)) then return self:_add_general("create", doc, meta, true) end
  return self:_add("create", doc, meta, true)
end

-- :update(body, meta): body = { doc =, upsert =, doc_as_upsert =, script =, ... }
function Indexer:update(body, meta)
  if self.closed then error("bulk_indexer: already closed", 2) end
  if type(meta) ~= "table" or (meta.id == nil and meta._id == nil) then
    error("bulk_indexer: update needs meta.id", 2)
  end
  if type(body) == "table" and body.doc == nil and body.script == nil and body.upsert == nil then
    error("bulk_indexer: update body needs doc, script or upsert", 2)
  end
  if self.general or (self.staged and names_index(meta)) then return self:_add_general("update", body, meta, true) end
  return self:_add("update", body, meta, true)
end

function Indexer:delete(meta)
  if self.closed then error("bulk_indexer: already closed", 2) end
  if type(meta) ~= "table" or (meta.id == nil and meta._id == nil) then
    error("bulk_indexer: delete needs meta.id", 2)
  end
  if self.general or (self.staged and names_index(meta)) then return self:_add_general("delete", nil, meta, false) end
  return self:_add("delete", nil, meta, false)
end

-- :raw(action_json, source_json?, token?) appends two pre-built _bulk lines
-- as they are; token: its on_batch token.
function Indexer:raw(action, source, token)
  if self.closed then error("bulk_indexer: already closed", 2) end
  if self.halt then return nil, self.halt end
  if type(action) ~= "string" or action:find("[\r\n]") then
    error("bulk_indexer: raw action must be one line of JSON", 2)
  end
  -- (shard-aware, a raw action goes where its _id / routing say when it names
  -- no other index, else to any node: bulk distribute reads its line)
  local ok, n, bytes = pcall(put_raw, self.cur, action, source)
  if not ok then rejected("raw", source, nil, n, source ~= nil) end
  if token ~= nil and self.on_batch then self:_token_at(self.cur, n, n, token) end
  return self:_added(n, bytes)
end

-- Positions first..last of buf carry the on_batch token.
function Indexer:_token_at(buf, first, last, token)
  local t = self.tokens[buf]
  if not t then
    t = {}
    self.tokens[buf] = t
  end
  for i = first, last do t[i] = token end
end

-- :fill(append, ...) lets a C appender add many items to the open batch in
-- one call: append(buf, max_docs, max_bytes, ...) -> ..., docs (its third
-- result, how many it added); they count as added one by one would, and a
-- full batch ships. Returns append's results, or nil, err once the indexer
-- has stopped. Only for plain batches: with shard-aware routing each
-- document needs :index (fill returns false then), and so it does with
-- on_batch unless :fill_token gives the items their token.
function Indexer:fill(append, ...) return self:_fill(self.general, nil, append, ...) end

-- :fill_token(token, append, ...): :fill, every item appended carrying the
-- on_batch token `token`.
function Indexer:fill_token(token, append, ...) return self:_fill(self.route, token, append, ...) end

-- refused: the documents need :index one by one (fill returns false)
function Indexer:_fill(refused, token, append, ...)
  if self.closed then error("bulk_indexer: already closed", 3) end
  if refused then return false end
  if self.halt then return nil, self.halt end
  local before = #self.cur
  local r1, r2, docs, r4 = append(self.cur, self.batch_docs, self.batch_bytes, ...)
  local n = before + docs
  if token ~= nil and self.on_batch and docs > 0 then self:_token_at(self.cur, before + 1, n, token) end
  self.stats.added = self.stats.added + docs
  if n >= self.batch_docs or self.cur:bytes() >= self.batch_bytes then
    self:_ship_current()
  elseif self.flush_interval then
    self:tick()
  elseif (n - n % PUMP_EVERY) > before and self.n_inflight > 0 then
    self:_pump(0)
  end
  if self.retry_bytes > self.max_retry_bytes then self:_drain_retries() end
  return r1, r2, docs, r4
end

----------------------------------------------------------------------------
-- Sending and completing

function Indexer:_submit(batch)
  local req = { method = "POST", path = self.path, query = self.query, body = batch.buf,
                headers = HEADERS, compress = self.compress, timeout = self.timeout,
                host = batch.host }
  batch.sent = self.client:now()
  local id, err = self.client:_submit(self.owner, req)
  local stats = self.stats
  stats.requests = stats.requests + 1
  stats.bytes = stats.bytes + batch.bytes
  if not id then
    -- the transport refused outright (closed, bad host): same as a failed request
    local terr = errors.transport_error(err, req)
    return self:_batch_failed(batch, terr, 0, self.policy:classify(terr))
  end
  self.inflight[id] = batch
  self.n_inflight = self.n_inflight + 1
end

-- Wait for a free slot, then send. A batch that finds the indexer stopped
-- is not sent (its documents count as unsent).
function Indexer:_send(batch)
  self:_pump(0)
  while self.n_inflight >= self.concurrency and not self.stopped do self:_pump(1) end
  if self.stopped then return self:_abandon(batch) end
  if self.n_inflight == 0 and #self.retryq == 0 then
    -- nothing was pending: the stall clock starts now, not at the last answer
    self.last_answer = self.client:now()
  end
  self:_submit(batch)
end

function Indexer:_ship_current()
  if self.staged then return self:_distribute() end
  local buf = self.cur
  local n = #buf
  if n == 0 then return end
  self.cur = self:_take_buffer()
  self.cur_born = self.client:now()
  if self.presort then self.tokens[buf] = self.presort:sort_buffer(buf, nil, self.tokens[buf]) end
  self:_send(self:_batch_of(buf, n))
end

----------------------------------------------------------------------------
-- Shard-aware: one open batch per node (see espipe.client.bulk_router)

function Indexer:_group(host)
  local g = self.groups[host]
  if not g then
    g = { buf = self:_take_buffer(), born = self.client:now(), shard_at = {} }
    self.groups[host] = g
  end
  return g
end

-- The routing of the default index for the C moves: its parameters and
-- shard -> host, or the ones that send everything to any node.
local ANYWHERE = { shards = 1 }
function Indexer:_placement()
  local params, hosts = self.router:placement(self.index_name)
  if not params then return ANYWHERE, {} end
  return params, hosts
end

-- The documents in self.cur to their nodes' batches (bulk.c distribute:
-- each action line's _id / routing hashed in C), in order; a batch that
-- fills on the way is shipped, as it would have been when that document
-- came. Documents no node takes go to self.anywhere.
function Indexer:_distribute()
  local st = self.cur
  if #st == 0 then return end
  local params, hosts = self:_placement()
  local bufs = { [0] = self.anywhere }
  for _, host in pairs(hosts) do bufs[host] = self:_group(host).buf end
  local from = self.staged_from or 1
  while true do
    local host, nxt, at = st:distribute(params, hosts, bufs, from, self.batch_docs, self.batch_bytes,
                                        self.url_routing, self.index_name)
    if host == nil then
      -- out of memory: the items before `at` have moved; the next call resumes there
      if nxt ~= nil then self.staged_from = at; error("bulk_indexer: " .. nxt, 0) end
      break
    end
    if host == 0 then
      self:_ship_anywhere()
      bufs[0] = self.anywhere
    else
      local g = self.groups[host]
      self:_ship_group(host, g)
      bufs[host] = g.buf
    end
    from = nxt
  end
  reset(st)
  self.staged_from, self.cur_born = nil, self.client:now()
end

-- The batch of documents for any node.
function Indexer:_ship_anywhere()
  local buf = self.anywhere
  local n = #buf
  if n == 0 then return end
  self.anywhere, self.anywhere_born = self:_take_buffer(), self.client:now()
  self:_send(self:_batch_of(buf, n))
end

function Indexer:_ship_group(host, g)
  local buf = g.buf
  local n = #buf
  if n == 0 then return end
  local now = self.client:now()
  g.buf, g.born = self:_take_buffer(), now
  self.router:before_send(now)
  -- grouped by shard in place, in C (staged documents by their action
  -- lines, the others by the shards routed in Lua); the tokens move along
  local tokens = self.tokens[buf]
  local order
  if self.staged then
    order = self.router:order(buf, (self:_placement()), tokens ~= nil, self.url_routing)
  else
    order = self.router:order(buf, g.shard_at, tokens ~= nil)
  end
  if tokens then
    local moved = {}
    for k, i in ipairs(order) do moved[k] = tokens[i] end
    self.tokens[buf] = moved
  end
  local batch = self:_batch_of(buf, n)
  batch.host = host
  self.stats.direct = self.stats.direct + n
  self:_send(batch)
end

function Indexer:_ship_all_routed()
  self:_ship_current()
  if self.staged then self:_ship_anywhere() end
  for host, g in pairs(self.groups) do self:_ship_group(host, g) end
end

function Indexer:_tick_routed()
  local interval = self.flush_interval
  if interval then
    local now = self.client:now()
    if self.staged and self:_any_due(now, interval) then
      self:_distribute()
      self:_ship_anywhere()
    end
    if #self.cur > 0 and now - self.cur_born >= interval then self:_ship_current() end
    for host, g in pairs(self.groups) do
      if #g.buf > 0 and now - g.born >= interval then self:_ship_group(host, g) end
    end
  end
  self:_pump(0)
end

-- Whether a batch waited flush_interval: the documents in self.cur then
-- move to their nodes first, so that each batch ships with all it holds.
function Indexer:_any_due(now, interval)
  if #self.anywhere > 0 and now - self.anywhere_born >= interval then return true end
  if #self.cur > 0 and now - self.cur_born >= interval then return true end
  for _, g in pairs(self.groups) do
    if #g.buf > 0 and now - g.born >= interval then return true end
  end
  return false
end

-- A node failed a whole request: the router sends its batch anywhere.
function Indexer:_node_failed(batch)
  self.stats.node_failures = self.stats.node_failures + 1
  self.router:on_node_failure(batch)
end

-- Send the current partial batch now (e.g. at a shard boundary of a pre-sorted stream).
function Indexer:ship()
  if self.closed then error("bulk_indexer: already closed", 2) end
  if self.route then return self:_ship_all_routed() end
  self:_ship_current()
end

-- Send a batch older than flush_interval; call it when idle to keep data moving.
function Indexer:tick()
  if self.route then return self:_tick_routed() end
  if #self.cur > 0 and self.flush_interval and self.client:now() - self.cur_born >= self.flush_interval then
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
  while self.n_inflight < self.concurrency and #self.retryq > 0 and not self.stopped do
    local b, at = self:_earliest()
    if b.due > self.client:now() then return end
    remove(self.retryq, at)
    self.retry_bytes = self.retry_bytes - b.bytes
    self:_submit(b)
  end
end

-- One turn of the loop: send due retries, wait at most `wait` for completions.
function Indexer:_pump(wait)
  if self.stopped then return end
  self:_send_due()
  if self.n_inflight == 0 then
    if wait > 0 and #self.retryq > 0 then
      local b = self:_earliest()
      local d = b.due - self.client:now()
      if d > 0 then self.client:sleep(d < wait and d or wait) end
      self:_send_due()
    end
    return self:_check_stall()
  end
  local done = self.client:_wait(self.owner, wait)
  local failure
  for _, res in ipairs(done) do
    local ok, err = pcall(self._complete, self, res)
    if not ok and not failure then failure = err end
  end
  if failure then error(failure, 0) end
  self:_send_due()
  self:_check_stall()
end

function Indexer:_drain_retries()
  while self.retry_bytes > self.max_retry_bytes and not self.stopped do self:_pump(1) end
end

----------------------------------------------------------------------------
-- Stopping

-- Stop at once: nothing more is sent, what is pending is abandoned and
-- counted as unsent (never dead-lettered: the documents are not at fault).
function Indexer:_stop(err)
  if self.stopped then return end
  self.stopped, self.halt = err, err
  for id, batch in pairs(self.inflight) do
    self.inflight[id] = nil
    self.client:_disown(id)
    self:_abandon(batch, true)
  end
  self.n_inflight = 0
  for _, batch in ipairs(self.retryq) do self:_abandon(batch) end
  self.retryq, self.retry_bytes = {}, 0
end

function Indexer:_abandon(batch, in_flight)
  self.stats.unsent = self.stats.unsent + batch.n
  if not in_flight then self:_release(batch.buf) end -- a buffer in flight stays pinned
end

-- Requests pending and no answer (only timeouts, or nothing) for stall_timeout.
function Indexer:_check_stall()
  if self.stopped or (self.n_inflight == 0 and #self.retryq == 0) then return end
  local now = self.client:now()
  local quiet = now - self.last_answer
  if quiet < self.stall_timeout then return end
  self:_stop(errors.new{
    kind = "stalled", host = self.last_host, seconds = quiet,
    message = string.format("stalled: no answer from the cluster for %.0f s (stall_timeout %g s) with %d "
      .. "request(s) in flight and %d waiting to be retried; the documents not acknowledged are not "
      .. "dead-lettered", quiet, self.stall_timeout, self.n_inflight, #self.retryq),
  })
end

function Indexer:_complete(res)
  local batch = self.inflight[res.id]
  if not batch then return end
  self.inflight[res.id] = nil
  self.n_inflight = self.n_inflight - 1
  local req = { method = "POST", path = self.path }
  self.last_host = res.host
  if not (res.err and res.err.code == "timeout") then self.last_answer = self.client:now() end
  if res.err then
    if batch.host then self:_node_failed(batch) end
    local err = errors.transport_error(res.err, req)
    return self:_batch_failed(batch, err, 0, self.policy:classify(err))
  end
  local status = res.status
  if status == 200 then
    local r, msg, off = scan_response(res.body or "")
    if self.adaptive then self:_adapt(batch, 200, r) end
    if r and r.count == batch.n then
      return self:_items_done(batch, r)
    end
    local reason = r and ("bulk response has " .. r.count .. " items for " .. batch.n .. " actions")
      or ("unreadable bulk response: " .. tostring(msg) .. " at byte " .. tostring(off))
    return self:_batch_failed(batch, errors.new{ kind = "http", status = 200, reason = reason,
                                                 type = "bad_response", request = req }, 200, "retry")
  end
  if self.adaptive then self:_adapt(batch, status) end
  if status == 413 then return self:_split(batch) end
  local err = http_error(res, req)
  local class = self.policy:classify(err)
  if class ~= "permanent" then
    if batch.host and status >= 500 then self:_node_failed(batch) end
    return self:_batch_failed(batch, err, status, class)
  end
  -- any other status: this request can never succeed as it is
  local raw = '{"type":' .. encode(err.type or "http_error") .. ',"reason":' .. encode(err.reason or "") .. '}'
  for i = 1, batch.n do
    self:_dead(batch.buf, i, batch.att + 1, status, raw, err.type, err.reason)
  end
  self:_flush_dead()
  if self.on_batch then self:_settled(batch, 0, batch.n) end
  self:_release(batch.buf)
end

local ALL = setmetatable({}, { __index = function() return true end })

-- on_batch: the tokens of the batch's documents that are now settled (all
-- but the positions in `kept`, which go on in a retry batch); dead: the
-- positions dead-lettered (nil: none; every one when ok == 0).
function Indexer:_settled(batch, ok, failed, kept, dead)
  local tokens, out, lost = batch.tokens, {}, {}
  if ok == 0 and failed > 0 then dead = ALL end
  if tokens and not kept and not dead and #tokens == batch.n then
    out = tokens -- every document of the batch settled, each with its token: the list as it is
  elseif tokens then
    for pos = 1, batch.n do
      local t = tokens[pos]
      if t ~= nil and not (kept and kept[pos]) then
        out[#out + 1] = t
        if dead and dead[pos] then lost[#lost + 1] = t end
      end
    end
  end
  self.on_batch{ ok = ok, failed = failed, tokens = out, failed_tokens = lost }
end

function Indexer:_items_done(batch, r)
  local stats = self.stats
  stats.ok = stats.ok + r.ok
  stats.created = stats.created + r.created
  stats.updated = stats.updated + r.updated
  stats.deleted = stats.deleted + r.deleted
  stats.noop = stats.noop + r.noop
  stats.not_found = stats.not_found + r.not_found
  local buf = batch.buf
  if r.failed == 0 then
    if self.on_batch then self:_settled(batch, r.ok, 0) end
    return self:_release(buf)
  end
  local again, n, kept, again_tokens, dead_at
  local attempts = batch.att + 1
  local tokens = batch.tokens
  local ok, dead = r.ok, 0
  local wait -- before the retry of this batch's retryable items; false: retry_for is spent
  local function can_retry()
    if wait == nil then wait = self:_retry_delay(batch, attempts) or false end
    return wait
  end
  for _, f in ipairs(r.failures) do
    local pos = f.pos
    if f.status == 409 and f.op == "create" and (self.conflict_ok or (batch.att > 0 and auto_id_of(buf, pos))) then
      -- the document is there already: done, as the caller asked, or our
      -- own earlier attempt whose response was lost (an id we made)
      ok = ok + 1
      stats.ok = stats.ok + 1
      stats.conflicts = (stats.conflicts or 0) + 1
    elseif self.policy:classify_item(f) == "retry" and can_retry() then
      if not again then again, n, kept = self:_take_buffer(), 0, {} end
      append_from(again, buf, pos)
      n = n + 1
      kept[pos] = true
      if tokens and tokens[pos] ~= nil then
        again_tokens = again_tokens or {}
        again_tokens[n] = tokens[pos]
      end
    else
      dead = dead + 1
      if self.on_batch then dead_at = dead_at or {} dead_at[pos] = true end
      self:_dead(buf, pos, attempts, f.status, f.error or encode(f.reason or ""), f.type, f.reason)
    end
  end
  self.budget:ok(ok)
  if self.on_batch then self:_settled(batch, ok, dead, kept, dead_at) end
  if again then
    local b = new_batch(again, attempts, n, again:bytes())
    b.tokens = again_tokens
    b.host = batch.host
    b.rs = batch.rs
    if batch.host then self.router:on_item_retry(r.failures) end
    self:_queue_retry(b, wait)
  end
  self:_flush_dead()
  self:_release(buf)
end

-- The wait before attempt `attempts` + 1 of batch's documents, or nil when
-- retry_for (counted from the batch's first failure) or the deprecated
-- retries is spent.
function Indexer:_retry_delay(batch, attempts)
  if self.retries and attempts > self.retries then return nil end
  local now = self.client:now()
  local rs = batch.rs
  if not rs then
    rs = self.policy:start(now)
    batch.rs = rs
  end
  return rs:next_delay(now)
end

-- Whole-request failure, classified by the retry policy: retried as a whole
-- while retry_for lasts, else every item dead-lettered; systemic: stop.
function Indexer:_batch_failed(batch, err, status, class)
  if class == "systemic" then
    self:_abandon(batch)
    return self:_stop(errors.systemic(err))
  end
  local raw
  local function dead(pos, attempts)
    raw = raw or ('{"type":' .. encode(err.type or err.kind or "error") .. ',"reason":'
      .. encode(tostring(err.reason or err.message or err)) .. '}')
    self:_dead(batch.buf, pos, attempts, status ~= 0 and status or nil, raw, err.type or err.kind,
               err.reason or err.message)
  end
  local attempts = batch.att + 1
  local delay = class == "retry" and self:_retry_delay(batch, attempts)
  if delay then
    -- the same buffer goes again as it is
    batch.att = attempts
    return self:_queue_retry(batch, delay)
  end
  for i = 1, batch.n do dead(i, attempts) end
  self:_flush_dead()
  if self.on_batch then self:_settled(batch, 0, batch.n) end
  self:_release(batch.buf)
end

-- Queue batch to be sent again after delay seconds (its retry state,
-- batch.rs, goes with it).
function Indexer:_queue_retry(batch, delay)
  batch.due = self.client:now() + (delay or 0)
  self.stats.retried = self.stats.retried + batch.n
  self.retryq[#self.retryq + 1] = batch
  self.retry_bytes = self.retry_bytes + batch.bytes
end

-- 413: halve the batch; one document still too large is dead-lettered.
function Indexer:_split(batch)
  if batch.n == 1 then
    self:_dead(batch.buf, 1, batch.att + 1, 413,
      '{"type":"request_entity_too_large","reason":"the document alone exceeds the request size limit"}',
      "request_entity_too_large", "the document alone exceeds the request size limit")
    self:_flush_dead()
    if self.on_batch then self:_settled(batch, 0, 1) end
    return self:_release(batch.buf)
  end
  local first, second = split(batch.buf)
  local half = #first
  self:_release(batch.buf)
  local p1 = new_batch(first, batch.att, half, first:bytes())
  local p2 = new_batch(second, batch.att, batch.n - half, second:bytes())
  local tokens = batch.tokens
  if tokens then
    p1.tokens, p2.tokens = {}, {}
    for pos, t in pairs(tokens) do
      if pos <= half then p1.tokens[pos] = t else p2.tokens[pos - half] = t end
    end
  end
  for _, part in ipairs{ p1, p2 } do
    part.host = batch.host
    part.rs = batch.rs
    part.due = self.client:now()
    self.retryq[#self.retryq + 1] = part
    self.retry_bytes = self.retry_bytes + part.bytes
  end
end

----------------------------------------------------------------------------
-- Dead letters

function Indexer:_dead(buf, pos, attempts, status, raw_error, etype, reason)
  self.stats.failed = self.stats.failed + 1
  local action, source = item_of(buf, pos)
  if self.index_name and not action:find('^{"%a+":{"_index":') then
    -- the index was in the URL: put it in the action so the line replays anywhere
    local op, rest = action:match('^{"(%a+)":{(.*)$')
    if op then
      action = '{"' .. op .. '":{"_index":' .. encode(self.index_name) .. (rest:sub(1, 1) == "}" and "" or ",") .. rest
    end
  end
  local rec = '{"action":' .. action .. (source and (',"source":' .. source) or "")
    .. (status and (',"status":' .. status) or "") .. ',"error":' .. raw_error
    .. ',"attempts":' .. attempts .. '}\n'
  local over = self.budget:fail{ id = action:match('"_id":"([^"]*)"') or action:match('"_id":(%d+)'),
                                 index = action:match('"_index":"([^"]*)"') or self.index_name,
                                 status = status, type = etype, reason = reason }
  if over and not self.halt then self.halt = over end
  if self.dead_file then self:_dead_written(self.dead_file:write(rec)) end
  if self.dead_bulk then self:_dead_written(self.dead_bulk:write(action, "\n", source and (source .. "\n") or "")) end
  if self.dead_fn or self.on_error then
    local item = { action = action, source = source, status = status, error = raw_error,
                   type = etype, reason = reason, attempts = attempts, record = rec }
    if self.dead_fn then self.dead_fn(item) end
    if self.on_error then self.on_error(item) end
  end
end

function Indexer:_flush_dead()
  if self.dead_file then self:_dead_written(self.dead_file:flush()) end
  if self.dead_bulk then self:_dead_written(self.dead_bulk:flush()) end
end

-- A dead-letter write or flush that failed (disk full, ...): the failed
-- documents are no longer all recorded, so the indexer stops taking more and
-- says why (this error wins over any other reason to halt).
function Indexer:_dead_written(ok, err)
  if ok or (self.halt and self.halt.dead_letter_lost) then return end
  self.halt = errors.new { kind = "output", dead_letter_lost = true,
    message = "bulk_indexer: cannot write the dead letter (" .. tostring(err) .. "): failed documents may be "
      .. "missing from it; the indexer stopped taking documents" }
end

----------------------------------------------------------------------------
-- Ending

-- Send everything and wait until every document is acknowledged or dead-lettered.
-- Returns stats, err: err when the indexer stopped (systemic, stalled) or
-- its error budget is spent.
function Indexer:flush()
  if self.closed then error("bulk_indexer: already closed", 2) end
  if self.stopped then
    self:_abandon_current()
  elseif self.route then
    self:_ship_all_routed()
  else
    self:_ship_current()
  end
  while (self.n_inflight > 0 or #self.retryq > 0) and not self.stopped do self:_pump(1) end
  return self:stats_now(), self.halt
end

-- The documents added after a stop: never sent.
function Indexer:_abandon_current()
  -- (items of self.cur before staged_from have moved to other batches already)
  local n = self.cur and #self.cur - (self.staged_from or 1) + 1 or 0
  if n > 0 then
    self.stats.unsent = self.stats.unsent + n
    reset(self.cur)
  end
  self.staged_from = nil
  if self.anywhere and #self.anywhere > 0 then
    self.stats.unsent = self.stats.unsent + #self.anywhere
    reset(self.anywhere)
  end
  for host, g in pairs(self.groups or {}) do
    self.stats.unsent = self.stats.unsent + #g.buf
    reset(g.buf)
    self.groups[host] = nil
  end
end

function Indexer:stats_now()
  local s = {}
  for k, v in pairs(self.stats) do s[k] = v end
  s.elapsed = self.client:now() - self.started
  if self.adaptive then s.adaptive, s.tuning = self.adaptive:state(), self.adaptive:label() end
  return s
end

-- Closes the dead-letter files; one this indexer created and never wrote to is removed.
function Indexer:_close_dead_files()
  if self.dead_file then
    self.dead_file:close()
    if self.stats.failed == 0 and not self.dead_file_existed then os.remove(self.stats.dead_letter) end
  end
  if self.dead_bulk then
    self.dead_bulk:close()
    if self.stats.failed == 0 and not self.dead_bulk_existed then os.remove(self.stats.dead_letter_bulk) end
  end
  self.dead_file, self.dead_bulk = nil, nil
end

-- Flush, close the dead letter, and return the final stats.
function Indexer:close()
  if self.closed then return self.final, self.halt end
  local ok, err = pcall(self.flush, self)
  self.closed = true
  self:_close_dead_files()
  self.final = self:stats_now()
  self.pool, self.cur, self.groups, self.anywhere = {}, nil, nil, nil
  if not ok then error(err, 0) end
  return self.final, self.halt
end

M.Indexer = Indexer
return M
