-- The composite aggregation: buckets keyed by a tuple of sources (terms,
-- histogram, date_histogram), in the sources' order, paged with `after`
-- and `after_key` as Elasticsearch pages them.
--   parse(body, ctx, parsers) -> node | nil, err   (parsers: agg_buckets' own,
--     for the histogram sources' keys)
--   run(node, docs, bucket, group) -> result   bucket(docs, head) -> the bucket
--     object with doc_count and sub-aggregations; group: agg_buckets' grouping
local json = require("espipe.server.json")
local date_math = require("espipe.server.date_math")
local fields = require("espipe.server.agg_fields")
local out = require("espipe.server.agg_output")

local M = {}

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local null = json.null
local obj, put = out.obj, out.put
local aerr, check_keys = fields.error, fields.check_keys

local COMPOSITE_KEYS = { sources = true, size = true, after = true }
local SOURCE_TYPES = { terms = true, histogram = true, date_histogram = true }

local function same(v) return v end
local unpack = table.unpack or unpack -- luacheck: ignore

-- one source: { name =, desc =, missing_bucket =, values = fn(doc) -> keys }
local function parse_source(item, ctx, parsers)
  local name, def = next(item)
  if type(item) ~= "table" or name == nil or next(item, name) ~= nil or type(def) ~= "table" then
    return nil, aerr("[composite] each source must be an object with one named source")
  end
  local typ, opts = next(def)
  if not SOURCE_TYPES[typ] or next(def, typ) ~= nil or type(opts) ~= "table" then
    return nil, aerr("[composite] source [" .. tostring(name) .. "] must be one of terms, histogram, "
      .. "date_histogram (espipe serve), found [" .. tostring(typ) .. "]", "illegal_argument_exception")
  end
  local order = opts.order or "asc"
  if order ~= "asc" and order ~= "desc" then return nil, aerr("Unknown order direction [" .. tostring(order) .. "]") end
  local inner = {}
  for k, v in pairs(opts) do
    if k ~= "order" and k ~= "missing_bucket" then inner[k] = v end
  end
  local reader, key_of, format_key, parse_after, err
  if typ == "terms" then
    err = check_keys("terms", inner, { field = true })
    if err then return nil, err end
    reader, err = fields.reader(ctx, inner, "terms", false)
    key_of = same
  else
    local node
    node, err = parsers[typ](inner, ctx, typ)
    if node then
      reader, key_of = node.reader, node.key_of
      if typ == "date_histogram" then
        parse_after = function(v) return type(v) == "string" and date_math.parse_date(v) or v end
      end
      if typ == "date_histogram" and type(inner.format) == "string" then
        local fmt = { kind = "date", format = inner.format }
        format_key = function(k) return fields.as_string(fmt, k, node.zone) end
      end
    end
  end
  if not reader then return nil, err end
  local values = reader.values
  return { name = name, desc = order == "desc", missing_bucket = opts.missing_bucket == true,
           format_key = format_key, parse_after = parse_after,
           values = function(doc)
             local keys, seen = {}, {}
             for _, v in ipairs(values(doc)) do
               local k = key_of(v)
               if not seen[k] then seen[k] = true; keys[#keys + 1] = k end
             end
             return keys
           end }
end

function M.parse(body, ctx, parsers)
  local e = check_keys("composite", body, COMPOSITE_KEYS)
  if e then return nil, e end
  if type(body.sources) ~= "table" or #body.sources == 0 then
    return nil, aerr("Composite [sources] cannot be null or empty", "illegal_argument_exception")
  end
  local sources = {}
  for i, item in ipairs(body.sources) do
    local src, err = parse_source(item, ctx, parsers)
    if not src then return nil, err end
    sources[i] = src
  end
  local size, serr = fields.size(body, "composite")
  if not size then return nil, serr end
  local after
  if body.after ~= nil then
    if type(body.after) ~= "table" then return nil, aerr("[after] must be an object") end
    after = {}
    for i, s in ipairs(sources) do
      local v = body.after[s.name]
      if v == nil then
        return nil, aerr("[after] has no value for source [" .. s.name .. "]", "illegal_argument_exception")
      end
      after[i] = (v ~= null and s.parse_after) and s.parse_after(v) or v
    end
  end
  return { sources = sources, size = size, after = after }
end

-- every key tuple of a document (the product of its sources' values); a
-- source without values drops the document unless it keeps a null bucket
local function tuples_of(sources, doc)
  local list = { {} }
  for i, s in ipairs(sources) do
    local keys = s.values(doc)
    if #keys == 0 then
      if not s.missing_bucket then return {} end
      keys = { null }
    end
    local next_list = {}
    for _, t in ipairs(list) do
      for _, k in ipairs(keys) do
        local copy = { unpack(t, 1, i - 1) }
        copy[i] = k
        next_list[#next_list + 1] = copy
      end
    end
    list = next_list
  end
  return list
end

-- ES's composite order: source by source, each asc or desc, the null
-- bucket first when ascending and last when descending (missing_order default)
local function compare_keys(sources, a, b)
  for i, s in ipairs(sources) do
    local x, y = a[i], b[i]
    if x ~= y then
      if x == null then return not s.desc end
      if y == null then return s.desc end
      if type(x) ~= type(y) then x, y = tostring(x), tostring(y) end
      if s.desc then return x > y end
      return x < y
    end
  end
  return false
end

function M.run(node, docs, bucket, group)
  local sources = node.sources
  local _, list = group(docs, function(doc) return tuples_of(sources, doc) end, json.encode)
  table.sort(list, function(a, b) return compare_keys(sources, a.key, b.key) end)
  local bl, last = out.list(), nil
  for _, b in ipairs(list) do
    if #bl >= node.size then break end
    if not node.after or compare_keys(sources, node.after, b.key) then
      local key = obj()
      for i, s in ipairs(sources) do
        local k = b.key[i]
        put(key, s.name, (s.format_key and k ~= null) and s.format_key(k) or k)
      end
      local head = obj()
      put(head, "key", key)
      bl[#bl + 1] = bucket(b.docs, head)
      last = key
    end
  end
  local r = obj()
  if last then put(r, "after_key", last) end
  put(r, "buckets", bl)
  return r
end

return M
