-- The terms lookup form of a terms query ({"terms": {"f": {"index": ..,
-- "id": .., "path": .., "routing": ..}}}): the values are read from the
-- document (as a realtime get does) and put in the query before it is
-- compiled, so the limits and the matcher see a plain list.
local json = require("espipe.server.json")
local cluster_indices = require("espipe.server.cluster_indices")
local cluster_shards = require("espipe.server.cluster_shards")
local doc_fields = require("espipe.server.doc_fields")

local M = {}

local function lookup(spec)
  local idx = cluster_indices.write_target(spec.index)
  local list = json.array()
  if not idx then return list end
  local id = tostring(spec.id)
  local sh = cluster_shards.shard_for(idx, id, spec.routing)
  local rec = sh and idx.shards[sh].docs[id]
  if not rec then return list end
  local src = json.decode(rec.src)
  for _, v in ipairs(doc_fields.field_values(src, spec.path)) do
    if type(v) == "table" and v ~= json.null then
      for _, x in ipairs(v) do list[#list + 1] = x end
    elseif v ~= json.null then
      list[#list + 1] = v
    end
  end
  return list
end

-- rewrite(q): replaces every lookup in q (in place)
function M.rewrite(q)
  if type(q) ~= "table" or q == json.null then return end
  for name, body in pairs(q) do
    if name == "terms" and type(body) == "table" then
      for field, spec in pairs(body) do
        if type(spec) == "table" and not json.is_array(spec) and spec.index and spec.id and spec.path then
          body[field] = lookup(spec)
        end
      end
    elseif type(body) == "table" then
      M.rewrite(body)
    end
  end
end

return M
