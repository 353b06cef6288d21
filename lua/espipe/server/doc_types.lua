-- Mapping types as the --flavor's release has them (the wire profile of
-- espipe.client.version):
--   6.x        one type per index: every bulk action names it (`_type`; a
--              body where one does not is refused whole, "type is missing"),
--              a second type is refused per item, mappings are read and
--              written with the type as their top level (include_type_name,
--              default true there, false drops that level);
--   7.x        `_type` is still accepted in bulk actions, answers carry
--              "_type":"_doc", mappings are typeless;
--   8.x, OpenSearch 2.x   no types: `_type` is an unknown bulk parameter.
local flavors = require("espipe.server.flavors")
local es = require("espipe.server.es_errors")
local params = require("espipe.server.params")

local M = {}

-- Whether this release keeps one type per index (6.x).
function M.typed(opts)
  return flavors.wire_of(opts).bulk_type ~= nil
end

-- Whether bulk actions may name a type and answers carry one (6.x, 7.x).
function M.answers_typed(opts)
  return flavors.wire_of(opts).typed_responses
end

-- The type an index's answers name: its own (6.x), "_doc" (7.x).
function M.type_of(idx)
  return idx.doc_type or "_doc"
end

-- The validation error of a 6.x bulk body whose actions do not all name a
-- type (metas[i]: the decoded action, false for the fast shapes, which carry
-- none), or nil. url_type: POST /{index}/{type}/_bulk.
function M.missing(opts, n, metas, url_type)
  if url_type or not M.typed(opts) then return nil end
  local reasons = {}
  for i = 1, n do
    local m = metas[i]
    if not (m and m._type) then reasons[#reasons + 1] = "type is missing" end
  end
  if #reasons == 0 then return nil end
  return es.validation(reasons)
end

-- A 6.x index (one_type: M.typed) takes one type: the first one written,
-- or the one it was created with. -> nil, or 400 and the cause for a second one.
function M.admit(one_type, idx, doc_type)
  if not (doc_type and one_type) then return nil end
  if not idx.doc_type then
    idx.doc_type = doc_type
    require("espipe.server.cluster").persist_meta(idx) -- (kept with --data)
    return nil
  end
  if idx.doc_type == doc_type then return nil end
  return 400, { type = "illegal_argument_exception", reason = "Rejecting mapping update to [" .. idx.name
    .. "] as the final mapping would have more than 1 type: [" .. idx.doc_type .. ", " .. doc_type .. "]" }
end

local function include_type_name(req)
  return M.typed(req.opts) and params.flag(req.args, "include_type_name", true)
end

-- The mappings of a create-index body without their type level (6.x), and
-- the type; or nil, status, error body when the top level is not one type.
function M.untyped(req, mappings)
  if type(mappings) ~= "table" or next(mappings) == nil or not include_type_name(req) then
    return mappings, nil
  end
  local name, inner = next(mappings)
  local other = next(mappings, name)
  if other ~= nil then
    -- each top key is a type to 6.x, and an index holds one
    return nil, es.fail(400, "illegal_argument_exception", "Rejecting mapping update to [" .. req.params.index
      .. "] as the final mapping would have more than 1 type: [" .. tostring(name) .. ", " .. tostring(other) .. "]")
  end
  if type(inner) ~= "table" or name == "properties" then
    -- 6.x reads the top key as a type name, and what is under it as its mapping
    return nil, es.fail(400, "mapper_parsing_exception", "Failed to parse mapping [" .. tostring(name)
      .. "]: Root mapping definition has unsupported parameters: [" .. tostring(name) .. "]")
  end
  return inner, name
end

-- An index's mappings as GET /{index}/_mapping answers them: under the
-- index's type on 6.x (an index without one answers {}).
function M.answer(req, idx, mappings)
  if not include_type_name(req) then return mappings end
  local out = require("espipe.server.json").object()
  if idx.doc_type or next(mappings.properties or {}) ~= nil then out[M.type_of(idx)] = mappings end
  return out
end

return M
