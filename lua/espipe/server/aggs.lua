-- Aggregations over the documents a search matched, answered in
-- Elasticsearch's response shapes (keys in ES's order).
--
--   parse(spec, ctx) -> aggs | nil, err      err = { status = 400, type =, reason = }
--     ctx = { resolve = fn(field) -> type, path,   (query.resolve_field over the mappings)
--             compile = fn(query) -> matcher | nil, err,
--             sorter = fn(sort_spec) -> sorter | nil, err,
--             all_docs = fn() -> docs,              (terms min_doc_count 0)
--             typed_keys = bool }                   (names as "sterms#name")
--   run(aggs, docs) -> result | nil, err   docs = { hit, ... } (hit: _id, _index, _source, ...)
--   encode(result) -> JSON text of the "aggregations" object
--
-- Bucket aggregations: terms, date_histogram, histogram, range, date_range,
-- filter, filters, missing; metrics: min, max, sum, avg, stats, value_count,
-- cardinality (exact: every distinct value is counted), top_hits. Any other
-- type is a 400 naming it; so is an option outside this subset.
local json = require("espipe.server.json")
local query = require("espipe.server.query")
local fields = require("espipe.server.agg_fields")
local buckets = require("espipe.server.agg_buckets")
local out = require("espipe.server.agg_output")

local M = {}

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local null = json.null
local obj, put = out.obj, out.put

local aerr, field_reader, as_string = fields.error, fields.reader, fields.as_string
local check_keys = fields.check_keys

------------------------------------------------------------------------
-- metrics

local function numbers(reader, docs)
  local list = {}
  for _, hit in ipairs(docs) do
    for _, v in ipairs(reader.values(hit)) do list[#list + 1] = v end
  end
  return list
end

local function single(reader, value, r)
  r = r or obj()
  put(r, "value", value == nil and null or value)
  if value ~= nil then
    local s = as_string(reader, value)
    if s then put(r, "value_as_string", s) end
  end
  return r
end

local metrics = {}

local function extreme(pick)
  return function(node, docs)
    local best
    for _, v in ipairs(numbers(node.reader, docs)) do
      if best == nil or pick(v, best) then best = v end
    end
    return single(node.reader, best), best
  end
end
metrics.min = extreme(function(a, b) return a < b end)
metrics.max = extreme(function(a, b) return a > b end)

metrics.sum = function(node, docs)
  local s = 0
  for _, v in ipairs(numbers(node.reader, docs)) do s = s + v end
  return single(node.reader, s), s
end

metrics.avg = function(node, docs)
  local s, n = 0, 0
  for _, v in ipairs(numbers(node.reader, docs)) do s, n = s + v, n + 1 end
  local avg = n > 0 and s / n or nil
  return single(node.reader, avg), avg
end

metrics.value_count = function(node, docs)
  local n = #numbers(node.reader, docs)
  local r = obj()
  put(r, "value", n)
  return r, n
end

metrics.cardinality = function(node, docs)
  local seen, n = {}, 0
  for _, v in ipairs(numbers(node.reader, docs)) do
    if not seen[v] then seen[v], n = true, n + 1 end
  end
  local r = obj()
  put(r, "value", n)
  return r, n
end

metrics.stats = function(node, docs)
  local list = numbers(node.reader, docs)
  local lo, hi, s = nil, nil, 0
  for _, v in ipairs(list) do
    if lo == nil or v < lo then lo = v end
    if hi == nil or v > hi then hi = v end
    s = s + v
  end
  local n = #list
  local avg = n > 0 and s / n or nil
  local r = obj()
  put(r, "count", n)
  put(r, "min", lo == nil and null or lo)
  put(r, "max", hi == nil and null or hi)
  put(r, "avg", avg == nil and null or avg)
  put(r, "sum", s)
  if n > 0 and node.reader.kind == "date" then
    put(r, "min_as_string", as_string(node.reader, lo))
    put(r, "max_as_string", as_string(node.reader, hi))
    put(r, "avg_as_string", as_string(node.reader, avg))
    put(r, "sum_as_string", as_string(node.reader, s))
  end
  return r, { count = n, min = lo, max = hi, avg = avg, sum = s }
end

metrics.top_hits = function(node, docs)
  local list = {}
  for i, hit in ipairs(docs) do list[i] = hit end
  local sorter = node.sorter
  if sorter then table.sort(list, sorter.compare) end
  local hits = out.list()
  for i = node.from + 1, math.min(node.from + node.size, #list) do
    local hit = list[i]
    local h = obj()
    put(h, "_index", hit._index)
    put(h, "_id", hit._id)
    put(h, "_score", sorter and null or 1.0)
    if hit._routing then put(h, "_routing", hit._routing) end
    if node.source ~= false then
      local src = query.source_filter(hit._source, node.source)
      if src ~= nil then put(h, "_source", src) end
    end
    if sorter then put(h, "sort", sorter.values(hit)) end
    hits[#hits + 1] = h
  end
  local total = obj()
  put(total, "value", #list)
  put(total, "relation", "eq")
  local inner = obj()
  put(inner, "total", total)
  put(inner, "max_score", (sorter or #list == 0) and null or 1.0)
  put(inner, "hits", hits)
  local r = obj()
  put(r, "hits", inner)
  return r
end

------------------------------------------------------------------------
-- parsing

local METRIC_KEYS = { field = true, missing = true, format = true, precision_threshold = true,
  execution_hint = true, value_type = true }

local parse_aggs

local TOP_HITS_KEYS = { size = true, from = true, sort = true, _source = true, track_scores = true,
  version = true, seq_no_primary_term = true }

local function parse_metric(agg_type, body, ctx)
  local node = { type = agg_type, metric = true }
  if agg_type == "top_hits" then
    local e = check_keys(agg_type, body, TOP_HITS_KEYS)
    if e then return nil, e end
    node.size = tonumber(body.size) or 3
    node.from = tonumber(body.from) or 0
    node.source = body._source
    if body.sort ~= nil then
      local s, err = ctx.sorter(body.sort)
      if not s then return nil, err end
      node.sorter = s
    end
    return node
  end
  local e = check_keys(agg_type, body, METRIC_KEYS)
  if e then return nil, e end
  local need_numeric = agg_type ~= "value_count" and agg_type ~= "cardinality"
  local reader, err = field_reader(ctx, body, agg_type, need_numeric)
  if not reader then return nil, err end
  node.reader = reader
  return node
end

local VALID_NAME = "^[^%[%]>]+$"

local function parse_one(name, def, ctx)
  if type(name) ~= "string" or not name:find(VALID_NAME) then
    return nil, aerr("Invalid aggregation name [" .. tostring(name)
      .. "]. Aggregation names can contain any character except '[', ']', and '>'", "parsing_exception")
  end
  if type(def) ~= "table" or def == null or json.is_array(def) then
    return nil, aerr("Expected [START_OBJECT] under [" .. name .. "], but got a [VALUE] in [" .. name .. "]",
      "parsing_exception")
  end
  local agg_type, body, subs_spec, meta
  for k, v in pairs(def) do
    if k == "aggs" or k == "aggregations" then
      if subs_spec ~= nil then
        return nil, aerr("Found two sub aggregation definitions under [" .. name .. "]", "parsing_exception")
      end
      subs_spec = v
    elseif k == "meta" then
      meta = v
    elseif agg_type then
      return nil, aerr("Found two aggregation type definitions in [" .. name .. "]: [" .. agg_type .. "] and ["
        .. k .. "]", "parsing_exception")
    else
      agg_type, body = k, v
    end
  end
  if not agg_type then
    return nil, aerr("Missing definition for aggregation [" .. name .. "]", "parsing_exception")
  end
  local node, err
  if metrics[agg_type] then
    node, err = parse_metric(agg_type, body, ctx)
  elseif buckets.parsers[agg_type] then
    node, err = buckets.parsers[agg_type](body, ctx, agg_type)
  else
    return nil, aerr("Unknown aggregation type [" .. tostring(agg_type) .. "]", "parsing_exception")
  end
  if not node then return nil, err end
  node.name, node.type, node.meta = name, agg_type, meta
  node.key = ctx.typed_keys and (M.typed_name(node) .. "#" .. name) or name
  if subs_spec ~= nil then
    if node.metric then
      return nil, aerr("Aggregator [" .. name .. "] of type [" .. agg_type .. "] cannot accept sub-aggregations",
        "aggregation_initialization_exception")
    end
    node.subs, err = parse_aggs(subs_spec, ctx)
    if not node.subs then return nil, err end
  end
  if node.validate then
    err = node.validate(node.order, node)
    if err then return nil, err end
  end
  return node
end

parse_aggs = function(spec, ctx)
  if type(spec) ~= "table" or spec == null or json.is_array(spec) then
    return nil, aerr("Unexpected token in [aggs]: expected an object", "parsing_exception")
  end
  local names = {}
  for name in pairs(spec) do names[#names + 1] = tostring(name) end
  table.sort(names)
  local list = {}
  for _, name in ipairs(names) do
    local node, err = parse_one(name, spec[name], ctx)
    if not node then return nil, err end
    list[#list + 1] = node
  end
  return list
end

function M.parse(spec, ctx)
  return parse_aggs(spec, ctx)
end

-- the type prefix ES writes with ?typed_keys=true: terms say what their keys are
function M.typed_name(node)
  if node.type ~= "terms" then return node.type end
  local kind = node.reader.kind
  if kind == "string" then return "sterms" end
  if kind == nil then return "umterms" end
  if kind == "number" and not node.reader.integral then return "dterms" end
  return "lterms"
end

------------------------------------------------------------------------
-- running

-- runs a list of aggregations over docs: the result object, and each
-- metric's plain value by name (for bucket ordering)
local function run_list(list, docs, into)
  local r = into or obj()
  local values = {}
  for _, node in ipairs(list) do
    local res, value
    if node.metric then
      res, value = metrics[node.type](node, docs)
    else
      res = buckets.run(node, docs, run_list)
    end
    if node.meta ~= nil then
      local wrapped = obj()
      put(wrapped, "meta", node.meta)
      for i = 1, res.n do put(wrapped, res.k[i], res.v[i]) end
      res = wrapped
    end
    put(r, node.key, res)
    values[node.name] = value
  end
  return r, values
end

-- run(list, docs) -> result | nil, err (too many buckets)
function M.run(list, docs)
  local ok, res = pcall(run_list, list, docs)
  if ok then return res end
  if type(res) == "table" and res.agg_error then return nil, res.agg_error end
  error(res, 0)
end

M.encode = out.encode

return M
