-- Reindex without a transform: each raw page of the scan goes into the
-- destination's bulk batches in C (espipe.core search_bulk_append: the
-- hits' _id, _routing and _source bytes as the source sent them), with no
-- Lua value per hit. A hit the C path leaves (an unusual _id, a _source
-- that is not a one-line object ...) and every hit of an indexer that needs
-- them one by one (shard-aware routing, on_batch tokens) go through the
-- copy's per-hit path, decoded: the result is the same, only slower.
--
--   passthrough.page(copy, page) -> true | false (the job failed: job:fail was called)
--   copy: the reindex copy (emit.lua); page: a raw page of its scan (raw_pages, advance)
local core = require "espipe.core"

local append, search_response = core.search_bulk_append, core.search_response

local M = {}

-- Hits from the from-th on through the copy's per-hit path.
local function per_hit(copy, page, from)
  local v, derr = search_response(tostring(page.body), true)
  if v == nil then
    copy.job:fail(require("espipe.client.errors").new { kind = "http", status = 200, type = "bad_response",
      reason = "search response is not a page of hits: " .. tostring(derr) })
    return false
  end
  local hits = v.hits.hits
  for i = from, #hits do
    if not copy:hit(page.slice, hits[i]) then return false end
  end
  return true
end

-- The scan moves past the page (its next one requested); false once failed.
local function advance(copy, page, pos)
  local ok, err = copy.scan:advance(page, pos)
  if not ok then copy.job:fail(err) end
  return ok ~= nil
end

-- Docs taken in C count as scanned and sent at once.
local function count(summary, docs)
  summary.scanned = summary.scanned + docs
  summary.sent = summary.sent + docs
end

function M.page(copy, page)
  local ix, body, index, op = copy.ix, page.body, copy.dest_index, copy.create and "create" or "index"
  local at, pos, docs, stop = ix:fill(append, body, nil, index, op)
  if at == false then -- the indexer takes documents one by one
    return advance(copy, page) and per_hit(copy, page, 1)
  end
  if docs == nil then copy.job:fail(pos) return false end -- the indexer has stopped
  if stop == "bad" then -- the scan says why, in its words
    return advance(copy, page) and per_hit(copy, page, 1)
  end
  if not advance(copy, page, pos) then return false end
  local taken = docs
  count(copy.summary, docs)
  while stop == "full" do
    at, pos, docs, stop = ix:fill(append, body, at, index, op)
    if docs == nil then copy.job:fail(pos) return false end
    taken = taken + docs
    count(copy.summary, docs)
  end
  if stop == "hit" then return per_hit(copy, page, taken + 1) end
  return true
end

return M
