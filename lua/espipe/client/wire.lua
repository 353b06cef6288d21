-- The requests and answers that differ between the wires of
-- espipe.client.version, in one place, so the scan and the bulk indexer ask
-- "how do I open a point in time here" instead of testing version numbers.
-- Every function takes a profile from client.version (nil: Elasticsearch 8).
local json = require("espipe.json")
local version = require("espipe.client.version")

local M = {}

local DEFAULT = assert(version.parse("8.15.0"))

local function profile(v) return v or DEFAULT end

-- The request that opens a point in time on `index`, or nil when the cluster
-- has none (the caller then scrolls, or fails when a PIT was asked for).
function M.pit_open(v, index, keep_alive)
  v = profile(v)
  if v.pit == "elasticsearch" then
    return { method = "POST", path = "/" .. index .. "/_pit", query = "keep_alive=" .. keep_alive }
  elseif v.pit == "opensearch" then
    return { method = "POST", path = "/" .. index .. "/_search/point_in_time",
             query = "keep_alive=" .. keep_alive }
  end
  return nil
end

-- The id in the open call's answer: `id` (Elasticsearch) or `pit_id` (OpenSearch).
function M.pit_id(v, answer)
  if type(answer) ~= "table" then return nil end
  if profile(v).pit == "opensearch" then return answer.pit_id end
  return answer.id
end

-- The request that releases a point in time.
function M.pit_close(v, id)
  if profile(v).pit == "opensearch" then
    return { method = "DELETE", path = "/_search/point_in_time", body = json.encode { pit_id = { id } } }
  end
  return { method = "DELETE", path = "/_pit", body = json.encode { id = id } }
end

-- The default sort of a PIT scan: the cheapest total order the cluster has.
function M.pit_sort(v)
  local sort = {}
  for i, key in ipairs(profile(v).pit_sort) do sort[i] = key end
  return sort
end

-- hits.total as a number, whichever form the cluster answered in
-- (6.x: an integer; 7.0+: { value =, relation = }).
function M.total(hits_total)
  if type(hits_total) == "number" then return hits_total end
  if type(hits_total) == "table" then return hits_total.value end
  return nil
end

-- A GET /{index}/_mapping answer without 6.x's type level (there each
-- index's mappings sit under its one type: { i = { mappings = { _doc = {...} } } }),
-- so callers read one shape from every release. Changed in place, returned.
function M.untyped_mappings(v, answer)
  if not profile(v).bulk_type or type(answer) ~= "table" then return answer end
  for _, entry in pairs(answer) do
    local m = type(entry) == "table" and entry.mappings
    local name, inner = nil, nil
    if type(m) == "table" then name, inner = next(m) end
    if name ~= nil and next(m, name) == nil and type(inner) == "table" then entry.mappings = inner end
  end
  return answer
end

-- The `_type` a bulk action line must carry on this cluster, or nil.
function M.bulk_type(v)
  return profile(v).bulk_type
end

return M
