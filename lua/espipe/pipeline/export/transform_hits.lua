-- An export's transform: each page's hits go through it before the sink
-- writes them (contract: espipe.pipeline.transform). A kept document
-- replaces its hit's _source (its own _id wins, and is removed from it); a
-- fan-out gives one hit per document; what the transform raised on goes to
-- the transform dead letter, against the error budget (max_errors).
--
--   local th = transform_hits.new{ transform =, client =, dead_letter = PATH, max_errors = }
--   th:hits(hits) -> the hits to write | nil, err (the export stops)
--   th.dropped, th.fanned_out, th.failed;  th:close() -> the dead letter's path when written
local transform = require "espipe.pipeline.transform"

local Hits = {}
Hits.__index = Hits

-- (export has no indexer: its transform keeps its own error budget)
local function budget(max_errors)
  return require("espipe.pipeline.error_budget").new({ max_errors = max_errors }, 4)
end

local M = {}

function M.new(o)
  local t = transform.new(o.transform)
  return setmetatable({ t = t, ctx = t:context(o.client), dl = require("espipe.pipeline.deadletter").new(o.dead_letter),
    budget = budget(o.max_errors), dropped = 0, fanned_out = 0, failed = 0 }, Hits)
end

local function hit_of(doc, hit)
  local meta = transform.take_meta(doc, { _id = hit._id, _index = hit._index, routing = hit._routing })
  return { _id = meta._id, _index = meta._index, _routing = meta.routing, _source = doc }
end

-- One result into out; nil, err when the export must stop.
function Hits:result(out, hit, kind, v)
  if kind == "keep" then out[#out + 1] = hit_of(v, hit)
  elseif kind == "drop" then self.dropped = self.dropped + 1
  elseif kind == "many" then
    for _, doc in ipairs(v) do out[#out + 1] = hit_of(doc, hit) end
    self.fanned_out = self.fanned_out + #v
  elseif kind == "failed" then
    self.failed = self.failed + 1
    return transform.dead_letter(self.dl, self.budget,
      { _index = hit._index, _id = hit._id, error = v, source = hit._source })
  else
    return nil, v
  end
  return true
end

function Hits:batches(hits, out)
  local t = self.t
  for first = 1, #hits, t.size do
    local chunk, docs = {}, {}
    for i = first, math.min(first + t.size - 1, #hits) do chunk[#chunk + 1], docs[#docs + 1] = hits[i], hits[i]._source end
    local res, errs = t:run_batch(docs, self.ctx, chunk)
    if not res then return nil, errs end
    for i, hit in ipairs(chunk) do
      local ok, err = self:result(out, hit, transform.result(res, errs, i))
      if not ok then return nil, err end
    end
  end
  return true
end

function Hits:hits(hits)
  local out, t, failed_before = {}, self.t, self.failed
  if t.batch then
    local ok, err = self:batches(hits, out)
    if not ok then return nil, err end
  else
    for _, hit in ipairs(hits) do
      local ok, err = self:result(out, hit, t:one(hit._source, hit, self.ctx))
      if not ok then return nil, err end
    end
  end
  local over = self.budget:ok(#hits - (self.failed - failed_before))
  if over then return nil, over end
  return out
end

function Hits:close()
  self.dl:close()
  self.ctx:close()
  return self.dl.count > 0 and self.dl.path or nil
end

return M
