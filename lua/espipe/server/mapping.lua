-- Index mappings as the dev server keeps them: ES-shaped `properties`, the
-- `dynamic` setting, dynamic field detection (long/float/boolean/date/
-- text+keyword/object) and the few type checks clients rely on (strict
-- dynamic mapping, numbers/booleans in typed fields, coercion of numeric
-- strings).
local json = require("espipe.server.json")

local M = {}

local NUMERIC = { long = "int", integer = "int", short = "int", byte = "int",
                  unsigned_long = "int", double = "float", float = "float",
                  half_float = "float", scaled_float = "float" }

local function is_date_string(s)
  return s:match("^%d%d%d%d%-%d%d%-%d%d$") ~= nil
      or s:match("^%d%d%d%d%-%d%d%-%d%d[T ]%d%d:%d%d") ~= nil
end

local expand_dots_deep

local copy = json.copy

-- body: the "mappings" object of a create-index or put-mapping request
function M.new(body)
  local m = { properties = {}, check = false }
  if type(body) == "table" then
    local err, kind = M.put(m, body)
    if err then return nil, err, kind end
  end
  return m
end

local DYNAMIC = { ["true"] = true, ["false"] = true, strict = true, runtime = true }

local function dynamic_of(v)
  if v == nil or v == json.null then return nil end
  local s = tostring(v)
  if not DYNAMIC[s] then return nil, "unknown value [" .. s .. "] for dynamic" end
  return s
end

-- "a.b": {def} is the object a with the property b, as ES reads it
local function expand_dots(from)
  local out = {}
  for name, def in pairs(from) do
    local head, rest = tostring(name):match("^([^.]+)%.(.+)$")
    if head and type(def) == "table" then
      local obj = out[head] or { properties = {} }
      obj.properties = obj.properties or {}
      obj.properties[rest] = def
      obj.properties = expand_dots(obj.properties)
      out[head] = obj
    else
      out[name] = def
    end
  end
  return out
end

local ILLEGAL = "illegal_argument_exception"

-- merges property definitions: a redefined field takes its new parameters
-- (meta, analyzer, ...) while its properties and fields are merged.
-- Returns nil | reason, error type
local function merge_props(into, from, path)
  for name, def in pairs(expand_dots(from)) do
    if name == "" then return "field name cannot be an empty string", ILLEGAL end
    if type(def) ~= "table" then
      return "Expected map for property [" .. name .. "] on field [" .. path .. name .. "] but got a class java.lang.String"
    end
    local old = into[name]
    local ty = def.type or (def.properties and "object") or "object"
    if old then
      local oldty = old.type or "object"
      if oldty ~= ty then
        return "mapper [" .. path .. name .. "] cannot be changed from type [" .. oldty .. "] to [" .. ty .. "]",
          ILLEGAL
      end
      local merged = copy(def)
      for _, sub in ipairs({ "properties", "fields" }) do
        if old[sub] or def[sub] then
          merged[sub] = copy(old[sub] or {})
          local err, kind = merge_props(merged[sub], def[sub] or {}, path .. name .. ".")
          if err then return err, kind end
        end
      end
      into[name] = merged
    else
      into[name] = copy(expand_dots_deep(def))
    end
  end
end

expand_dots_deep = function(def)
  if type(def) == "table" and type(def.properties) == "table" then
    local props = expand_dots(def.properties)
    for k, v in pairs(props) do props[k] = expand_dots_deep(v) end
    def.properties = props
  end
  return def
end

-- the keys a mappings object may hold besides properties
local ROOT_KEYS = {}
for k in ([[dynamic properties _source _routing _meta dynamic_templates date_detection numeric_detection
  dynamic_date_formats runtime _field_names enabled subobjects _data_stream_timestamp _size]]):gmatch("%S+") do
  ROOT_KEYS[k] = true
end

local function check_root(m, body)
  for k, v in pairs(body) do
    if not ROOT_KEYS[k] then
      if type(v) == "table" and (v.properties or v.dynamic) then
        return "Types cannot be provided in put mapping requests", ILLEGAL
      end
      return "Root mapping definition has unsupported parameters:  [" .. tostring(k) .. " : "
        .. json.encode(v) .. "]", "mapper_parsing_exception"
    end
  end
  local old, new = m.extra__source, body._source
  if type(old) == "table" and old.mode == "synthetic" and type(new) == "table" and new.mode
      and new.mode ~= "synthetic" then
    return "Cannot update parameter [mode] from [synthetic] to [" .. tostring(new.mode) .. "]", ILLEGAL
  end
  return nil
end

-- Merges a put-mapping body into m; returns nil | reason, error type. On
-- an error m is as it was.
function M.put(m, body)
  local err, kind = check_root(m, body)
  if err then return err, kind end
  local trial = copy(m)
  if body.dynamic ~= nil then
    local d
    d, err = dynamic_of(body.dynamic)
    if err then return err, "mapper_parsing_exception" end
    trial.dynamic = d
    if d == "strict" or d == "false" then trial.check = true end
  end
  if body.properties ~= nil then
    if type(body.properties) ~= "table" then return "[properties] must be an object", "mapper_parsing_exception" end
    err, kind = merge_props(trial.properties, body.properties, "")
    if err then return err, kind or "mapper_parsing_exception" end
    if next(body.properties) then trial.check = true end
  end
  for k, v in pairs(body) do
    if k ~= "dynamic" and k ~= "properties" then trial[k == "_routing" and "routing" or "extra_" .. k] = copy(v) end
  end
  for k in pairs(m) do m[k] = nil end
  for k, v in pairs(trial) do m[k] = v end
  return nil
end

-- the nested documents a source makes (each object under a nested field,
-- at any depth), for index.mapping.nested_objects.limit
local function nested_count(props, obj)
  local n = 0
  if type(props) ~= "table" or type(obj) ~= "table" then return 0 end
  for name, def in pairs(props) do
    local v = obj[name]
    if type(def) == "table" and v ~= nil and v ~= json.null then
      local list = (type(v) == "table" and v[1] ~= nil) and v or { v }
      for _, item in ipairs(list) do
        if type(item) == "table" then
          if def.type == "nested" then n = n + 1 end
          n = n + nested_count(def.properties, item)
        end
      end
    end
  end
  return n
end

function M.nested_count(m, doc)
  return nested_count(m.properties, doc)
end

-- is the _source kept for reads (mappings _source.enabled: false says no)
function M.source_enabled(m)
  return not (type(m.extra__source) == "table" and m.extra__source.enabled == false)
end

function M.to_table(m)
  local out = json.object()
  if m.dynamic then out.dynamic = m.dynamic end
  if m.routing then out._routing = m.routing end
  for k, v in pairs(m) do
    local name = type(k) == "string" and k:match("^extra_(.+)$")
    if name then out[name] = v end
  end
  if next(m.properties) then out.properties = m.properties end
  return out
end

function M.routing_required(m)
  return type(m.routing) == "table" and m.routing.required == true
end

local function detect(v)
  local tv = type(v)
  if tv == "boolean" then return { type = "boolean" } end
  if tv == "number" then
    if v == math.floor(v) and v > -2 ^ 63 and v < 2 ^ 63 then return { type = "long" } end
    return { type = "float" }
  end
  if tv == "string" then
    if is_date_string(v) then return { type = "date" } end
    return { type = "text", fields = { keyword = { type = "keyword", ignore_above = 256 } } }
  end
  if tv == "table" then
    if json.is_array(v) or (v[1] ~= nil) then
      for _, x in ipairs(v) do
        if x ~= json.null then return detect(x) end
      end
      return nil
    end
    return { type = "object", properties = {} }
  end
  return nil
end

local function preview(v)
  if type(v) == "table" then return json.encode(v) end
  return tostring(v)
end

-- where: "[line:col] " from the position of the field name in the raw source
local function where(src, name)
  local col = 1
  if src then
    local p = src:find('"' .. name .. '"', 1, true)
    if p then col = p + #name + 2 end
  end
  return "[1:" .. col .. "] "
end

local function parse_failure(ctx, path, ty, v, why)
  return 400, {
    type = "document_parsing_exception",
    reason = where(ctx.src, path:match("[^.]+$")) .. "failed to parse field [" .. path .. "] of type ["
      .. ty .. "] in document with id '" .. ctx.id .. "'. Preview of field's value: '" .. preview(v) .. "'",
    caused_by = why,
  }
end

local function check_value(ctx, path, def, v)
  local ty = def.type or "object"
  local kind = NUMERIC[ty]
  if v == json.null then return nil end
  if kind then
    local n = v
    if type(v) == "string" then n = tonumber(v) end
    if type(n) ~= "number" then
      return parse_failure(ctx, path, ty, v, { type = "illegal_argument_exception",
        reason = (type(v) == "string" and ('For input string: "' .. v .. '"') or "Current token is not a number") })
    end
  elseif ty == "boolean" then
    if not (type(v) == "boolean" or v == "true" or v == "false" or v == "") then
      return parse_failure(ctx, path, ty, v, { type = "illegal_argument_exception",
        reason = "Failed to parse value [" .. preview(v) .. "] as only [true] or [false] are allowed." })
    end
  elseif ty == "date" then
    if not (type(v) == "number" or (type(v) == "string" and (is_date_string(v) or v:match("^%d+$")))) then
      return parse_failure(ctx, path, ty, v, { type = "illegal_argument_exception",
        reason = "failed to parse date field [" .. preview(v) .. "] with format [strict_date_optional_time||epoch_millis]" })
    end
  elseif ty == "object" or ty == "nested" then
    if type(v) ~= "table" or json.is_array(v) then
      return 400, { type = "document_parsing_exception",
        reason = where(ctx.src, path:match("[^.]+$")) .. "object mapping for [" .. path
          .. "] tried to parse field [" .. path:match("[^.]+$") .. "] as object, but found a concrete value" }
    end
  end
  return nil
end

local walk

local function walk_value(ctx, props, name, path, v, dynamic)
  if type(v) == "table" and (json.is_array(v) or v[1] ~= nil) then
    for _, x in ipairs(v) do
      local s, e = walk_value(ctx, props, name, path, x, dynamic)
      if s then return s, e end
    end
    return nil
  end
  if v == json.null then return nil end
  local def = props[name]
  if not def then
    if dynamic == "strict" then
      return 400, { type = "strict_dynamic_mapping_exception",
        reason = where(ctx.src, name) .. "mapping set to strict, dynamic introduction of [" .. name
          .. "] within [" .. (ctx.parent or "_doc") .. "] is not allowed" }
    end
    if dynamic == "false" or dynamic == "runtime" then return nil end
    def = detect(v)
    if not def then return nil end
    props[name] = def
    ctx.changed = true
  end
  local s, e = check_value(ctx, path, def, v)
  if s then return s, e end
  if (def.type or "object") == "object" and type(v) == "table" then
    def.properties = def.properties or {}
    local child_dynamic = def.dynamic ~= nil and tostring(def.dynamic) or dynamic
    local saved = ctx.parent
    ctx.parent = path
    s, e = walk(ctx, def.properties, v, path .. ".", child_dynamic)
    ctx.parent = saved
    if s then return s, e end
  end
  return nil
end

function walk(ctx, props, obj, prefix, dynamic)
  for name, v in pairs(obj) do
    if type(name) == "string" then
      local s, e = walk_value(ctx, props, name, prefix .. name, v, dynamic)
      if s then return s, e end
    end
  end
  return nil
end

-- Checks doc against m and adds dynamic fields. Returns nil on success or
-- status, cause (an ES error cause table). Fields added before a failure
-- stay (as in ES, where the mapping update is separate from the document).
function M.apply(m, doc, id, src)
  if type(doc) ~= "table" or json.is_array(doc) then
    return 400, { type = "document_parsing_exception",
      reason = "[1:1] failed to parse: Root mapping definition must be an object" }
  end
  local ctx = { id = id, src = src }
  local s, c = walk(ctx, m.properties, doc, "", m.dynamic or "true")
  if ctx.changed then m.changed_marker = (m.changed_marker or 0) + 1 end
  return s, c
end

return M
