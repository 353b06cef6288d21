-- Parquet column lists for Elasticsearch documents: from an index mapping,
-- or inferred from sample documents, with names Athena accepts.
--
-- A column is { name = "host_name", type = <writer type>, path = { "host", "name" },
-- field = "host.name", es_type = "keyword" }. Writer types: string, json,
-- int64, timestamp (ms, UTC), double, boolean. Objects are flattened into their
-- leaves; values that have no flat form (nested, flattened, geo_*, ranges,
-- vectors, unknown types, fields seen holding arrays) are JSON columns.
local M = {}

local STRING, JSON, INT64, DOUBLE, BOOLEAN, TIMESTAMP =
  "string", "json", "int64", "double", "boolean", "timestamp"

-- Elasticsearch field type -> writer type; anything absent is JSON.
M.types = {
  keyword = STRING, text = STRING, match_only_text = STRING, wildcard = STRING,
  constant_keyword = STRING, ip = STRING, version = STRING, binary = STRING,
  search_as_you_type = STRING, counted_keyword = STRING,
  unsigned_long = STRING, -- up to 2^64-1: does not fit a signed INT64
  long = INT64, integer = INT64, short = INT64, byte = INT64, token_count = INT64,
  double = DOUBLE, float = DOUBLE, half_float = DOUBLE, scaled_float = DOUBLE,
  rank_feature = DOUBLE,
  boolean = BOOLEAN,
  date = TIMESTAMP, date_nanos = TIMESTAMP, -- milliseconds: date_nanos loses its sub-ms part
}

-- Types with no value of their own in _source.
local NO_SOURCE = { alias = true }

--- Athena-safe column name for a field path: lowercase, [a-z0-9_] only,
-- not starting with a digit ("@timestamp" -> "_timestamp", "host.name" -> "host_name").
function M.safe_name(field)
  if type(field) ~= "string" then
    error("safe_name expects a string, got " .. type(field), 2)
  end
  local s = field:lower():gsub("[^a-z0-9_]", "_")
  if s == "" or s:find("^%d") then s = "_" .. s end
  return s
end

--- Give each column a unique safe name, in order: a later column whose name
-- is taken gets _2, _3, ... (the first free one).
function M.assign_names(columns)
  local used = {}
  for _, col in ipairs(columns) do
    local base = M.safe_name(col.field)
    local name, n = base, 1
    while used[name] do
      n = n + 1
      name = base .. "_" .. n
    end
    used[name] = true
    col.name = name
  end
  return columns
end

local function split_path(field)
  local path = {}
  for seg in field:gmatch("[^.]+") do path[#path + 1] = seg end
  return path
end

-- String keys in order: the column order (parquet/tree.lua walks by it too).
local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    if type(k) == "string" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  return keys
end
M.sorted_keys = sorted_keys

-- The "properties" tables of a GET _mapping response (any index), a
-- { mappings = ... } body, or a bare { properties = ... }.
local function mapping_roots(mapping)
  if type(mapping.properties) == "table" then return { mapping.properties } end
  if type(mapping.mappings) == "table" then return mapping_roots(mapping.mappings) end
  local roots = {}
  for _, index in ipairs(sorted_keys(mapping)) do
    local m = mapping[index]
    if type(m) == "table" and type(m.mappings) == "table" then
      for _, r in ipairs(mapping_roots(m.mappings)) do roots[#roots + 1] = r end
    end
  end
  return roots
end

M.mapping_roots = mapping_roots

local function walk_properties(props, prefix, leaves, order)
  for _, name in ipairs(sorted_keys(props)) do
    local def = props[name]
    local field = prefix and (prefix .. "." .. name) or name
    if type(def) == "table" then
      local es_type = def.type
      if type(def.properties) == "table" and (es_type == nil or es_type == "object") then
        walk_properties(def.properties, field, leaves, order)
      elseif not NO_SOURCE[es_type] then
        es_type = es_type or "object"
        local wtype = M.types[es_type] or JSON
        local prev = leaves[field]
        if not prev then
          order[#order + 1] = field
          leaves[field] = { type = wtype, es_type = es_type }
        elseif prev.type ~= wtype then
          -- the indices disagree: keep every value, as JSON
          prev.type, prev.es_type = JSON, prev.es_type .. "|" .. es_type
        end
      end
    end
  end
end

-- Keep the selected fields (a field selects itself and everything under it),
-- in the order of the selection; force JSON on the fields listed in arrays.
local function finish(order, leaves, opts)
  local fields = order
  if opts.fields then
    fields = {}
    local taken = {}
    for _, want in ipairs(opts.fields) do
      for _, f in ipairs(order) do
        if not taken[f] and (f == want or f:sub(1, #want + 1) == want .. ".") then
          taken[f] = true
          fields[#fields + 1] = f
        end
      end
    end
  end
  local as_json = {}
  for _, f in ipairs(opts.arrays or {}) do as_json[f] = true end
  local prefix = opts.prefix
  local columns = {}
  for _, m in ipairs(opts.meta or {}) do
    columns[#columns + 1] = { field = m, path = { m }, type = STRING, es_type = "keyword" }
  end
  for _, f in ipairs(fields) do
    local leaf = leaves[f]
    local path = split_path(f)
    if prefix then table.insert(path, 1, prefix) end
    columns[#columns + 1] = {
      field = f, path = path, es_type = leaf.es_type,
      type = as_json[f] and JSON or leaf.type,
    }
  end
  return M.assign_names(columns)
end

--- The arguments of a schema builder (from_mapping and infer here and in
-- espipe.parquet.tree): input must be a table (`expected` says which), opts
-- nil or a table whose keys in `options` ({ key, Lua type, what it must be })
-- hold that type. Errors point at the builder's caller; returns opts or {}.
function M.check_arguments(fn, input, expected, opts, options)
  if type(input) ~= "table" then
    error(fn .. " expects " .. expected .. ", got " .. type(input), 3)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("options must be a table, got " .. type(opts), 3)
  end
  opts = opts or {}
  for _, o in ipairs(options) do
    local v = opts[o[1]]
    if v ~= nil and type(v) ~= o[2] then
      error(o[1] .. " must be " .. o[3] .. ", got " .. type(v), 3)
    end
  end
  return opts
end

local OPTIONS = {
  { "fields", "table", "a list of field paths" }, { "arrays", "table", "a list of field paths" },
  { "meta", "table", "a list of field paths" }, { "prefix", "string", "a string" },
}

--- Columns from an index mapping (the decoded GET <index>/_mapping body).
-- opts.fields   only these field paths (and what is under them), in this order
-- opts.arrays   field paths known to hold arrays: JSON columns
-- opts.meta     hit-level fields first as string columns (e.g. { "_id", "_index" })
-- opts.prefix   where the document sits in a row (e.g. "_source" when rows are hits)
function M.from_mapping(mapping, opts)
  opts = M.check_arguments("from_mapping", mapping, "the decoded mapping table", opts, OPTIONS)
  local leaves, order = {}, {}
  for _, props in ipairs(mapping_roots(mapping)) do
    walk_properties(props, nil, leaves, order)
  end
  table.sort(order)
  return finish(order, leaves, opts)
end

local is_integer = math.type and function(v) return math.type(v) == "integer" end
  or function(v) return v == math.floor(v) and v > -2^53 and v < 2^53 end

--- Whether t is a non-empty table holding 1..#t and nothing else (a JSON array).
function M.is_sequence(t)
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

--- The writer type of a string, boolean or finite number (nil for anything
-- else), the way dynamic mapping types it; is_date(s) detects dates.
function M.scalar_kind(v, is_date)
  local t = type(v)
  if t == "string" then return is_date(v) and TIMESTAMP or STRING end
  if t == "boolean" then return BOOLEAN end
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return nil end
    return is_integer(v) and INT64 or DOUBLE
  end
  return nil
end

-- What one value says about its field's type (nil: nothing, e.g. null or {}).
local function classify(v, is_date)
  if type(v) == "table" then
    if M.is_sequence(v) then return JSON end
    if next(v) == nil then return nil end
    return "object"
  end
  return M.scalar_kind(v, is_date)
end

local function merge(a, b)
  if a == nil or a == b then return b end
  if b == nil then return a end
  if (a == INT64 and b == DOUBLE) or (a == DOUBLE and b == INT64) then return DOUBLE end
  if (a == STRING and b == TIMESTAMP) or (a == TIMESTAMP and b == STRING) then return STRING end
  return JSON
end

local function observe(doc, prefix, seen, is_date)
  for k, v in pairs(doc) do
    if type(k) == "string" then
      local field = prefix and (prefix .. "." .. k) or k
      local kind = classify(v, is_date)
      if kind == "object" then
        seen[field] = merge(seen[field], "object")
        observe(v, field, seen, is_date)
      elseif kind ~= nil then
        seen[field] = merge(seen[field], kind)
      elseif seen[field] == nil then
        seen[field] = false -- seen, type unknown yet
      end
    end
  end
end

--- Columns inferred from sample documents (decoded _source tables), the way
-- dynamic mapping would see them: integers -> int64, other numbers -> double,
-- ISO-8601 date strings -> timestamp (date_detection), other strings ->
-- string, objects -> their leaves, arrays and fields whose types conflict ->
-- JSON; a field only ever null is a string column.
-- opts.sample (default 1000) documents are looked at; other options as from_mapping.
function M.infer(docs, opts)
  opts = M.check_arguments("infer", docs, "an array of documents", opts, OPTIONS)
  local sample = opts.sample or 1000
  if type(sample) ~= "number" or sample < 1 then
    error("sample must be a positive number", 2)
  end
  local is_date = opts.is_date or require("espipe.parquet_writer").is_iso_date
  local seen = {}
  for i = 1, math.min(#docs, sample) do
    local doc = docs[i]
    if type(doc) ~= "table" then
      error("docs[" .. i .. "] must be a table, got " .. type(doc), 2)
    end
    observe(doc, nil, seen, is_date)
  end
  local leaves, order = {}, {}
  local names = sorted_keys(seen)
  for _, f in ipairs(names) do
    local kind = seen[f]
    if kind ~= "object" then
      -- a field that is sometimes an object and sometimes not was merged to JSON;
      -- its children are then inside that JSON value
      local parent, covered = f, false
      while true do
        parent = parent:match("^(.*)%.[^.]*$")
        if not parent then break end
        if seen[parent] == JSON then covered = true break end
      end
      if not covered then
        order[#order + 1] = f
        leaves[f] = { type = kind or STRING }
      end
    end
  end
  return finish(order, leaves, opts)
end

return M
