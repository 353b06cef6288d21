-- A job's transform (reindex, load, export): loaded once, called the same way
-- by every pipeline.
--
--   local t = transform.new(value [, level])   -- a wrong value raises
--   local t, err = transform.load(path)        -- a file returning such a value
--   t.fn       the per-document function, or nil
--   t.batch    the batch function, or nil;  t.size  documents per batch
--   t:context(client) -> ctx (espipe.pipeline.transform_ctx, on the job's client)
--   t:one(doc, from, ctx) -> kind, value       (per-document transforms)
--   t:run_batch(docs, ctx, from) -> out, errs | nil, err   (batch transforms)
--   transform.result(out, errs, i) -> kind, value          (item i of a batch)
--   kind: "keep" (value: the document), "many" (value: espipe.many{...}),
--         "drop", "failed" (value: why, a string), "fatal" (value: the job's error)
--
-- A value is one of:
--   function(doc, from, ctx) ... end
--     returns the document (changed or not), nil to drop it, espipe.many{...}
--     to fan it out; raising dead-letters this document and counts against
--     the job's error budget (--max-errors); returning no value at all (a
--     forgotten `return doc`) stops the job. from: the search hit (reindex,
--     export) or { line =, offset = } (load).
--   { batch = function(docs, ctx, from) ... end, size = 500,
--     concurrency = 16, timeout = 10, retries = 2, cache = nil }
--     docs: up to size documents (a batch never spans a scan page, so at most
--     the page size); from[i]: where docs[i] came from, as above. It returns
--     out[, errs]: out[i] is docs[i]'s result exactly as a per-document
--     function's (nil drops it, espipe.many{} fans it out); errs[i] ~= nil
--     dead-letters docs[i] with that reason (a string or an error) whatever
--     out[i] holds. A result past #docs, or out not a table, stops the job,
--     as does returning no value. Raising dead-letters every document of the
--     batch with the error (each counts against the error budget).
--     concurrency/timeout/retries: ctx's lookups; cache: ctx.cache's entries.
--   { transform = function ... end }  (the older form of a per-document file)
-- A document (a table) may carry _id, _index and _routing: they set where
-- it is written and are removed from it.
local errors = require("espipe.client.errors")
local many = require("espipe.pipeline.reindex.many")
local options = require("espipe.client.options")

local type, select, pcall, tostring = type, select, pcall, tostring
local is_many = many.is

local M = {}
local Transform = {}
Transform.__index = Transform

local TABLE_KEYS = { "batch", "size", "concurrency", "timeout", "retries", "cache", "transform" }
local DEFAULT_SIZE = 500

local function bad(msg, level) error("transform: " .. msg, level + 1) end

local function check_table(v, level)
  options.check(v, TABLE_KEYS, "transform", level)
  if v.transform ~= nil then
    if type(v.transform) ~= "function" then bad("transform must be a function(doc, from, ctx)", level) end
    if v.batch ~= nil then bad("give transform or batch, not both", level) end
    return v.transform
  end
  if type(v.batch) ~= "function" then
    bad("a table needs batch = function(docs, ctx, from) (or transform = function(doc, from, ctx))", level)
  end
  local size = v.size
  if size ~= nil and (type(size) ~= "number" or size < 1 or size % 1 ~= 0) then
    bad("size must be a whole number of documents >= 1, got " .. tostring(size), level)
  end
  if v.cache ~= nil and (type(v.cache) ~= "number" or v.cache < 1 or v.cache % 1 ~= 0) then
    bad("cache must be a whole number of entries >= 1, got " .. tostring(v.cache), level)
  end
  return nil
end

function M.new(v, level)
  level = level or 2
  if getmetatable(v) == Transform then return v end
  local self = setmetatable({ lookups = {} }, Transform)
  if type(v) == "function" then
    self.fn = v
  elseif type(v) == "table" then
    self.fn = check_table(v, level + 1)
    if not self.fn then self.batch, self.size = v.batch, v.size or DEFAULT_SIZE end
    self.lookups = { concurrency = v.concurrency, timeout = v.timeout, retries = v.retries, cache = v.cache }
    -- checked now, so a bad setting is a wrong argument, not a failure later
    require("espipe.client.concurrent").options({ concurrency = v.concurrency, timeout = v.timeout,
      retries = v.retries }, "transform", level)
  else
    bad("expected a function(doc, from, ctx) or { batch = function(docs, ctx, from), size = N }, got "
      .. type(v), level)
  end
  return self
end

-- A transform file: its chunk runs once and returns the transform. A
-- syntax error names the file and line (Lua's message).
function M.load(path)
  local chunk, err = loadfile(path)
  if not chunk then return nil, errors.new { kind = "transform", message = tostring(err) } end
  local ok, v = pcall(chunk)
  if not ok then return nil, errors.new { kind = "transform", message = path .. ": " .. tostring(v) } end
  local tok, t = pcall(M.new, v, 1)
  if not tok then
    return nil, errors.new { kind = "transform", message = path .. ": " .. tostring(t):gsub("^[^:]*:%d+: ", "") }
  end
  return t
end

function Transform:context(client)
  local l = self.lookups
  return require("espipe.pipeline.transform_ctx").new { client = client, concurrency = l.concurrency,
    timeout = l.timeout, retries = l.retries, cache = l.cache }
end

local function where(from)
  if type(from) ~= "table" then return "" end
  if from.line then return " for line " .. tostring(from.line) end
  return " for document " .. tostring(from._index) .. "/" .. tostring(from._id)
end

local function no_value(what, from)
  return errors.new { kind = "transform", message = what .. " returned no value" .. where(from)
    .. " (return the document to keep it, or nil explicitly to drop it)" }
end

-- The kind of one result (as a per-document function returns it).
local function kind_of(out)
  if out == nil then return "drop" end
  if is_many(out) then return "many", out end
  return "keep", out
end

-- The result and how many values came back (0: the transform forgot to return).
local function called(ok, ...) return ok, select("#", ...), ... end

function Transform:one(doc, from, ctx)
  local ok, nret, out = called(pcall(self.fn, doc, from, ctx))
  if not ok then return "failed", tostring(out) end
  if nret == 0 then return "fatal", no_value("the transform", from) end
  return kind_of(out)
end

local function all_failed(n, why)
  local errs = {}
  for i = 1, n do errs[i] = why end
  return {}, errs
end

local NONE = {}

function Transform:run_batch(docs, ctx, from)
  local n = #docs
  local ok, nret, out, errs = called(pcall(self.batch, docs, ctx, from))
  if not ok then return all_failed(n, tostring(out)) end
  if nret == 0 then return nil, no_value("the batch transform", from and from[1]) end
  if type(out) ~= "table" or is_many(out) then
    return nil, errors.new { kind = "transform", message = "the batch transform must return a table of "
      .. "results, one per document (out[i] for docs[i]), got " .. (is_many(out) and "espipe.many" or type(out)) }
  end
  if out[n + 1] ~= nil then
    return nil, errors.new { kind = "transform", message = "the batch transform returned a result past its "
      .. n .. " documents (fan out with espipe.many{} in the document's own slot)" }
  end
  if errs ~= nil and type(errs) ~= "table" then
    return nil, errors.new { kind = "transform", message = "the batch transform's second result must be a "
      .. "table of errors (errs[i] for docs[i]), got " .. type(errs) }
  end
  return out, errs or NONE
end

function M.result(out, errs, i)
  local e = errs[i]
  if e ~= nil then return "failed", tostring(e) end
  return kind_of(out[i])
end

-- Bulk metadata from a transformed document's own _id, _index and _routing,
-- which are removed from it; meta keeps what it had for those absent.
function M.take_meta(doc, meta)
  if type(doc) ~= "table" then return meta end
  if doc._id ~= nil then meta._id = doc._id; doc._id = nil end
  if doc._index ~= nil then meta._index = doc._index; doc._index = nil end
  if doc._routing ~= nil then meta.routing = doc._routing; doc._routing = nil end
  return meta
end

-- One document the transform failed on: into the transform dead letter
-- (dl, espipe.pipeline.deadletter) and against the error budget.
-- rec = { _index =, _id =, line =, error =, source = } -> true | nil, err
function M.dead_letter(dl, budget, rec)
  local ok, err = dl:add(rec)
  if not ok then return nil, err end
  local over = budget:fail { id = rec._id, index = rec._index, line = rec.line, reason = "transform: " .. rec.error }
  if over then return nil, over end
  return true
end

M.Transform = Transform
return M
