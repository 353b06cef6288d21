-- A document's fields as the dev server reads them: where a dotted path
-- lives in the mappings, the values it holds in a decoded _source, the small
-- stand-in for ES's standard analyzer, and values normalised by field type
-- for comparisons (numbers, epoch millis, booleans, strings).
--
-- resolve_field(mappings, path) -> type | nil, path in _source, mapping | nil
-- field_values(source, path[, meta]) -> list of leaf values, arrays flattened
--   meta = { _id =, _index =, _routing = } answers those metadata paths
-- analyze(s) -> tokens: lowercased runs of ASCII letters/digits and non-ASCII bytes
-- norm(type, v) -> the comparable value | nil; to_bool(v) -> boolean | nil
-- is_array(t), as_list(v), NUMERIC (the numeric field types)
local json = require("espipe.server.json")
local date_math = require("espipe.server.date_math")

local M = {}

local type, ipairs, tonumber = type, ipairs, tonumber
local null = json.null

local function is_array(t)
  local mt = getmetatable(t)
  if mt == json.array_mt then return true end
  if mt == json.object_mt then return false end
  return t[1] ~= nil
end

local function as_list(v)
  if type(v) == "table" and v ~= null and is_array(v) then return v end
  return { v }
end

------------------------------------------------------------------------
M.is_array = is_array
M.as_list = as_list

local function path_parts(path)
  local parts = {}
  for p in path:gmatch("[^.]+") do parts[#parts + 1] = p end
  return parts
end

-- the longest property name (names may hold dots) from parts[i] on:
-- its mapping and the index of its last part
local function longest_property(props, parts, i)
  for k = #parts, i, -1 do
    local def = props[table.concat(parts, ".", i, k)]
    if type(def) == "table" then return def, k end
  end
end

-- path -> type (or nil), the path in _source (multi-fields live in their
-- parent), the field's mapping (or nil)
function M.resolve_field(mappings, path)
  if type(mappings) ~= "table" or type(mappings.properties) ~= "table" then
    return nil, path
  end
  local props, parts, i = mappings.properties, path_parts(path), 1
  while i <= #parts do
    local def, j = longest_property(props, parts, i)
    if not def then return nil, path end
    if j == #parts then return def.type or (def.properties and "object") or nil, path, def end
    if type(def.properties) == "table" then
      props, i = def.properties, j + 1
    elseif type(def.fields) == "table" then
      local f = def.fields[table.concat(parts, ".", j + 1)]
      if type(f) == "table" then return f.type, table.concat(parts, ".", 1, j), f end
      return nil, path
    else
      return nil, path
    end
  end
  return nil, path
end

local function collect(node, parts, i, out)
  if node == nil or node == null then return end
  if type(node) == "table" and is_array(node) then
    for _, el in ipairs(node) do collect(el, parts, i, out) end
    return
  end
  if i > #parts then
    out[#out + 1] = node
    return
  end
  if type(node) ~= "table" then return end
  for j = i, #parts do
    local key = j == i and parts[i] or table.concat(parts, ".", i, j)
    local child = node[key]
    if child ~= nil then collect(child, parts, j + 1, out) end
  end
end

-- all leaf values of a dotted path, arrays flattened
function M.field_values(source, path, meta)
  if path == "_id" then return { meta and meta._id } end
  if path == "_index" then return { meta and meta._index } end
  if path == "_routing" then return { meta and meta._routing } end
  local out = {}
  if type(source) == "table" then collect(source, path_parts(path), 1, out) end
  return out
end

function M.analyze(s)
  local tokens = {}
  for tok in s:lower():gmatch("[%w\128-\255]+") do tokens[#tokens + 1] = tok end
  return tokens
end

local NUMERIC = { long = true, integer = true, short = true, byte = true, double = true,
  float = true, half_float = true, scaled_float = true, unsigned_long = true }

local function to_bool(v)
  if v == true or v == "true" then return true end
  if v == false or v == "false" or v == "" then return false end
  return nil
end

-- normalise a value of a field of type ty for comparisons: numbers, millis,
-- booleans or strings; nil when it cannot be read as that type
local function norm(ty, v)
  if ty and NUMERIC[ty] then return tonumber(v) end
  if ty == "date" or ty == "date_nanos" then return date_math.parse_date(v) end
  if ty == "boolean" then return to_bool(v) end
  if type(v) == "number" or type(v) == "boolean" then return v end
  if type(v) == "string" then return v end
  return nil
end

M.NUMERIC = NUMERIC
M.to_bool = to_bool
M.norm = norm

return M
