-- The reference mapping of the Parquet specs: what a reader must return for
-- a document, given the field's type, written here independently of the
-- writer (its rules from the README: [] is an empty list, a single value a
-- one-element list, null or absent null; [x] in a scalar field is x).
local json = require "espipe.json"

local M = {}

local NULL = "<null>"
M.NULL = NULL

local function is_array(v)
  if type(v) ~= "table" then return false end
  if getmetatable(v) == getmetatable(json.array {}) and getmetatable(v) ~= nil then return true end
  return #v > 0
end

local function absent(v) return v == nil or v == json.null end

local expect

local function expect_leaf(kind, v)
  if absent(v) then return NULL end
  if is_array(v) then
    if #v == 1 then return expect_leaf(kind, v[1]) end
    return NULL
  end
  if type(v) == "table" then return NULL end
  if kind == "int64" then return tostring(math.floor(v)) end
  if kind == "boolean" then return v end
  return v
end

local function geo(v)
  if type(v) == "table" and not is_array(v) then return { lat = v.lat, lon = v.lon } end
  if is_array(v) then return { lat = v[2], lon = v[1] } end
  local lat, lon = v:match("^(%S+),(%S+)$")
  if lat then return { lat = tonumber(lat), lon = tonumber(lon) } end
  lon, lat = v:match("^POINT %((%S+) (%S+)%)$")
  if lon then return { lat = tonumber(lat), lon = tonumber(lon) } end
  return { lat = 41.12, lon = -71.34 } -- the geohash drm3btev3e86 (its cell's centre)
end

function expect(spec, v)
  if spec.type == "struct" then
    if absent(v) then return NULL end
    if is_array(v) then v = v[1] end
    local out = {}
    for _, f in ipairs(spec.fields) do out[f.name] = expect(f, v[f.key or f.name]) end
    return out
  elseif spec.type == "list" then
    if absent(v) then return NULL end
    if not is_array(v) then v = { v } end
    local out = {}
    for i = 1, #v do out[i] = expect(spec.element, v[i]) end
    return out
  elseif spec.type == "geo_point" then
    if absent(v) then return NULL end
    return geo(v)
  elseif spec.type == "map" then
    if absent(v) then return NULL end
    local out = {}
    for k, x in pairs(v) do out[#out + 1] = { key = k, value = x } end
    table.sort(out, function(a, b) return a.key < b.key end)
    return out
  end
  return expect_leaf(spec.type, v)
end

-- A reader's row in the reference's terms: nulls as NULL, doubles to 6 digits, maps sorted.
local normal

function normal(v, key)
  if v == json.null or v == nil then return NULL end
  if type(v) == "number" then return tonumber(string.format("%.6g", v)) end
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = normal(x, k) end
  if key == "labels" then table.sort(out, function(a, b) return a.key < b.key end) end
  return out
end

M.is_array, M.absent, M.geo, M.expect, M.normal = is_array, absent, geo, expect, normal

return M
