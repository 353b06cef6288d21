-- The Painless subset's values and methods: lists, maps, strings, numbers
-- and a few static classes (Math, Integer, Long, Double, String, Objects),
-- with Java's class names and messages in errors.
--
--   call(receiver, name, args, at) -> value       (raises a runtime error)
--   raise(type, reason, at)                       runtime error (caught by painless.run)
--   is_list(v), is_map(v), class_of(v), java_string(v), equals(a, b)
--   charge(bytes, at) / reset_budget()   what a run may build (BUDGET)
local json = require("espipe.server.json")

local M = {}

local type, pairs, ipairs, tostring, tonumber, error = type, pairs, ipairs, tostring, tonumber, error
local getmetatable, setmetatable = getmetatable, setmetatable
local floor, ceil = math.floor, math.ceil
local null = json.null

function M.raise(typ, reason, at)
  error({ painless_rt = true, type = typ, reason = reason, at = at }, 0)
end
local raise = M.raise

-- What a run may build, in bytes: string bytes, and 8 per collection
-- element, counted as they are made, so a script growing a string or a list
-- in a loop stops (the worker serves every other request) instead of
-- running for minutes or exhausting memory. One script runs at a time in a
-- worker: painless.run resets the count.
M.BUDGET = 8 * 1024 * 1024
local spent = 0
function M.reset_budget() spent = 0 end
function M.charge(bytes, at)
  spent = spent + bytes
  if spent > M.BUDGET then
    raise("painless_error", "espipe serve stops a script that builds more than " .. M.BUDGET
      .. " bytes of strings and collections", at)
  end
end
local charge = M.charge
local function charge_elements(n, at) charge(8 * n, at) end

function M.is_list(v)
  if type(v) ~= "table" or v == null then return false end
  local mt = getmetatable(v)
  if mt == json.array_mt then return true end
  if mt ~= nil then return false end
  return v[1] ~= nil
end
local is_list = M.is_list

local STATIC_MT = { __name = "painless.static" }
-- a reference to a static class (Math, Integer...), as a value
function M.static_ref(name) return setmetatable({ static = name }, STATIC_MT) end
local function is_static(v) return getmetatable(v) == STATIC_MT end

function M.is_map(v)
  return type(v) == "table" and v ~= null and not is_static(v) and not is_list(v)
end
local is_map = M.is_map

function M.class_of(v)
  if v == null or v == nil then return "null" end
  local t = type(v)
  if t == "string" then return "java.lang.String" end
  if t == "boolean" then return "java.lang.Boolean" end
  if t == "number" then return v == floor(v) and "java.lang.Integer" or "java.lang.Double" end
  if is_list(v) then return "java.util.ArrayList" end
  return "java.util.HashMap"
end

local function java_string(v)
  if v == null or v == nil then return "null" end
  local t = type(v)
  if t == "string" then return v end
  if t == "boolean" then return v and "true" or "false" end
  if t == "number" then
    if v == floor(v) and v > -1e15 and v < 1e15 then return string.format("%d", v) end
    return json.encode_number(v)
  end
  local parts = {}
  if is_list(v) then
    for i, el in ipairs(v) do parts[i] = java_string(el) end
    return "[" .. table.concat(parts, ", ") .. "]"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for i, k in ipairs(keys) do parts[i] = java_string(k) .. "=" .. java_string(v[k]) end
  return "{" .. table.concat(parts, ", ") .. "}"
end
M.java_string = java_string

local function equals(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" or a == null or b == null then return false end
  if is_list(a) ~= is_list(b) then return false end
  if is_list(a) then
    if #a ~= #b then return false end
    for i = 1, #a do if not equals(a[i], b[i]) then return false end end
    return true
  end
  for k, v in pairs(a) do if not equals(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end
M.equals = equals

-- a list changed by a method keeps encoding as a JSON array, even empty
local function as_array(list)
  if getmetatable(list) == nil then setmetatable(list, json.array_mt) end
  return list
end

local function index_of(list, x)
  for i, v in ipairs(list) do if equals(v, x) then return i end end
  return nil
end

local function int_arg(v, at)
  if type(v) ~= "number" or v ~= floor(v) then
    raise("class_cast_exception", "Cannot cast " .. M.class_of(v) .. " to java.lang.Integer", at)
  end
  return v
end

local function bounds(i, n, at)
  if i < 0 or i >= n then
    raise("index_out_of_bounds_exception", "Index " .. java_string(i) .. " out of bounds for length " .. n, at)
  end
  return i + 1
end

local LIST = {}
function LIST.add(l, a, at)
  charge_elements(1, at)
  as_array(l)
  if #a == 2 then
    local i = int_arg(a[1], at)
    if i < 0 or i > #l then bounds(i, #l, at) end
    table.insert(l, i + 1, a[2])
  else
    l[#l + 1] = a[1]
  end
  return true
end
function LIST.addAll(l, a, at)
  local from = a[1]
  local n = #from -- (from may be l itself)
  charge_elements(n, at)
  as_array(l)
  for i = 1, n do l[#l + 1] = from[i] end
  return true
end
function LIST.remove(l, a, at)
  as_array(l)
  -- remove(int index) on a list; remove(Object) for anything else
  if type(a[1]) == "number" and a[1] == floor(a[1]) then
    return table.remove(l, bounds(a[1], #l, at))
  end
  local i = index_of(l, a[1])
  if i then table.remove(l, i) return true end
  return false
end
function LIST.get(l, a, at) return l[bounds(int_arg(a[1], at), #l, at)] end
function LIST.set(l, a, at)
  local i = bounds(int_arg(a[1], at), #l, at)
  local old = l[i]
  l[i] = a[2]
  return old
end
function LIST.contains(l, a) return index_of(l, a[1]) ~= nil end
function LIST.indexOf(l, a) return (index_of(l, a[1]) or 0) - 1 end
function LIST.size(l) return #l end
function LIST.isEmpty(l) return #l == 0 end
function LIST.clear(l)
  as_array(l)
  for i = #l, 1, -1 do l[i] = nil end
  return null
end

local MAP = {}
local function get_or(m, k, d)
  local v = m[k]
  if v == nil then return d end
  return v
end
function MAP.containsKey(m, a) return m[a[1]] ~= nil end
function MAP.containsValue(m, a)
  for _, v in pairs(m) do if equals(v, a[1]) then return true end end
  return false
end
function MAP.get(m, a) return get_or(m, a[1], null) end
function MAP.getOrDefault(m, a) return get_or(m, a[1], a[2]) end
function MAP.put(m, a, at)
  charge_elements(1, at)
  local old = get_or(m, a[1], null)
  m[a[1]] = a[2]
  return old
end
function MAP.putAll(m, a, at)
  for k, v in pairs(a[1]) do
    charge_elements(1, at)
    m[k] = v
  end
  return null
end
function MAP.remove(m, a)
  local old = get_or(m, a[1], null)
  m[a[1]] = nil
  return old
end
function MAP.size(m)
  local n = 0
  for _ in pairs(m) do n = n + 1 end
  return n
end
function MAP.isEmpty(m) return next(m) == nil end
function MAP.keySet(m)
  local out = json.array()
  for k in pairs(m) do out[#out + 1] = k end
  table.sort(out, function(x, y) return tostring(x) < tostring(y) end)
  return out
end
function MAP.values(m)
  local out = json.array()
  for _, k in ipairs(MAP.keySet(m)) do out[#out + 1] = m[k] end
  return out
end

local function plain_find(s, x, from) return s:find(x, from or 1, true) end

local STRING = {}
function STRING.length(s) return #s end
function STRING.isEmpty(s) return #s == 0 end
function STRING.contains(s, a) return plain_find(s, java_string(a[1])) ~= nil end
function STRING.startsWith(s, a) local p = java_string(a[1]) return s:sub(1, #p) == p end
function STRING.endsWith(s, a) local p = java_string(a[1]) return p == "" or s:sub(-#p) == p end
function STRING.toLowerCase(s) return s:lower() end
function STRING.toUpperCase(s) return s:upper() end
function STRING.trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end
function STRING.equals(s, a) return s == a[1] end
function STRING.equalsIgnoreCase(s, a) return type(a[1]) == "string" and s:lower() == a[1]:lower() end
function STRING.indexOf(s, a)
  local i = plain_find(s, java_string(a[1]), (a[2] or 0) + 1)
  return i and i - 1 or -1
end
function STRING.substring(s, a, at)
  local from, to = int_arg(a[1], at), a[2] ~= nil and int_arg(a[2], at) or #s
  if from < 0 or to > #s or from > to then
    raise("string_index_out_of_bounds_exception", "begin " .. from .. ", end " .. to .. ", length " .. #s, at)
  end
  return s:sub(from + 1, to)
end
function STRING.replace(s, a, at)
  charge(#s, at)
  local from, to = java_string(a[1]), java_string(a[2])
  if from == "" then return s end
  local out, i = {}, 1
  while true do
    local j = plain_find(s, from, i)
    if not j then break end
    out[#out + 1] = s:sub(i, j - 1) .. to
    i = j + #from
  end
  out[#out + 1] = s:sub(i)
  return table.concat(out)
end
function STRING.splitOnToken(s, a)
  local tok, out, i = java_string(a[1]), json.array(), 1
  while true do
    local j = plain_find(s, tok, i)
    if not j or tok == "" then break end
    out[#out + 1] = s:sub(i, j - 1)
    i = j + #tok
  end
  out[#out + 1] = s:sub(i)
  return out
end
function STRING.compareTo(s, a)
  if s == a[1] then return 0 end
  return s < a[1] and -1 or 1
end

local function parse_number(s, integral, at)
  local n = type(s) == "string" and tonumber(s) or nil
  if n == nil or (integral and n ~= floor(n)) then
    raise("number_format_exception", "For input string: \"" .. java_string(s) .. "\"", at)
  end
  return n
end

local STATIC = {
  Math = {
    max = function(a) return math.max(a[1], a[2]) end, min = function(a) return math.min(a[1], a[2]) end,
    abs = function(a) return math.abs(a[1]) end, floor = function(a) return floor(a[1]) end,
    ceil = function(a) return ceil(a[1]) end, round = function(a) return floor(a[1] + 0.5) end,
    pow = function(a) return a[1] ^ a[2] end, sqrt = function(a) return math.sqrt(a[1]) end,
  },
  Integer = { parseInt = function(a, at) return parse_number(a[1], true, at) end,
              valueOf = function(a, at) return parse_number(java_string(a[1]), true, at) end },
  Long = { parseLong = function(a, at) return parse_number(a[1], true, at) end,
           valueOf = function(a, at) return parse_number(java_string(a[1]), true, at) end },
  Double = { parseDouble = function(a, at) return parse_number(a[1], false, at) end,
             valueOf = function(a, at) return parse_number(java_string(a[1]), false, at) end },
  String = { valueOf = function(a) return java_string(a[1]) end,
             join = function(a)
               local parts = {}
               for i, v in ipairs(a[2]) do parts[i] = java_string(v) end
               return table.concat(parts, a[1])
             end },
  Boolean = { parseBoolean = function(a) return type(a[1]) == "string" and a[1]:lower() == "true" end },
  Objects = { equals = function(a) return equals(a[1], a[2]) end,
              isNull = function(a) return a[1] == null end, nonNull = function(a) return a[1] ~= null end },
}

local ANY = {
  toString = function(v) return java_string(v) end,
  equals = function(v, a) return equals(v, a[1]) end,
}

local NUMBER = {
  intValue = function(n) return n >= 0 and floor(n) or ceil(n) end,
  doubleValue = function(n) return n end,
  compareTo = function(n, a) return n == a[1] and 0 or (n < a[1] and -1 or 1) end,
}
NUMBER.longValue = NUMBER.intValue

function M.call(obj, name, args, at)
  if obj == null or obj == nil then
    raise("null_pointer_exception", "cannot access method/field [" .. name .. "] from a null def reference", at)
  end
  local fn
  if is_static(obj) then
    fn = STATIC[obj.static] and STATIC[obj.static][name]
    if not fn then
      raise("illegal_argument_exception", "Unknown call [" .. name .. "] with [" .. #args .. "] arguments on type ["
        .. obj.static .. "].", at)
    end
    return fn(args, at)
  end
  local t = type(obj)
  if t == "string" then fn = STRING[name]
  elseif t == "number" then fn = NUMBER[name]
  elseif is_list(obj) then fn = LIST[name]
  elseif is_map(obj) then fn = MAP[name] end
  fn = fn or ANY[name]
  if not fn then
    raise("illegal_argument_exception", "dynamic method [" .. M.class_of(obj) .. ", " .. name .. "/" .. #args
      .. "] not found", at)
  end
  local r = fn(obj, args, at)
  if r == nil then return null end
  return r
end

return M
