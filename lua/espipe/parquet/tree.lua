-- Nested Parquet fields for Elasticsearch documents, the way pyarrow or Spark
-- would type them: objects as STRUCTs, fields seen holding arrays (in sample
-- documents) and `nested` fields as LISTs, geo_point as struct<lat, lon>,
-- flattened as MAP<string, string>, date as TIMESTAMP(MILLIS) and date_nanos
-- as TIMESTAMP(NANOS) (UTC), unsigned_long as DECIMAL(20,0), ip and the text
-- types as strings; types with no column form (geo_shape, ranges, vectors,
-- unknown) as JSON text. Field names are kept (see espipe.parquet.names).
--
--   tree.from_mapping(mapping, opts) -> columns, renamed
--   tree.infer(docs, opts)           -> columns, renamed
--   opts: sample = { doc, ... } (arrays are seen there), fields = { path, ... },
--         meta = { "_id", ... }, prefix = "_source", rename = { [path] = name }
--   columns: the writer's top-level fields ({ name, type, path, field, es_type,
--         fields = {..} | element = {..} }), renamed: { { field =, column = } }
--   tree.type_string(column) -> "array<struct<a:string,b:bigint>>" (Hive/Athena DDL)
local names = require "espipe.parquet.names"
local schema = require "espipe.parquet.schema"

local M = {}

local LEAF = {
  keyword = "string", text = "string", match_only_text = "string", wildcard = "string",
  constant_keyword = "string", ip = "string", version = "string", binary = "string",
  search_as_you_type = "string", counted_keyword = "string",
  long = "int64", integer = "int64", short = "int64", byte = "int64", token_count = "int64",
  double = "double", float = "double", half_float = "double", scaled_float = "double",
  rank_feature = "double",
  boolean = "boolean",
  date = "timestamp", date_nanos = "timestamp_ns", unsigned_long = "decimal",
}
M.leaf_types = LEAF

local NO_SOURCE = { alias = true }

-- the same order as the schema's columns, so tree and schema agree
local sorted_keys = schema.sorted_keys

-- ---- what sample documents show ----

local function is_array(v, json_array_mt)
  if type(v) ~= "table" then return false end
  if json_array_mt and getmetatable(v) == json_array_mt then return true end
  return schema.is_sequence(v)
end

local scalar_kind = schema.scalar_kind

local function merge_kind(a, b)
  if a == nil or a == b then return b end
  if b == nil then return a end
  if (a == "int64" and b == "double") or (a == "double" and b == "int64") then return "double" end
  if (a == "string" and b == "timestamp") or (a == "timestamp" and b == "string") then return "string" end
  return "json"
end

local function stat_child(stat, k)
  local c = stat.children[k]
  if not c then
    c = { children = {} }
    stat.children[k] = c
  end
  return c
end

local observe

-- One value (not an array) at this node.
local function observe_one(stat, v, ctx)
  if type(v) == "table" then
    if is_array(v, ctx.array_mt) then
      stat.kind = "json" -- an array inside an array has no column form
    elseif next(v) ~= nil then
      stat.object = true
      for k, x in pairs(v) do
        if type(k) == "string" then observe(stat_child(stat, k), x, ctx) end
      end
    end
    return
  end
  if v ~= ctx.null then
    local kind = scalar_kind(v, ctx.is_date)
    if kind then stat.kind = merge_kind(stat.kind, kind) end
  end
end

function observe(stat, v, ctx)
  stat.seen = true
  if is_array(v, ctx.array_mt) then
    stat.array = true
    if type(v[1]) == "number" then stat.numbers = true end
    for i = 1, #v do observe_one(stat, v[i], ctx) end
  else
    observe_one(stat, v, ctx)
  end
end

local function sample_stats(docs)
  local json = require "espipe.json"
  local ctx = { null = json.null, array_mt = getmetatable(json.array {}),
    is_date = require("espipe.parquet_writer").is_iso_date }
  local root = { children = {} }
  for i, doc in ipairs(docs or {}) do
    if type(doc) ~= "table" then
      error("sample[" .. i .. "] must be a table (a document), got " .. type(doc), 3)
    end
    observe_one(root, doc, ctx)
  end
  return root
end

local EMPTY = { children = {} }

-- ---- fields ----

local function as_list(field, stat)
  if stat.array then return { type = "list", element = field } end
  return field
end

local from_stat, from_mapping_def

-- A struct's fields, by key in byte order: make(key, field path) -> field | nil.
local function struct_fields(t, field, make)
  local fields = {}
  for _, k in ipairs(sorted_keys(t)) do
    local f = make(k, field and (field .. "." .. k) or k)
    if f then
      f.key = k
      fields[#fields + 1] = f
    end
  end
  return fields
end

local function struct_of(children_stat, field)
  return struct_fields(children_stat, field, function(k, sub) return from_stat(children_stat[k], sub) end)
end

-- A field from what the samples show alone.
function from_stat(stat, field)
  if stat.object and stat.kind then return as_list({ type = "json", field = field }, stat) end
  if stat.object then
    local fields = struct_of(stat.children, field)
    if #fields == 0 then return nil end
    return as_list({ type = "struct", fields = fields, field = field }, stat)
  end
  return as_list({ type = stat.kind or "string", field = field }, stat)
end

local function struct_from_properties(props, stat, field)
  return struct_fields(props, field, function(k, sub)
    return from_mapping_def(props[k], stat.children[k] or EMPTY, sub)
  end)
end

-- A field from its mapping definition, LIST where the samples hold arrays.
function from_mapping_def(def, stat, field)
  if type(def) ~= "table" then return nil end
  local es_type = def.type or (type(def.properties) == "table" and "object") or nil
  if es_type == nil or NO_SOURCE[es_type] then return nil end
  if es_type == "object" or es_type == "nested" then
    if type(def.properties) ~= "table" then
      return as_list({ type = "json", field = field, es_type = es_type }, stat)
    end
    local fields = struct_from_properties(def.properties, stat, field)
    if #fields == 0 then return nil end
    local s = { type = "struct", fields = fields, field = field, es_type = es_type }
    if es_type == "nested" then return { type = "list", element = s, field = field, es_type = es_type } end
    return as_list(s, stat)
  end
  if es_type == "geo_point" then
    local g = { type = "geo_point", field = field, es_type = es_type }
    -- [lon, lat] is one point; an array of anything else is a list of points
    if stat.array and not stat.numbers then return { type = "list", element = g, field = field } end
    return g
  end
  if es_type == "flattened" then
    return as_list({ type = "map", value = "string", field = field, es_type = es_type }, stat)
  end
  return as_list({ type = LEAF[es_type] or "json", field = field, es_type = es_type }, stat)
end

-- ---- selection, names, roots ----

local function selected(field, want)
  if not want then return true end
  for _, w in ipairs(want) do
    if field == w or field:sub(1, #w + 1) == w .. "." or w:sub(1, #field + 1) == field .. "." then
      return true
    end
  end
  return false
end

-- Drop what `fields` does not select, inside structs too.
local function select(f, want)
  if not want then return f end
  if f.type == "struct" then
    local kept = {}
    for _, c in ipairs(f.fields) do
      if selected(c.field, want) then kept[#kept + 1] = select(c, want) end
    end
    if #kept == 0 then return nil end
    f.fields = kept
  elseif f.type == "list" then
    f.element = select(f.element, want)
    if not f.element then return nil end
  end
  return f
end

local function roots(top, opts)
  local columns = {}
  for _, m in ipairs(opts.meta or {}) do
    columns[#columns + 1] = { name = m, key = m, field = m, path = { m }, type = "string", es_type = "keyword" }
  end
  local order = opts.fields
  local by_key = {}
  for _, f in ipairs(top) do by_key[f.key] = f end
  local taken = {}
  local function add(f)
    if f and not taken[f.key] then
      taken[f.key] = true
      f = select(f, opts.fields)
      if f then
        f.path = opts.prefix and { opts.prefix, f.key } or { f.key }
        columns[#columns + 1] = f
      end
    end
  end
  if order then
    for _, want in ipairs(order) do add(by_key[want:match("^[^.]+")]) end
  else
    for _, f in ipairs(top) do add(f) end
  end
  local renamed = names.assign(columns, opts.rename)
  return columns, renamed
end

local OPTIONS = {
  { "fields", "table", "a list" }, { "meta", "table", "a list" }, { "sample", "table", "a list" },
  { "rename", "table", "a table of field = column name" },
}

-- The "properties" of a GET _mapping response, merged over its indices: a
-- later index adds the fields an earlier one lacks.
local function mapping_properties(mapping)
  local merged = {}
  for _, props in ipairs(schema.mapping_roots(mapping)) do
    for k, v in pairs(props) do
      if merged[k] == nil then merged[k] = v end
    end
  end
  return merged
end

--- Fields from an index mapping (the decoded GET <index>/_mapping body),
-- arrays from opts.sample.
function M.from_mapping(mapping, opts)
  opts = schema.check_arguments("from_mapping", mapping, "the decoded mapping table", opts, OPTIONS)
  return roots(struct_from_properties(mapping_properties(mapping), sample_stats(opts.sample), nil), opts)
end

--- Fields inferred from sample documents alone (decoded _source tables).
function M.infer(docs, opts)
  opts = schema.check_arguments("infer", docs, "an array of documents", opts, OPTIONS)
  return roots(struct_of(sample_stats(docs).children, nil), opts)
end

local HIVE = { string = "string", json = "string", int64 = "bigint", double = "double",
  boolean = "boolean", timestamp = "timestamp", timestamp_ns = "timestamp", decimal = "decimal(20,0)" }

--- The column's type as Athena/Hive DDL writes it.
function M.type_string(f)
  if f.type == "list" then return "array<" .. M.type_string(f.element) .. ">" end
  if f.type == "struct" then
    local parts = {}
    for i, c in ipairs(f.fields) do parts[i] = c.name .. ":" .. M.type_string(c) end
    return "struct<" .. table.concat(parts, ",") .. ">"
  end
  if f.type == "geo_point" then return "struct<lat:double,lon:double>" end
  if f.type == "map" then return "map<string,string>" end
  return HIVE[f.type] or "string"
end

return M
