-- Aggregations over the documents a search matched, answered in
-- Elasticsearch's response shapes (keys in ES's order).
--
--   parse(spec, ctx) -> aggs | nil, err      err = { status = 400, type =, reason = }
--     ctx = { resolve = fn(field) -> type, path,   (espipe.server.doc_fields.resolve_field over the mappings)
--             compile = fn(query) -> matcher | nil, err,
--             sorter = fn(sort_spec) -> sorter | nil, err,
--             all_docs = fn() -> docs,              (terms min_doc_count 0)
--             hit = fn(doc) -> hit,                 (a hit from a document handle;
--                                                    without it, docs are hits)
--             typed_keys = bool }                   (names as "sterms#name")
--   run(aggs, docs) -> result | nil, err   docs = document handles (hit: _id,
--     _index, _source...). Nothing is kept per document but its handle in
--     the buckets it falls in; top_hits keeps from+size hits.
--   encode(result) -> JSON text of the "aggregations" object
--
-- Bucket aggregations: terms, date_histogram, histogram, range, date_range,
-- filter, filters, missing; metrics: min, max, sum, avg, stats, value_count,
-- cardinality (exact: every distinct value is counted), top_hits. Any other
-- type is a 400 naming it; so is an option outside this subset.
local json = require("espipe.server.json")
local source_filter = require("espipe.server.source_filter")
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

-- calls fn(v) for each value of the field in docs (nothing kept per document)
local function each_value(reader, docs, fn)
  local values = reader.values
  for _, doc in ipairs(docs) do
    for _, v in ipairs(values(doc)) do fn(v) end
  end
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

-- count, sum, min, max of a field's values
local function summary(reader, docs)
  local st = { count = 0, sum = 0 }
  each_value(reader, docs, function(v)
    st.count, st.sum = st.count + 1, st.sum + v
    if st.min == nil or v < st.min then st.min = v end
    if st.max == nil or v > st.max then st.max = v end
  end)
  if st.count > 0 then st.avg = st.sum / st.count end
  return st
end

local metrics = {}

for _, k in ipairs({ "min", "max", "sum", "avg" }) do
  metrics[k] = function(node, docs)
    local st = summary(node.reader, docs)
    return single(node.reader, st[k]), st[k]
  end
end

metrics.value_count = function(node, docs)
  local n = 0
  each_value(node.reader, docs, function() n = n + 1 end)
  return put(obj(), "value", n), n
end

metrics.cardinality = function(node, docs)
  local seen, n = {}, 0
  each_value(node.reader, docs, function(v)
    if not seen[v] then seen[v], n = true, n + 1 end
  end)
  return put(obj(), "value", n), n
end

metrics.stats = function(node, docs)
  local st = summary(node.reader, docs)
  local r = obj()
  put(r, "count", st.count)
  put(r, "min", st.min == nil and null or st.min)
  put(r, "max", st.max == nil and null or st.max)
  put(r, "avg", st.avg == nil and null or st.avg)
  put(r, "sum", st.sum)
  if st.count > 0 and node.reader.kind == "date" then
    for _, k in ipairs({ "min", "max", "avg", "sum" }) do put(r, k .. "_as_string", as_string(node.reader, st[k])) end
  end
  return r, st
end

-- the first from+size hits in the sort's order (or the docs' order), kept
-- as they come: memory bounded by from+size, not by the bucket
local function best_hits(node, docs)
  local keep, sorter, hit_of = node.from + node.size, node.sorter, node.hit_of
  local best = {}
  for _, doc in ipairs(docs) do
    if not sorter then
      if #best >= keep then break end
      best[#best + 1] = hit_of(doc)
    else
      local hit = hit_of(doc)
      local i = #best
      if i < keep or sorter.compare(hit, best[i]) then
        while i > 0 and sorter.compare(hit, best[i]) do best[i + 1] = best[i]; i = i - 1 end
        best[i + 1] = hit
        best[keep + 1] = nil
      end
    end
  end
  return best
end

metrics.top_hits = function(node, docs)
  local list = best_hits(node, docs)
  local sorter = node.sorter
  local hits = out.list()
  for i = node.from + 1, math.min(node.from + node.size, #list) do
    local hit = list[i]
    local h = obj()
    put(h, "_index", hit._index)
    put(h, "_id", hit._id)
    put(h, "_score", sorter and null or 1.0)
    if hit._routing then put(h, "_routing", hit._routing) end
    if node.source ~= false then
      local src = source_filter.filter(hit._source, node.source)
      if src ~= nil then put(h, "_source", src) end
    end
    if sorter then put(h, "sort", sorter.output(sorter.values(hit))) end
    hits[#hits + 1] = h
  end
  local total = obj()
  put(total, "value", #docs)
  put(total, "relation", "eq")
  local inner = obj()
  put(inner, "total", total)
  put(inner, "max_score", (sorter or #docs == 0) and null or 1.0)
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
    node.hit_of = fields.hit_of(ctx)
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
