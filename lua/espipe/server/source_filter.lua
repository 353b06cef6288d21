-- _source filtering as ES does it for search hits, get and bulk: includes
-- and excludes with * wildcards over dotted paths, arrays filtered element
-- by element, emptied objects dropped.
--
-- filter(source, spec) -> filtered source | nil (spec false)
--   spec: true/nil (whole source), false (none), "a", {"a","b.*"},
--   {includes=, excludes=} (also include/exclude); source may be json.raw
local json = require("espipe.server.json")
local doc_fields = require("espipe.server.doc_fields")

local M = {}

local type, pairs, ipairs = type, pairs, ipairs
local null = json.null
local is_array = doc_fields.is_array

local function glob(p)
  return "^" .. p:gsub("[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0"):gsub("%*", ".*") .. "$"
end

local function compile_patterns(list)
  local out = {}
  for _, p in ipairs(list) do
    if type(p) == "string" and p ~= "" then
      out[#out + 1] = { pat = glob(p), prefix = p:match("^[^*]*") }
    end
  end
  return out
end

local function matches_any(pats, path)
  for _, p in ipairs(pats) do
    if path:find(p.pat) then return true end
  end
  return false
end

local function may_match_below(pats, path)
  local pre = path .. "."
  for _, p in ipairs(pats) do
    local lit = p.prefix
    if lit:sub(1, #pre) == pre or pre:sub(1, #lit) == lit then return true end
  end
  return false
end

local filter_node

local function filter_array(v, path, inc, exc, included)
  local out, n = json.array(), 0
  for _, el in ipairs(v) do
    local r = filter_node(el, path, inc, exc, included)
    if r ~= nil then n = n + 1; out[n] = r end
  end
  if n == 0 and #v > 0 then return nil end
  if n == 0 and not included and inc then return nil end
  return out
end

local function filter_object(v, path, inc, exc, included)
  local out, any = json.object(), false
  for k, child in pairs(v) do
    local r = filter_node(child, path == "" and k or (path .. "." .. k), inc, exc, included)
    if r ~= nil then out[k] = r; any = true end
  end
  if not any and path ~= "" and (next(v) ~= nil or (inc and not included)) then return nil end
  return out
end

-- v at path, kept, filtered or dropped (nil); included: an include matched above
function filter_node(v, path, inc, exc, included)
  if path ~= "" and #exc > 0 and matches_any(exc, path) then return nil end
  if not included and path ~= "" and inc and matches_any(inc, path) then included = true end
  if type(v) ~= "table" or v == null then
    if included or not inc then return v end
    return nil
  end
  if not included and inc and path ~= "" and not may_match_below(inc, path) then return nil end
  if is_array(v) then return filter_array(v, path, inc, exc, included) end
  return filter_object(v, path, inc, exc, included)
end

-- the include and exclude lists of a spec (nil when it filters nothing)
local function lists(spec)
  local inc, exc
  if type(spec) == "string" then
    inc = { spec }
  elseif type(spec) == "table" and is_array(spec) then
    inc = spec
  elseif type(spec) == "table" then
    inc = spec.includes or spec.include
    exc = spec.excludes or spec.exclude
    if type(inc) == "string" then inc = { inc } end
    if type(exc) == "string" then exc = { exc } end
  else
    return nil
  end
  if inc and #inc == 0 then inc = nil end
  return inc, exc
end

function M.filter(source, spec)
  if spec == nil or spec == true or spec == null then return source end
  if spec == false then return nil end
  if type(spec) ~= "table" and type(spec) ~= "string" then
    error("source_filter: bad spec of type " .. type(spec), 2)
  end
  local inc, exc = lists(spec)
  if (not inc) and (not exc or #exc == 0) then return source end
  if json.is_raw(source) then
    local decoded = json.decode_marked(json.raw_text(source))
    if decoded == nil then return source end
    source = decoded
  end
  local r = filter_node(source, "", inc and compile_patterns(inc), compile_patterns(exc or {}), false)
  return r or json.object()
end

return M
