-- Search sorting on decoded hits, with ES's rules: per-field order, missing
-- values, min/max for multi-valued fields, _doc/_shard_doc/_score, ties
-- broken by shard then doc order, search_after, formatted date values.
--
-- compile_sort(sort, mappings) -> sorter | nil, err
--   sorter.values(hit) -> json array of the hit's sort values
--   sorter.output(values) -> the values as a hit shows them (formatted)
--   sorter.compare(a, b) -> a before b?
--   sorter.after(values, search_after) -> strictly after? | nil, err
--   hit = { _id =, _index =, _source =, _doc = int, _shard = int, _score = n }
local json = require("espipe.server.json")
local doc_fields = require("espipe.server.doc_fields")
local es = require("espipe.server.es_errors")
local date_nanos = require("espipe.server.date_nanos")
local date_format = require("espipe.server.date_format")

local M = {}

local type, ipairs, tostring = type, ipairs, tostring
local null = json.null
local qerr = es.query

local SPECIAL = { _doc = true, _shard_doc = true, _score = true }

-- a value as the key sorts it: date_nanos keys compare exact nanoseconds
local function sort_norm(key, v)
  if key.nanos then return date_nanos.value(v) end
  return doc_fields.norm(key.type, v)
end

local TEXT_SORT = "Text fields are not optimised for operations that require per-document field data "
  .. "like aggregations and sorting, so these operations are disabled by default. Please use a keyword "
  .. "field instead. Alternatively, set fielddata=true on [%s] in order to load field data "
  .. "by uninverting the inverted index. Note that this can use significant memory."

local function sort_order(field, opts)
  local order = opts.order or (field == "_score" and "desc" or "asc")
  if order ~= "asc" and order ~= "desc" then
    return nil, qerr("[sort] unknown order [" .. tostring(order) .. "] for field [" .. field .. "]",
      "x_content_parse_exception")
  end
  return order
end

-- the type (nil when unknown) and _source path a field sorts by | false, err
-- as ES refuses it
local function field_type(field, opts, mappings)
  local ty, path = doc_fields.resolve_field(mappings, field)
  if ty == "text" or ty == "match_only_text" then
    return false, qerr(TEXT_SORT:format(field), "illegal_argument_exception")
  end
  if ty == nil and type(mappings) == "table" and type(mappings.properties) == "table"
      and opts.unmapped_type == nil and next(mappings.properties) ~= nil then
    return false, qerr("No mapping found for [" .. field .. "] in order to sort on", "query_shard_exception")
  end
  return ty or opts.unmapped_type, path
end

local function sort_key(field, opts, mappings)
  if type(opts) == "string" then opts = { order = opts } end
  if type(opts) ~= "table" then
    return nil, qerr("[sort] malformed for field [" .. tostring(field) .. "]")
  end
  local order, err = sort_order(field, opts)
  if not order then return nil, err end
  local key = { field = field, desc = order == "desc", missing = opts.missing or "_last",
    mode = opts.mode }
  if SPECIAL[field] then return key end
  -- (whether _id may be sorted on is the flavour's: api_search asks first)
  if field == "_id" then key.type, key.path = "keyword", "_id" return key end
  local ty, path = field_type(field, opts, mappings)
  if ty == false then return nil, path end
  key.type, key.path = ty, path
  key.nanos = key.type == "date_nanos"
  if opts.format ~= nil and (key.type == "date" or key.nanos) then key.format = opts.format end
  return key
end

-- one sort value of a hit for a key: a number, string, boolean or nil (missing)
local function hit_value(key, hit)
  local f = key.field
  if f == "_doc" then return hit._doc end
  if f == "_shard_doc" then return (hit._shard or 0) * 4294967296 + (hit._doc or 0) end
  if f == "_score" then return hit._score or 0 end
  local best
  local pick_max = key.mode == "max" or (key.mode == nil and key.desc)
  local meta = { _id = hit._id, _index = hit._index, _routing = hit._routing }
  for _, v in ipairs(doc_fields.field_values(hit._source, key.path, meta)) do
    local n = sort_norm(key, v)
    if type(n) == "boolean" then n = n and 1 or 0 end -- ES sorts booleans as 0/1
    if n ~= nil and n ~= null then
      if best == nil then
        best = n
      elseif type(best) == type(n) and ((pick_max and n > best) or (not pick_max and n < best)) then
        best = n
      end
    end
  end
  return best
end

-- -1, 0, 1 in the key's order; missing values follow the "missing" option
local function cmp_values(key, a, b)
  if a == null then a = nil end
  if b == null then b = nil end
  local miss = key.missing
  if miss ~= "_last" and miss ~= "_first" then
    if a == nil then a = sort_norm(key, miss) end
    if b == nil then b = sort_norm(key, miss) end
  end
  if a == nil or b == nil then
    if a == nil and b == nil then return 0 end
    local first = miss == "_first"
    if a == nil then return first and -1 or 1 end
    return first and 1 or -1
  end
  if type(a) ~= type(b) then a, b = tostring(a), tostring(b) end
  if a == b then return 0 end
  local r = a < b and -1 or 1
  return key.desc and -r or r
end

-- one item of the sort list: "f", "f:desc" or { f = order | options }
local function item_key(item, mappings)
  if type(item) == "string" then
    local f, order = item:match("^([^:]+):(%a+)$")
    return sort_key(f or item, order or {}, mappings)
  end
  if type(item) ~= "table" then
    return nil, qerr("[sort] malformed", "x_content_parse_exception")
  end
  local f, opts = next(item)
  if f == nil or next(item, f) ~= nil then
    return nil, qerr("[sort] expects one field per sort object", "x_content_parse_exception")
  end
  return sort_key(f, opts, mappings)
end

local function parse_keys(spec, mappings)
  local keys = {}
  if spec ~= nil and spec ~= null then
    for _, item in ipairs(doc_fields.as_list(spec)) do
      local key, err = item_key(item, mappings)
      if not key then return nil, err end
      keys[#keys + 1] = key
    end
  end
  if #keys == 0 then keys[1] = { field = "_score", desc = true, missing = "_last" } end
  return keys
end

local function values_of(keys, hit)
  local out = json.array()
  for i, key in ipairs(keys) do
    local v = hit_value(key, hit)
    if v == nil then v = null end
    out[i] = v
  end
  return out
end

local function formatted_values(keys, values)
  local out = json.array()
  for i, key in ipairs(keys) do
    local v = values[i]
    if key.format and v ~= null and v ~= nil then
      if key.nanos then v = date_nanos.format(v, key.format)
      else v = date_format.format(v, key.format) end
    end
    out[i] = v
  end
  return out
end

local function compare_hits(keys, a, b)
  for _, key in ipairs(keys) do
    local c = cmp_values(key, hit_value(key, a), hit_value(key, b))
    if c ~= 0 then return c < 0 end
  end
  if (a._shard or 0) ~= (b._shard or 0) then return (a._shard or 0) < (b._shard or 0) end
  return (a._doc or 0) < (b._doc or 0)
end

-- a search_after value as the key compares it
local function given_value(key, given)
  if given ~= null and key.nanos then return date_nanos.from_sort(given) end
  if given ~= null and key.type and type(given) == "string" and key.type ~= "keyword" then
    return doc_fields.norm(key.type, given)
  end
  return given
end

local function after(keys, values, search_after)
  if type(search_after) ~= "table" or #search_after ~= #keys then
    return nil, qerr("search_after has " .. (type(search_after) == "table" and #search_after or 0)
      .. " value(s) but sort has " .. #keys .. ".", "illegal_argument_exception")
  end
  for i, key in ipairs(keys) do
    local c = cmp_values(key, values[i], given_value(key, search_after[i]))
    if c ~= 0 then return c > 0 end
  end
  return false
end

function M.compile_sort(spec, mappings)
  local keys, err = parse_keys(spec, mappings)
  if not keys then return nil, err end
  local formatted = false
  for _, key in ipairs(keys) do formatted = formatted or key.format ~= nil end
  return {
    keys = keys,
    values = function(hit) return values_of(keys, hit) end,
    output = function(values)
      if not formatted then return values end
      return formatted_values(keys, values)
    end,
    compare = function(a, b) return compare_hits(keys, a, b) end,
    after = function(values, search_after) return after(keys, values, search_after) end,
  }
end

return M
