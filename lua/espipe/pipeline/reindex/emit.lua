-- Stage 2 of a reindex: the copy. Pages of the source scan go through the
-- transform into per-slice windows, which are handed to the destination's
-- bulk indexer (sorted by shard with presort); the checkpoint positions move
-- as batches settle.
--
--   local copy = emit.new(job)   -- job from reindex.prepare
--   copy:run()                   -- until the scan ends, a failure (job:fail) or a signal
--   copy.ix, copy.scan, copy.dead, copy.transform_dl, copy.positions,
--   copy.written (indices written, sorted at the end), copy.interrupted
local interrupt = require "espipe.pipeline.interrupt"
local many = require "espipe.pipeline.reindex.many"
local positions = require "espipe.pipeline.reindex.positions"
local dead_letter = require "espipe.pipeline.reindex.dead_letter"
local contract = require "espipe.pipeline.transform" -- ("transform" is the per-document function below)
local passthrough = require "espipe.pipeline.reindex.passthrough"

local M = {}

local function indexer(job, dead, pos)
  local opts, dst = job.opts, job.dst
  return dst.client:bulk_indexer {
    index = not dst.same_names and dst.index or nil, batch_bytes = opts.batch_bytes,
    -- an auto batch size is bounded by bytes only, unless the caller set batch_docs
    batch_docs = (opts.batch_docs or opts.batch_bytes ~= "auto") and (opts.batch_docs or 1000) or nil,
    concurrency = opts.concurrency, retries = opts.retries, backoff = opts.backoff, dead_letter = dead:sink(),
    max_concurrency = opts.max_concurrency, max_batch_bytes = opts.max_batch_bytes,
    on_batch = pos and function(b)
      pos.acks:settled(b.tokens)
      pos:maybe_save() -- also while the scan waits: positions move as batches settle
    end or nil,
    retry_for = opts.retry_for, max_errors = opts.max_errors, stall_timeout = opts.stall_timeout,
    error_budget = opts.error_budget, conflict_ok = job.op == "create", doc_type = job.doc_type,
  }
end

local Copy = {}
Copy.__index = Copy

function M.new(job)
  local opts, src = job.opts, job.src
  local xf = opts.transform and contract.new(opts.transform)
  -- what the per-document path reads, flat on the copy
  -- same_names: no one destination, each hit goes to its own index's name
  local dest = not job.dst.same_names and job.dst.index or nil
  local self = setmetatable({ job = job, summary = job.summary, transform = xf and xf.fn,
    xform = xf and xf.batch and xf, ctx = xf and xf:context(src.client),
    dest_index = dest, window = job.window, create = job.op == "create", sorter = job.sorter,
    groups = {},                     -- per-slice documents waiting for a window to fill
    meta = {},                       -- the bulk metadata of the document being sent
    written = { dest }, seen_index = dest and { [dest] = true } or {} }, Copy)
  self.dead = dead_letter.new(job)
  self.positions = positions.new(job)
  self.ix = indexer(job, self.dead, self.positions)
  local transform_dl = (opts.dead_letter or "espipe-deadletter.ndjson") .. ".transform"
  self.transform_dl = require("espipe.pipeline.deadletter").new(transform_dl)
  -- no transform, windows or checkpoint tokens, one destination name and no 6.x _type:
  -- pages go to the batches in C (passthrough.lua), whose action lines carry neither
  local raw = opts.transform == nil and not job.sorter and not self.positions and dest ~= nil
    and not job.doc_type
  self.scan = src.client:scan(src.index, src.query, {
    slices = src.slices or 1, size = src.size or 1000, keep_alive = src.keep_alive or "5m",
    resume = job.state.slices, pit_id = job.state.pit_id, keep_pit = self.positions and true or nil,
    retry = job.policy,
    raw_source = opts.transform == nil,   -- passthrough: _source bytes never decoded
    raw_pages = raw or nil, advance = raw or nil,
  })
  if self.positions then self.positions.scan, self.acks = self.scan, self.positions.acks end
  return self
end

-- Bulk metadata into meta: the hit's, or the document's own _id, _index
-- and _routing (removed from its source).
local function meta_of(meta, doc, hit, dest_index)
  meta._index, meta._id, meta.routing = dest_index or hit._index, hit._id, hit._routing
  if type(doc) == "table" then
    if doc._id ~= nil then meta._id = doc._id; doc._id = nil end
    if doc._index ~= nil then meta._index = doc._index; doc._index = nil end
    if doc._routing ~= nil then meta.routing = doc._routing; doc._routing = nil end
  end
  return meta
end

-- The per-document path (hand, add, hit) is made of local functions and
-- reads flat fields: it runs for every document.

-- One document to the indexer; false once the job has failed.
local function send(self, doc, meta)
  local ok, err
  if self.create then ok, err = self.ix:create(doc, meta) else ok, err = self.ix:index(doc, meta) end
  if ok == nil and err then self.job:fail(err) return false end
  self.summary.sent = self.summary.sent + 1
  return true
end

-- One window to the indexer; false once the job has failed.
local function hand(self, slice, items)
  local ix, sorter = self.ix, self.sorter
  if sorter then items = sorter:order(items, slice) end
  for _, it in ipairs(items) do
    -- pre-sorted: a request ends where the shard changes, so each one
    -- carries a single shard's documents (last_shard spans windows)
    if sorter and it.shard ~= self.last_shard then
      if self.last_shard ~= nil then ix:ship() end
      self.last_shard = it.shard
    end
    if not send(self, it.doc, it.meta) then return false end
  end
  return true
end
Copy.hand = hand

-- Whatever the windows hold, on every exit path.
function Copy:hand_all()
  for slice, items in pairs(self.groups) do
    if #items > 0 and not hand(self, slice, items) then return false end
    self.groups[slice] = {}
  end
  return true
end

-- Without presort a document goes to the indexer at once; with it, into
-- its slice's window.
local function add(self, slice, doc, hit, token)
  local dest = self.dest_index
  -- (the indexer reads meta during the call and keeps none of it: without
  -- windows one table serves every document)
  local meta = meta_of(self.sorter and {} or self.meta, doc, hit, dest)
  local index = meta._index
  if index ~= dest and not self.seen_index[index] then
    self.seen_index[index] = true
    self.written[#self.written + 1] = index
  end
  if token then
    meta.token = token
    self.acks:add(token)
  end
  if not self.sorter then return send(self, doc, meta) end
  local groups = self.groups
  local g = groups[slice]
  if not g then g = {}; groups[slice] = g end
  g[#g + 1] = { doc = doc, meta = meta, id = meta._id, routing = meta.routing }
  if #g >= self.window then
    groups[slice] = {}
    return hand(self, slice, g)
  end
  return true
end
Copy.add = add

-- The transform's result and how many values it returned (0: it forgot to return).
local function called(ok, ...) return ok, select("#", ...), ... end

local function no_value_error(hit)
  return require("espipe.client.errors").new { kind = "transform", message = "the transform returned no value for document "
    .. tostring(hit._index) .. "/" .. tostring(hit._id)
    .. " (return the document to keep it, or nil explicitly to drop it)" }
end

-- A transform that raised: the hit goes to the transform dead letter and
-- counts against the error budget, so one raising on every document stops the job.
function Copy:transform_failed(hit, why)
  local summary, job = self.summary, self.job
  summary.transform_errors = summary.transform_errors + 1
  local ok, err = self.transform_dl:add { _index = hit._index, _id = hit._id, error = why, source = hit._source }
  if not ok then job:fail(err) return false end
  local over = self.ix.budget:fail { id = hit._id, index = hit._index, reason = "transform: " .. why }
  if over then job:fail(over) return false end
  return true
end

local function each_hit(self, slice, hit, token)
  local summary, transform = self.summary, self.transform
  summary.scanned = summary.scanned + 1
  if not transform then return add(self, slice, hit._source, hit, token) end
  local ok, nret, out = called(pcall(transform, hit._source, hit, self.ctx))
  if not ok then return self:transform_failed(hit, tostring(out)) end
  if nret == 0 then self.job:fail(no_value_error(hit)) return false end
  if out == nil then
    summary.dropped = summary.dropped + 1
  elseif many.is(out) then
    for _, doc in ipairs(out) do if not add(self, slice, doc, hit, token) then return false end end
    summary.fanned_out = summary.fanned_out + #out
  else
    return add(self, slice, out, hit, token)
  end
  return true
end
Copy.hit = each_hit

-- One result of a batch transform (espipe.pipeline.transform.result).
function Copy:batch_result(slice, hit, token, kind, v)
  local summary = self.summary
  if kind == "failed" then return self:transform_failed(hit, v) end
  if kind == "drop" then summary.dropped = summary.dropped + 1 return true end
  if kind == "keep" then return add(self, slice, v, hit, token) end
  for _, doc in ipairs(v) do if not add(self, slice, doc, hit, token) then return false end end
  summary.fanned_out = summary.fanned_out + #v
  return true
end

-- A batch transform: the page's hits in chunks of its size (a batch never
-- spans pages: a page's checkpoint token is sealed once all its hits are in).
function Copy:batch_page(slice, hits, token)
  local xf = self.xform
  for first = 1, #hits, xf.size do
    local chunk, docs = {}, {}
    for i = first, math.min(first + xf.size - 1, #hits) do
      chunk[#chunk + 1], docs[#docs + 1] = hits[i], hits[i]._source
    end
    self.summary.scanned = self.summary.scanned + #chunk
    local out, errs = xf:run_batch(docs, self.ctx, chunk)
    if not out then self.job:fail(errs) return false end
    for i, hit in ipairs(chunk) do
      if not self:batch_result(slice, hit, token, contract.result(out, errs, i)) then return false end
    end
  end
  return true
end

-- After a page: checkpoint, progress, --rate pacing.
function Copy:after_page()
  local job, opts = self.job, self.job.opts
  if self.positions then self.positions:maybe_save() end
  if opts.progress then
    local s = self.ix:stats_now()
    opts.progress:update { done = self.summary.scanned, bytes = s.bytes, retries = s.retried, failed = s.failed,
                           tuning = s.tuning }
  end
  if opts.rate and opts.rate > 0 then
    local clock = job.src.client
    local ahead = self.summary.scanned / opts.rate - (clock:now() - self.started)
    if ahead > 0 then interrupt.sleep(clock, ahead) end
  end
end

-- false: stop taking pages (a failure, or Ctrl-C / SIGTERM: what was taken is flushed by finish)
function Copy:page(page)
  if page.body then
    if not passthrough.page(self, page) then return false end
  else
    local slice, acks = page.slice, self.acks
    local token = acks and acks:page(slice, { search_after = page.search_after, done = page.last or nil })
    if self.xform then
      if not self:batch_page(slice, page.hits, token) then return false end
    else
      for _, hit in ipairs(page.hits) do
        if not each_hit(self, slice, hit, token) then return false end
      end
    end
    if token then acks:sealed(token) end
  end
  self:after_page()
  self.interrupted = self.interrupted or interrupt.received()
  return not self.job.failure and not self.interrupted
end

function Copy:pages()
  while true do
    local page, serr = self.scan:next_page()
    if not page then
      if serr then self.job:fail(serr) end
      return
    end
    if not self:page(page) then return end
  end
end

-- A raise inside (a transform's dead letter, the indexer) is the job's failure.
function Copy:run()
  self.started = self.job.src.client:now()
  local ok, perr = pcall(self.pages, self)
  if not ok then self.job:fail(perr) end
  if self.ctx then self.ctx:close() end
end

return M
