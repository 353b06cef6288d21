-- Elasticsearch's ?filter_path= response filtering over Lua values as
-- produced by espipe.server.json (tables, json.null, json.raw fragments).
--
-- apply(value, spec) -> filtered value (never mutates value; kept subtrees
-- are shared). spec: "a.b,c.*,-d" or a list of such paths.
--   *      any field name, or part of one (ho*), within one level
--   **     any number of levels (including none)
--   -path  exclude; exclusions are applied first, then inclusions
-- Arrays are transparent: a path names object fields only, and applies to
-- every element of an array on the way. Objects and arrays that a filter
-- leaves empty are dropped (POST _bulk?filter_path=items.*.error keeps only
-- failed items); the top level is at least {}. A json.raw fragment is
-- decoded only when a pattern has to look inside it.
local json = require("espipe.server.json")

local M = {}

local type, pairs, ipairs, getmetatable, setmetatable = type, pairs, ipairs, getmetatable, setmetatable
local array_mt, object_mt = json.array_mt, json.object_mt
local is_raw = json.is_raw

local DEEP = {} -- the "**" segment

local function compile_segment(s)
  if s == "**" then return DEEP end
  if s == "*" then return true end
  if not s:find("*", 1, true) then return s end
  local lua_pat = "^" .. s:gsub("[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0"):gsub("%*", ".*") .. "$"
  return { pattern = lua_pat }
end

-- split on a single literal character
local function split(s, sep)
  local out = {}
  for part in (s .. sep):gmatch("(.-)%" .. sep) do out[#out + 1] = part end
  return out
end

-- spec -> includes, excludes (lists of segment lists), or nil, err
function M.compile(spec)
  if type(spec) == "string" then spec = { spec } end
  if type(spec) ~= "table" then
    error("filter_path spec must be a string or a list of strings, got " .. type(spec), 2)
  end
  local includes, excludes = {}, {}
  for _, item in ipairs(spec) do
    if type(item) ~= "string" then
      error("filter_path spec entries must be strings, got " .. type(item), 2)
    end
    for _, path in ipairs(split(item, ",")) do
      path = path:match("^%s*(.-)%s*$")
      local list = includes
      if path:sub(1, 1) == "-" then list, path = excludes, path:sub(2) end
      if path ~= "" then
        local segs = {}
        for _, s in ipairs(split(path, ".")) do
          if s == "" then
            return nil, "empty field name in filter_path [" .. path .. "]"
          end
          segs[#segs + 1] = compile_segment(s)
        end
        list[#list + 1] = segs
      end
    end
  end
  return { includes = includes, excludes = excludes }
end

local function segment_matches(seg, name)
  if seg == true then return true end
  if type(seg) == "string" then return seg == name end
  return name:find(seg.pattern) ~= nil
end

-- states: list of {segs, i} positions; a "**" also stands for zero levels
local function add_state(out, segs, i)
  out[#out + 1] = { segs, i }
  if segs[i] == DEEP then add_state(out, segs, i + 1) end
end

local function initial(patterns)
  local states = {}
  for _, segs in ipairs(patterns) do add_state(states, segs, 1) end
  return states
end

local function complete(states)
  for _, st in ipairs(states) do
    local segs, i = st[1], st[2]
    if i > #segs or (i == #segs and segs[i] == DEEP) then return true end
  end
  return false
end

local function step(states, name)
  local out = {}
  for _, st in ipairs(states) do
    local segs, i = st[1], st[2]
    local seg = segs[i]
    if seg == DEEP then
      add_state(out, segs, i) -- ** swallows this level too
    elseif seg ~= nil and segment_matches(seg, name) then
      add_state(out, segs, i + 1)
    end
  end
  return out
end

local function is_array(t)
  local mt = getmetatable(t)
  if mt == array_mt then return true end
  if mt == object_mt then return false end
  return t[1] ~= nil -- as the encoder sees a plain table
end

local function is_container(v)
  return type(v) == "table" and v ~= json.null and not is_raw(v)
end

local function open_raw(v)
  return (json.decode_exact(json.raw_text(v)))
end

-- inclusion: keep what a complete pattern reaches; drop empties
-- A container filtered child by child with f (include or exclude): array
-- elements keep the states (arrays are transparent), object members step
-- them by key; children f drops are left out, and so is an emptied container.
local function map_children(v, states, f)
  if is_array(v) then
    local out, n = setmetatable({}, array_mt), 0
    for i = 1, #v do
      local r = f(v[i], states)
      if r ~= nil then n = n + 1; out[n] = r end
    end
    return n > 0 and out or nil
  end
  local out, any = setmetatable({}, object_mt), false
  for k, child in pairs(v) do
    local r = f(child, step(states, k))
    if r ~= nil then out[k] = r; any = true end
  end
  return any and out or nil
end

local function include(v, states)
  if complete(states) then return v end
  if #states == 0 then return nil end
  if is_raw(v) then
    v = open_raw(v)
    if v == nil then return nil end
  end
  if not is_container(v) then return nil end
  return map_children(v, states, include)
end

-- exclusion: remove what a complete pattern reaches; objects a pattern had
-- to look into and that end up empty are dropped, as ES does
local function exclude(v, states)
  if complete(states) then return nil end
  if #states == 0 then return v end
  if is_raw(v) then
    local decoded = open_raw(v)
    if decoded == nil then return v end
    v = decoded
  end
  if not is_container(v) then return v end
  return map_children(v, states, exclude)
end

-- apply(value, spec_or_compiled) -> filtered value, or nil, err for a bad spec
function M.apply(value, spec)
  local compiled = spec
  if type(spec) ~= "table" or not spec.includes then
    local err
    compiled, err = M.compile(spec)
    if not compiled then return nil, err end
  end
  local v = value
  if #compiled.excludes > 0 then
    v = exclude(v, initial(compiled.excludes))
  end
  if v ~= nil and #compiled.includes > 0 then
    v = include(v, initial(compiled.includes))
  end
  if v == nil then return setmetatable({}, object_mt) end
  return v
end

return M
