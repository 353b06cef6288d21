-- Aggregations of a search: the glue between a search's snapshot and view
-- (espipe.server.search_context) and espipe.server.aggs.
--   compute(snap, view, body, typed_keys) -> JSON text of "aggregations" | nil (no aggs) | false, err
--   (api_search loads this module only for a search that has aggs)
--   append(buf, text) -> splices ,"aggregations":text before the last "}" of a page in buf
local cluster_shards = require("espipe.server.cluster_shards")
local mapping = require("espipe.server.mapping")
local query = require("espipe.server.query")
local doc_fields = require("espipe.server.doc_fields")
local sorting = require("espipe.server.sort")
local sc = require("espipe.server.search_context")
local aggs = require("espipe.server.aggs")

local M = {}

local function context(snap, typed_keys)
  local mappings = {}
  for _, idx in ipairs(snap.indices) do
    if snap.has_docs[idx] then cluster_shards.settle_mapping(idx) end
    mappings[#mappings + 1] = mapping.to_table(idx.mapping)
  end
  local first = mappings[1]
  local ctx = { typed_keys = typed_keys }
  function ctx.resolve(field)
    for _, mp in ipairs(mappings) do
      local ty, path = doc_fields.resolve_field(mp, field)
      if ty then return ty, path end
    end
    return nil, field
  end
  function ctx.compile(q) return query.compile(q, first) end
  function ctx.sorter(spec) return sorting.compile_sort(spec, first) end
  -- documents are snapshot positions; a hit (its source decoded) is made on each use
  function ctx.hit(pos) return sc.hit(snap, pos, true) end
  function ctx.all_docs()
    local docs = {}
    for pos = 1, snap.n do docs[pos] = pos end
    return docs
  end
  return ctx
end

local function matched(view)
  local n, err = sc.view_count(view)
  if not n then return nil, err end
  local docs = {}
  for k = 1, n do
    local pos
    pos, err = sc.view_position(view, k)
    if not pos then return nil, err end
    docs[k] = pos
  end
  return docs
end

function M.compute(snap, view, body, typed_keys)
  local spec = body.aggs
  if spec == nil then spec = body.aggregations
  elseif body.aggregations ~= nil then
    return false, aggs.error("Found two aggregation definitions: [aggs] and [aggregations]", "parsing_exception")
  end
  if spec == nil then return nil end
  local parsed, err = aggs.parse(spec, context(snap, typed_keys))
  if not parsed then return false, err end
  local docs
  docs, err = matched(view)
  if not docs then return false, err end
  local result
  result, err = aggs.run(parsed, docs)
  if not result then return false, err end
  return aggs.encode(result)
end

function M.append(buf, text)
  local page = buf:get()
  buf:put(page:sub(1, -2), ',"aggregations":', text, "}")
end

return M
