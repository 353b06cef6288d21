-- Index templates: composable (_index_template, built from
-- _component_template pieces) and legacy (_template), and what they give
-- an index being created. api_templates writes them to --data; restore
-- reads them back.
--
--   apply(name, body) -> body  the creation body with the matching templates
--     under it: the composable template of highest priority (its components
--     in order, then its own template), else every matching legacy template
--     by ascending order; the request's own settings/mappings/aliases win.
--     settings are merged in index_settings' flat form; "{index}" in a
--     template's alias names becomes the index name.
--   put_index / put_component / put_legacy (name, body, create) -> nil | status, cause
--   index, component, legacy: name -> stored definition
--   matching_names(store, expr) -> sorted names matching "a,b*"
--   restore(rec) a --data record { kind = "index"|"component"|"legacy", name =, def = | nil }
local json = require("espipe.server.json")
local index_settings = require("espipe.server.index_settings")

local M = {}

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local null = json.null

M.index, M.component, M.legacy = {}, {}, {}

local function is_object(v)
  return type(v) == "table" and v ~= null and not json.is_array(v)
end

local copy = json.copy

local function glob_match(pattern, name)
  local pat = "^" .. pattern:gsub("[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0"):gsub("%*", ".*") .. "$"
  return name:find(pat) ~= nil
end

local function matches(patterns, name)
  for _, p in ipairs(patterns) do
    if glob_match(p, name) then return true end
  end
  return false
end

function M.matching_names(store, expr)
  local out = {}
  for name in pairs(store) do
    if expr == nil or expr == "*" or expr == "_all" then
      out[#out + 1] = name
    else
      for part in tostring(expr):gmatch("[^,]+") do
        if glob_match(part, name) then out[#out + 1] = name break end
      end
    end
  end
  table.sort(out)
  return out
end

------------------------------------------------------------------------
-- merging

-- later properties over earlier ones, objects merged field by field
local function merge_properties(into, from)
  for name, def in pairs(from) do
    local old = into[name]
    if is_object(old) and is_object(def) and is_object(old.properties) and is_object(def.properties) then
      local merged = copy(def)
      merged.properties = copy(old.properties)
      merge_properties(merged.properties, def.properties)
      into[name] = merged
    else
      into[name] = copy(def)
    end
  end
end

local function merge_mappings(into, from)
  if not is_object(from) then return into end
  into = into or json.object()
  for k, v in pairs(from) do
    if k == "properties" and is_object(v) then
      into.properties = into.properties or json.object()
      merge_properties(into.properties, v)
    else
      into[k] = copy(v)
    end
  end
  return into
end

-- a layer: { settings = flat, mappings =, aliases = } merged over acc
local function layer(acc, t)
  if not is_object(t) then return acc end
  if is_object(t.settings) then
    for k, v in pairs(index_settings.flat_settings(t.settings)) do acc.settings[k] = v end
  end
  acc.mappings = merge_mappings(acc.mappings, t.mappings)
  if is_object(t.aliases) then
    local function index_name() return acc.name end
    for a, props in pairs(t.aliases) do acc.aliases[(a:gsub("{index}", index_name))] = copy(props) end
  end
  return acc
end

local function best_composable(name)
  local best, best_name
  for tname, t in pairs(M.index) do
    if matches(t.index_patterns, name)
        and (best == nil or (t.priority or 0) > (best.priority or 0)) then
      best, best_name = t, tname
    end
  end
  return best, best_name
end

local function legacy_layers(name)
  local list = {}
  for tname, t in pairs(M.legacy) do
    if matches(t.index_patterns, name) then list[#list + 1] = { name = tname, t = t } end
  end
  table.sort(list, function(a, b)
    if (a.t.order or 0) ~= (b.t.order or 0) then return (a.t.order or 0) < (b.t.order or 0) end
    return a.name < b.name
  end)
  return list
end

function M.apply(name, body)
  if next(M.index) == nil and next(M.legacy) == nil then return body end
  if body ~= nil and not is_object(body) then return body end
  local acc = { settings = {}, aliases = {}, name = name }
  local t = best_composable(name)
  if t then
    for _, c in ipairs(t.composed_of or {}) do
      local ct = M.component[c]
      if ct then layer(acc, ct.template) end
    end
    layer(acc, t.template)
  else
    local list = legacy_layers(name)
    if #list == 0 then return body end
    for _, l in ipairs(list) do layer(acc, l.t) end
  end
  body = body or {}
  layer(acc, body)
  local out = {}
  for k, v in pairs(body) do out[k] = v end
  out.settings = next(acc.settings) and acc.settings or nil
  out.mappings = acc.mappings
  out.aliases = next(acc.aliases) and acc.aliases or nil
  return out
end

------------------------------------------------------------------------
-- definitions

local function invalid(reason, typ)
  return 400, { type = typ or "illegal_argument_exception", reason = reason }
end

local function patterns_of(v)
  if type(v) == "string" then return json.array({ v }) end
  if type(v) == "table" and #v > 0 then return v end
  return nil
end

local TEMPLATE_KEYS = { settings = true, mappings = true, aliases = true, lifecycle = true }
local INDEX_KEYS = { index_patterns = true, template = true, composed_of = true, priority = true, version = true,
  _meta = true, allow_auto_create = true, deprecated = true, ignore_missing_component_templates = true }
local LEGACY_KEYS = { index_patterns = true, order = true, settings = true, mappings = true, aliases = true,
  version = true }

local function unknown_key(body, allowed, what)
  for k in pairs(body) do
    if not allowed[k] then
      return invalid("[" .. what .. "] unknown field [" .. tostring(k) .. "]", "x_content_parse_exception")
    end
  end
  return nil
end

local function check_template(t, what)
  if t == nil then return nil end
  if not is_object(t) then
    return invalid("[" .. what .. "] template must be an object", "x_content_parse_exception")
  end
  return unknown_key(t, TEMPLATE_KEYS, "template")
end

local function exists_error(kind, name)
  return invalid(kind .. " [" .. name .. "] already exists")
end

function M.put_component(name, body, create)
  if not is_object(body) then return invalid("component template body must be an object") end
  local s, c = unknown_key(body, { template = true, version = true, _meta = true, deprecated = true },
    "component_template")
  if s then return s, c end
  if body.template == nil then
    return invalid("Validation Failed: 1: template is missing;", "action_request_validation_exception")
  end
  s, c = check_template(body.template, "component_template")
  if s then return s, c end
  if create and M.component[name] then return exists_error("component template", name) end
  M.component[name] = copy(body)
  return nil
end

local function overlapping(name, t)
  for other, o in pairs(M.index) do
    if other ~= name and (o.priority or 0) == (t.priority or 0) then
      for _, p in ipairs(t.index_patterns) do
        for _, q in ipairs(o.index_patterns) do
          if glob_match(p, q) or glob_match(q, p) then return other, o end
        end
      end
    end
  end
  return nil
end

-- a copy of a template body with its index_patterns as a list | nil, status, cause
local function with_patterns(body, allowed, what)
  if not is_object(body) then return nil, invalid(what .. " body must be an object") end
  local s, c = unknown_key(body, allowed, what)
  if s then return nil, s, c end
  local t = copy(body)
  t.index_patterns = patterns_of(body.index_patterns)
  if not t.index_patterns then
    return nil, invalid("Validation Failed: 1: index patterns are missing;", "action_request_validation_exception")
  end
  return t
end

function M.put_index(name, body, create)
  local t, s, c = with_patterns(body, INDEX_KEYS, "index_template")
  if not t then return s, c end
  s, c = check_template(body.template, "index_template")
  if s then return s, c end
  if body.priority ~= nil and (type(body.priority) ~= "number" or body.priority < 0) then
    return invalid("Validation Failed: 1: index template priority must be >= 0;",
      "action_request_validation_exception")
  end
  local missing = {}
  for _, comp in ipairs(body.composed_of or {}) do
    if not M.component[comp] then missing[#missing + 1] = comp end
  end
  if #missing > 0 then
    return invalid("index template [" .. name .. "] specifies component templates [" .. table.concat(missing, ",")
      .. "] that do not exist", "invalid_index_template_exception")
  end
  if create and M.index[name] then return exists_error("index template", name) end
  local other, o = overlapping(name, t)
  if other then
    return invalid("index template [" .. name .. "] has index patterns [" .. table.concat(t.index_patterns, ", ")
      .. "] matching patterns from existing templates [" .. other .. "] with patterns (" .. other .. " => ["
      .. table.concat(o.index_patterns, ", ") .. "]) that have the same priority [" .. (t.priority or 0)
      .. "], multiple index templates may not match during index creation, please use a different priority")
  end
  M.index[name] = t
  return nil
end

function M.put_legacy(name, body, create)
  local t, s, c = with_patterns(body, LEGACY_KEYS, "template")
  if not t then return s, c end
  if create and M.legacy[name] then return exists_error("index_template", name) end
  M.legacy[name] = t
  return nil
end

function M.restore(rec)
  local store = M[rec.kind]
  if type(store) == "table" and type(rec.name) == "string" then store[rec.name] = rec.def end
end

-- components no index template may lose: name -> users
function M.component_users(name)
  local users = {}
  for tname, t in pairs(M.index) do
    for _, c in ipairs(t.composed_of or {}) do
      if c == name then users[#users + 1] = tname end
    end
  end
  table.sort(users)
  return users
end

return M
