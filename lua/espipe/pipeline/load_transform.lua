-- A load's transform: each decoded document goes through it (one by one, or
-- gathered into batches of its size) before it is handed to the indexer.
--
--   local lt = load_transform.new(job, value, dead_letter_path)   -- job: espipe.pipeline.load's
--   lt:take(doc, lineno, offset) -> false to stop
--   lt:flush()         the batch gathered so far (at the end of the input, or when stopped)
--   lt:close(summary)  dead letter closed and named in the summary, lookups' connections closed
-- Contract and results: espipe.pipeline.transform. The transformed document
-- is then placed as load places any: index_pattern, id_field and
-- routing_field read it, its own _id/_index/_routing win; one they cannot
-- place is a bad line (--on-bad-line).
local transform = require "espipe.pipeline.transform"
local deadletter = require "espipe.pipeline.deadletter"
local errors = require "espipe.client.errors"

local M = {}
local LoadTransform = {}
LoadTransform.__index = LoadTransform

function M.new(job, value, dl_path)
  local t = transform.new(value)
  local s = job.summary
  s.dropped, s.fanned_out, s.transform_errors = 0, 0, 0
  return setmetatable({ job = job, t = t, ctx = t:context(job.opts.client), dl = deadletter.new(dl_path),
    docs = {}, from = {} }, LoadTransform)
end

-- The transform cannot go on: the job fails with err (the first failure wins).
function LoadTransform:stop(err)
  self.fatal = true
  self.job.failure = self.job.failure or err
  return false
end

function LoadTransform:add(doc, from)
  local job = self.job
  if type(doc) ~= "table" then
    return self:stop(errors.new { kind = "transform", line = from.line, message = "the transform returned a "
      .. type(doc) .. " for line " .. from.line .. ": a document is a table" })
  end
  local meta, why = job:meta_for(doc, transform.take_meta(doc, {}))
  if not meta then return job:bad(from.line, from.offset, why .. " (after the transform)") end
  return job:add(job.opts.op or "index", doc, meta, meta._index)
end

function LoadTransform:failed(doc, from, why)
  local s = self.job.summary
  s.transform_errors = s.transform_errors + 1
  local ok, err = transform.dead_letter(self.dl, self.job.ix.budget,
    { line = from.line, offset = from.offset, error = why, source = doc })
  if not ok then return self:stop(err) end
  return true
end

function LoadTransform:result(doc, from, kind, v)
  local s = self.job.summary
  if kind == "keep" then return self:add(v, from) end
  if kind == "drop" then s.dropped = s.dropped + 1 return true end
  if kind == "failed" then return self:failed(doc, from, v) end
  if kind == "fatal" then return self:stop(v) end
  for _, d in ipairs(v) do if not self:add(d, from) then return false end end
  s.fanned_out = s.fanned_out + #v
  return true
end

function LoadTransform:take(doc, lineno, offset)
  local from = { line = lineno, offset = offset }
  local t = self.t
  if not t.batch then return self:result(doc, from, t:one(doc, from, self.ctx)) end
  local n = #self.docs + 1
  self.docs[n], self.from[n] = doc, from
  if n >= t.size then return self:flush() end
  return true
end

function LoadTransform:flush()
  local docs, from = self.docs, self.from
  if self.fatal then return false end
  if #docs == 0 then return true end
  self.docs, self.from = {}, {}
  local out, errs = self.t:run_batch(docs, self.ctx, from)
  if not out then return self:stop(errs) end
  for i = 1, #docs do
    if not self:result(docs[i], from[i], transform.result(out, errs, i)) then return false end
  end
  return true
end

function LoadTransform:close(summary)
  self.dl:close()
  if self.dl.count > 0 then summary.transform_dead_letter = self.dl.path end
  self.ctx:close()
end

return M
