-- The range query: bounds read by the field's type (numbers, dates with
-- date math, strings); unmapped fields compare by the type of each value.
--
-- compile(body, mappings) -> matcher(source, meta) -> bool | nil, err
local json = require("espipe.server.json")
local doc_fields = require("espipe.server.doc_fields")
local date_math = require("espipe.server.date_math")
local es = require("espipe.server.es_errors")

local M = {}

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local floor = math.floor
local null = json.null
local qerr = es.query
local parse_date = date_math.parse_date

local RANGE_KEYS = { gt = true, gte = true, lt = true, lte = true, from = true, to = true,
  include_lower = true, include_upper = true, format = true, time_zone = true, boost = true,
  relation = true, _name = true }

-- the one field of the body and its options | nil, err
local function field_spec(body)
  if type(body) ~= "table" or doc_fields.is_array(body) then
    return nil, qerr("[range] query malformed, no start_object after query name")
  end
  local field, spec = next(body)
  if field == nil or type(spec) ~= "table" then
    return nil, qerr("[range] query malformed, no start_object after query name")
  end
  if next(body, field) ~= nil then
    return nil, qerr("[range] query doesn't support multiple fields, found [" .. field .. "] and ["
      .. tostring(next(body, field)) .. "]")
  end
  for k in pairs(spec) do
    if not RANGE_KEYS[k] then
      return nil, qerr("[range] query does not support [" .. tostring(k) .. "]")
    end
  end
  return field, spec
end

-- lower and upper bound (nil: open) and whether each is inclusive
local function limits(spec)
  local lo, hi, lo_inc, hi_inc = spec.gte, spec.lte, true, true
  if spec.gt ~= nil then lo, lo_inc = spec.gt, false end
  if spec.lt ~= nil then hi, hi_inc = spec.lt, false end
  if lo == nil and spec.from ~= nil then lo, lo_inc = spec.from, spec.include_lower ~= false end
  if hi == nil and spec.to ~= nil then hi, hi_inc = spec.to, spec.include_upper ~= false end
  if lo == null then lo = nil end
  if hi == null then hi = nil end
  return { lo = lo, hi = hi, lo_inc = lo_inc, hi_inc = hi_inc }
end

-- how to compare: "number" | "date" | "string" | "auto" (by each value)
local function kind_of(ty, r)
  if ty and doc_fields.NUMERIC[ty] then return "number" end
  if ty == "date" or ty == "date_nanos" then return "date" end
  if ty then return "string" end
  if type(r.lo) == "number" or type(r.hi) == "number" then return "number" end
  return "auto"
end

-- the bounds read each way: bounds[kind] = { lo, hi } (nil where unreadable)
local function read_bounds(r)
  local now = floor(os.time() * 1000)
  local function bound(b, k)
    if b == nil then return nil end
    if k == "number" then return tonumber(b) end
    if k == "date" then return parse_date(b, now) end
    return tostring(b)
  end
  local bounds = {}
  for _, k in ipairs({ "number", "date", "string" }) do
    bounds[k] = { bound(r.lo, k), bound(r.hi, k) }
  end
  return bounds
end

local function in_range(r, b, v)
  local l, h = b[1], b[2]
  if (r.lo ~= nil and l == nil) or (r.hi ~= nil and h == nil) then return false end
  if l ~= nil and (v < l or (v == l and not r.lo_inc)) then return false end
  if h ~= nil and (v > h or (v == h and not r.hi_inc)) then return false end
  return true
end

-- an unmapped value's kind: a number against date-string bounds is epoch millis
local function value_kind(r, bounds, v)
  if type(v) == "number" then
    local numeric = (r.lo == nil or bounds.number[1] ~= nil) and (r.hi == nil or bounds.number[2] ~= nil)
    return numeric and "number" or "date"
  end
  if type(v) == "string" and parse_date(v) and not v:find("^%-?%d+$") then return "date" end
  if type(v) == "string" then return "string" end
  return nil
end

local function comparable(k, v)
  if k == "number" then return tonumber(v) end
  if k == "date" then return parse_date(v) end
  if type(v) == "string" then return v end
  return tostring(v)
end

function M.compile(body, mappings)
  local field, spec = field_spec(body)
  if not field then return nil, spec end
  local ty, path = doc_fields.resolve_field(mappings, field)
  local r = limits(spec)
  local kind, bounds = kind_of(ty, r), read_bounds(r)
  if kind ~= "auto" and ((r.lo ~= nil and bounds[kind][1] == nil) or (r.hi ~= nil and bounds[kind][2] == nil)) then
    return nil, qerr("failed to parse range bound [" .. tostring(r.lo or r.hi) .. "] for field [" .. field .. "]",
      "parse_exception")
  end
  return function(source, meta)
    for _, v in ipairs(doc_fields.field_values(source, path, meta)) do
      local k = kind == "auto" and value_kind(r, bounds, v) or kind
      local nv = k and comparable(k, v)
      if nv ~= nil and in_range(r, bounds[k], nv) then return true end
    end
    return false
  end
end

return M
