-- What aggregations share: their errors, the values of a document's field
-- as an aggregation reads them, and option checking.
--   error(reason[, type]) -> err (status 400)
--   reader(ctx, body, agg_type, need_numeric[, default_kind]) -> reader | nil, err
--   hit_of(ctx) -> fn(doc handle) -> hit (_id, _index, _routing, _source)
--     reader = { kind = "number"|"date"|"bool"|"string"|nil, format =, values = fn(hit) -> list }
--   as_string(reader, v[, offset]) -> ES's *_as_string text | nil
--   check_keys(agg_type, body, allowed) -> nil | err
--   size(body, agg_type) -> bucket count asked (default 10) | nil, err
local json = require("espipe.server.json")
local query = require("espipe.server.query")
local date_math = require("espipe.server.date_math")
local doc_fields = require("espipe.server.doc_fields")
local dates = require("espipe.server.date_format")

local M = {}

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local null = json.null

local function aerr(reason, typ) return query.error(reason, typ or "x_content_parse_exception") end
M.error = aerr

local NUMERIC = doc_fields.NUMERIC
local INTEGRAL = { long = true, integer = true, short = true, byte = true, unsigned_long = true }

------------------------------------------------------------------------
-- field values

-- A field reader: { kind = "number"|"date"|"bool"|"string", integral =,
-- format =, values = fn(hit) -> list of normalised values }
local function field_reader(ctx, body, agg_type, need_numeric, default_kind)
  local field = body.field
  if type(field) ~= "string" then
    return nil, aerr("Required one of fields [field, script], but none were specified.", "illegal_argument_exception")
  end
  local ty, path = ctx.resolve(field)
  if ty == "text" or ty == "match_only_text" then
    return nil, aerr("Text fields are not optimised for operations that require per-document field data like "
      .. "aggregations and sorting, so these operations are disabled by default. Please use a keyword field "
      .. "instead. Alternatively, set fielddata=true on [" .. field .. "] in order to load field data by "
      .. "uninverting the inverted index. Note that this can use significant memory.", "illegal_argument_exception")
  end
  local kind
  if ty and NUMERIC[ty] then kind = "number"
  elseif ty == "date" or ty == "date_nanos" then kind = "date"
  elseif ty == "boolean" then kind = "bool"
  elseif ty then kind = "string"
  else kind = default_kind end
  if need_numeric and kind == "string" then
    return nil, aerr("Field [" .. field .. "] of type [" .. ty .. "] is not supported for aggregation ["
      .. agg_type .. "]", "illegal_argument_exception")
  end
  local function norm(v)
    local k = kind
    if k == nil then -- unmapped: by the value itself
      if type(v) == "number" then k = "number"
      elseif type(v) == "boolean" then k = "bool"
      elseif type(v) == "string" then k = need_numeric and "number" or "string"
      else return nil end
    end
    if k == "number" then return tonumber(v) end
    if k == "date" then return date_math.parse_date(v) end
    if k == "bool" then
      if v == true or v == "true" then return 1 end
      if v == false or v == "false" then return 0 end
      return nil
    end
    if type(v) == "string" then return v end
    if type(v) == "number" or type(v) == "boolean" then return tostring(v) end
    return nil
  end
  local missing = body.missing
  if missing == null then missing = nil end
  local miss_value = missing ~= nil and norm(missing) or nil
  local reader = { kind = kind, integral = ty and INTEGRAL[ty] or false, field = field,
                   format = type(body.format) == "string" and body.format or nil }
  local hit_of = M.hit_of(ctx)
  function reader.values(doc)
    local hit = hit_of(doc)
    local list = {}
    for _, v in ipairs(doc_fields.field_values(hit._source, path, hit)) do
      if v ~= null then
        local n = norm(v)
        if n ~= nil then list[#list + 1] = n end
      end
    end
    if #list == 0 and miss_value ~= nil then list[1] = miss_value end
    return list
  end
  return reader
end
M.reader = field_reader

local function same(doc) return doc end

-- documents travel through the aggregations as handles (snapshot
-- positions in a search, so that no decoded source is kept per document);
-- ctx.hit turns one into a hit with its _source, decoded anew on each use
function M.hit_of(ctx)
  return ctx.hit or same
end

-- a value as ES prints it in *_as_string, or nil when it has no string form
local function as_string(reader, v, off)
  if reader.kind == "date" then return (dates.format(v, reader.format, off)) end
  if reader.kind == "bool" then return v == 1 and "true" or "false" end
  return nil
end
M.as_string = as_string

local UNSUPPORTED_KEYS = { script = true, include = true, exclude = true, hard_bounds = true }

local function check_keys(agg_type, body, allowed)
  if type(body) ~= "table" or body == null or json.is_array(body) then
    return aerr("[" .. agg_type .. "] expected an object")
  end
  for k in pairs(body) do
    if not allowed[k] then
      if UNSUPPORTED_KEYS[k] then
        return aerr("[" .. agg_type .. "] option [" .. tostring(k) .. "] is not supported by espipe serve",
          "illegal_argument_exception")
      end
      return aerr("[" .. agg_type .. "] unknown field [" .. tostring(k) .. "]")
    end
  end
  return nil
end
M.check_keys = check_keys

-- a bucket aggregation's size (default 10, at least 1) | nil, err
function M.size(body, agg_type)
  local size = body.size == nil and 10 or tonumber(body.size)
  if not size or size < 1 then
    return nil, aerr("[size] must be greater than 0. Found [" .. tostring(body.size) .. "] in [" .. agg_type .. "]",
      "illegal_argument_exception")
  end
  return size
end

return M
