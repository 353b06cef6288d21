-- Bucket aggregations: terms, date_histogram, histogram, range, date_range,
-- filter, filters, missing (and composite, from espipe.server.agg_composite).
--   parsers[type](body, ctx, type) -> node | nil, err
--   run(node, docs, run_list) -> result   (run_list runs sub-aggregations
--     into a bucket: run_list(subs, docs, bucket) -> bucket, metric values)
local json = require("espipe.server.json")
local date_math = require("espipe.server.date_math")
local dates = require("espipe.server.date_format")
local fields = require("espipe.server.agg_fields")
local out = require("espipe.server.agg_output")

local M = {}

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local floor = math.floor
local null = json.null
local obj, put = out.obj, out.put
local aerr, check_keys = fields.error, fields.check_keys

local function set(list)
  local s = {}
  for _, k in ipairs(list) do s[k] = true end
  return s
end

-- options checked, then the field's reader
local function checked_reader(body, ctx, t, keys, need_numeric, default_kind)
  local e = check_keys(t, body, keys)
  if e then return nil, e end
  return fields.reader(ctx, body, t, need_numeric, default_kind)
end

-- a date field's reader and the time_zone's offset
local function date_reader(body, ctx, t, keys)
  local reader, err = checked_reader(body, ctx, t, keys, true, "date")
  if not reader then return nil, err end
  local off
  off, err = dates.zone(body.time_zone)
  if not off then return nil, aerr(err, "illegal_argument_exception") end
  return reader, off
end

local parsers = {}
M.parsers = parsers
local runners = {}

-- docs grouped by a key function (a doc lands once in each of its keys);
-- id_of(key) names a key that is a table (a composite tuple)
local function group(docs, keys_of, id_of)
  local by, order = {}, {}
  for _, hit in ipairs(docs) do
    local seen = {}
    for _, k in ipairs(keys_of(hit)) do
      local id = id_of and id_of(k) or k
      if not seen[id] then
        seen[id] = true
        local b = by[id]
        if not b then
          b = { key = k, docs = {} }
          by[id] = b
          order[#order + 1] = b
        end
        b.docs[#b.docs + 1] = hit
      end
    end
  end
  return by, order
end

-- the bucket's own fields, then its sub-aggregations
local function finish(node, b, run_list, head)
  local r = head or obj()
  put(r, "doc_count", #b.docs)
  local values
  if node.subs then r, values = run_list(node.subs, b.docs, r) end
  b.values = values or {}
  return r
end

------------------------------------------------------------------------
-- order: { { key = "_count"|"_key"|"<agg>[.<metric>]", desc = bool }, ... }

local function parse_order(spec, default)
  if spec == nil then return default end
  local list = {}
  local items = (type(spec) == "table" and spec[1] ~= nil) and spec or { spec }
  for _, item in ipairs(items) do
    if type(item) ~= "table" then return nil, aerr("[order] must be an object or an array of objects") end
    for k, dir in pairs(item) do
      if dir ~= "asc" and dir ~= "desc" then
        return nil, aerr("Unknown order direction [" .. tostring(dir) .. "]")
      end
      list[#list + 1] = { key = (k == "_term") and "_key" or k, desc = dir == "desc" }
    end
  end
  return list
end

local function cmp(a, b)
  if a == b then return 0 end
  if a == nil then return 1 end
  if b == nil then return -1 end
  if type(a) ~= type(b) then a, b = tostring(a), tostring(b) end
  return a < b and -1 or 1
end

local function order_value(b, key)
  if key == "_count" then return #b.docs end
  if key == "_key" then return b.key end
  local name, prop = key:match("^([^.]+)%.?(.*)$")
  local v = b.values[name]
  if type(v) == "table" then v = v[prop ~= "" and prop or "value"] end
  return v
end

local function sort_buckets(list, order)
  table.sort(list, function(a, b)
    for _, o in ipairs(order) do
      local c = cmp(order_value(a, o.key), order_value(b, o.key))
      if c ~= 0 then
        if o.desc then return c > 0 end
        return c < 0
      end
    end
    return cmp(a.key, b.key) < 0
  end)
end

-- ES's search.max_buckets: a histogram over a wide range with a small
-- interval is refused, not built (memory bounded by it, not by the range)
M.MAX_BUCKETS = 65536
local function too_many(n)
  error({ agg_error = aerr("Trying to create too many buckets. Must be less than or equal to: ["
    .. M.MAX_BUCKETS .. "] but was [" .. n .. "]. This limit can be set by changing the [search.max_buckets] "
    .. "cluster level setting.", "too_many_buckets_exception") }, 0)
end

local function buckets_of(bl)
  return put(obj(), "buckets", bl)
end

-- the buckets with at least min_doc_count documents, in the node's order
local function kept_sorted(node, list)
  local kept = {}
  for _, b in ipairs(list) do
    if #b.docs >= node.min_doc_count then kept[#kept + 1] = b end
  end
  sort_buckets(kept, node.order)
  return kept
end

local function check_order_paths(order, node)
  for _, o in ipairs(order) do
    if o.key ~= "_count" and o.key ~= "_key" then
      local name = o.key:match("^([^.]+)")
      local found = false
      for _, s in ipairs(node.subs or {}) do if s.name == name then found = s.metric end end
      if not found then
        return aerr("Invalid aggregator order path [" .. o.key .. "]. Unknown aggregation [" .. name .. "]",
          "aggregation_execution_exception")
      end
    end
  end
  return nil
end

------------------------------------------------------------------------
-- terms

local TERMS_KEYS = set{ "field", "size", "shard_size", "order", "missing", "min_doc_count",
  "shard_min_doc_count", "show_term_doc_count_error", "execution_hint", "collect_mode", "value_type",
  "format" }

parsers.terms = function(body, ctx, t)
  local reader, err = checked_reader(body, ctx, t, TERMS_KEYS, false)
  if not reader then return nil, err end
  local size
  size, err = fields.size(body, t)
  if not size then return nil, err end
  local order
  order, err = parse_order(body.order, { { key = "_count", desc = true } })
  if not order then return nil, err end
  return { reader = reader, size = size, order = order, min_doc_count = tonumber(body.min_doc_count) or 1,
           all_docs = ctx.all_docs, validate = check_order_paths }
end

runners.terms = function(node, docs, run_list)
  local by, list = group(docs, node.reader.values)
  if node.min_doc_count == 0 and node.all_docs then
    for _, hit in ipairs(node.all_docs()) do
      for _, k in ipairs(node.reader.values(hit)) do
        if not by[k] then
          by[k] = { key = k, docs = {} }
          list[#list + 1] = by[k]
        end
      end
    end
  end
  local results = {}
  for _, b in ipairs(list) do
    local head = obj()
    put(head, "key", b.key)
    local s = fields.as_string(node.reader, b.key)
    if s then put(head, "key_as_string", s) end
    results[b] = finish(node, b, run_list, head)
  end
  local kept = kept_sorted(node, list)
  local bl, other = out.list(), 0
  for i, b in ipairs(kept) do
    if i <= node.size then bl[i] = results[b] else other = other + #b.docs end
  end
  local r = obj()
  put(r, "doc_count_error_upper_bound", 0)
  put(r, "sum_other_doc_count", other)
  put(r, "buckets", bl)
  return r
end

------------------------------------------------------------------------
-- histogram and date_histogram

local CALENDAR = { minute = "minute", ["1m"] = "minute", hour = "hour", ["1h"] = "hour", day = "day",
  ["1d"] = "day", week = "week", ["1w"] = "week", month = "month", ["1M"] = "month", quarter = "quarter",
  ["1q"] = "quarter", year = "year", ["1y"] = "year" }
local FIXED_UNITS = { ms = 1, s = 1000, m = 60000, h = 3600000, d = 86400000 }

local function fixed_ms(s)
  local n, u = tostring(s):match("^(%d+)(%a+)$")
  local f = u and FIXED_UNITS[u]
  if not f or tonumber(n) == 0 then return nil end
  return tonumber(n) * f
end

local function signed_ms(v)
  if v == nil then return 0 end
  if type(v) == "number" then return v end
  local sign, rest = tostring(v):match("^([+-]?)(.+)$")
  local ms = fixed_ms(rest)
  if not ms then return nil end
  return sign == "-" and -ms or ms
end

local HISTO_KEYS = set{ "field", "interval", "offset", "min_doc_count", "extended_bounds",
  "missing", "keyed", "order", "format" }
local DATE_HISTO_KEYS = set{ "field", "calendar_interval", "fixed_interval", "offset", "min_doc_count",
  "extended_bounds", "missing", "keyed", "order", "format", "time_zone" }

local function parse_histo_common(node, body)
  local order, err = parse_order(body.order, { { key = "_key", desc = false } })
  if not order then return nil, err end
  node.order, node.keyed = order, body.keyed == true
  node.min_doc_count = tonumber(body.min_doc_count) or 0
  node.validate = check_order_paths
  return node
end

parsers.histogram = function(body, ctx, t)
  local reader, err = checked_reader(body, ctx, t, HISTO_KEYS, true, "number")
  if not reader then return nil, err end
  local interval = tonumber(body.interval)
  if not interval or interval <= 0 then
    return nil, aerr("[interval] must be >0 for histogram aggregation [" .. tostring(body.field) .. "]",
      "illegal_argument_exception")
  end
  local offset = tonumber(body.offset) or 0
  local node = { reader = reader, offset = offset }
  node.key_of = function(v) return floor((v - offset) / interval) * interval + offset end
  node.next_key = function(k) return floor((k - offset) / interval + 1.5) * interval + offset end
  local eb = body.extended_bounds
  if type(eb) == "table" then node.bounds = { tonumber(eb.min), tonumber(eb.max) } end
  return parse_histo_common(node, body)
end

parsers.date_histogram = function(body, ctx, t)
  local reader, off = date_reader(body, ctx, t, DATE_HISTO_KEYS)
  if not reader then return nil, off end
  local offset = signed_ms(body.offset)
  if not offset then
    return nil, aerr("failed to parse setting [date_histogram.offset] with value [" .. tostring(body.offset)
      .. "] as a time value: unit is missing or unrecognized", "illegal_argument_exception")
  end
  local node = { reader = reader, zone = off }
  if body.calendar_interval ~= nil and body.fixed_interval ~= nil then
    return nil, aerr("Cannot use [fixed_interval] with [calendar_interval] configuration option.",
      "illegal_argument_exception")
  elseif body.calendar_interval ~= nil then
    local unit = CALENDAR[tostring(body.calendar_interval)]
    if not unit then
      return nil, aerr("The supplied interval [" .. tostring(body.calendar_interval)
        .. "] could not be parsed as a calendar interval.", "illegal_argument_exception")
    end
    node.key_of = function(v) return dates.round(v - offset, unit, off) + offset end
    node.next_key = function(k) return dates.next_unit(k - offset, unit, off) + offset end
  elseif body.fixed_interval ~= nil then
    local ms = fixed_ms(body.fixed_interval)
    if not ms then
      return nil, aerr("failed to parse setting [date_histogram.fixedInterval] with value ["
        .. tostring(body.fixed_interval) .. "] as a time value: unit is missing or unrecognized",
        "illegal_argument_exception")
    end
    node.key_of = function(v) return floor((v + off - offset) / ms) * ms - off + offset end
    node.next_key = function(k) return k + ms end
  else
    return nil, aerr("Invalid interval specified, must be non-null and non-empty", "illegal_argument_exception")
  end
  local eb = body.extended_bounds
  if type(eb) == "table" then
    node.bounds = { eb.min ~= nil and date_math.parse_date(eb.min) or nil,
                    eb.max ~= nil and date_math.parse_date(eb.max) or nil }
  end
  node.dated = true
  return parse_histo_common(node, body)
end

local function histo_run(node, docs, run_list)
  local key_of, values = node.key_of, node.reader.values
  local by, list = group(docs, function(hit)
    local keys = {}
    for i, v in ipairs(values(hit)) do keys[i] = key_of(v) end
    return keys
  end)
  if node.min_doc_count == 0 then
    local lo, hi
    for _, b in ipairs(list) do
      if lo == nil or b.key < lo then lo = b.key end
      if hi == nil or b.key > hi then hi = b.key end
    end
    if node.bounds then
      local bmin, bmax = node.bounds[1], node.bounds[2]
      if bmin then bmin = key_of(bmin); if lo == nil or bmin < lo then lo = bmin end end
      if bmax then bmax = key_of(bmax); if hi == nil or bmax > hi then hi = bmax end end
    end
    local k = lo
    while k ~= nil and hi ~= nil and k <= hi do
      if not by[k] then
        by[k] = { key = k, docs = {} }
        list[#list + 1] = by[k]
        if #list > M.MAX_BUCKETS then too_many(#list) end
      end
      k = node.next_key(k)
    end
  end
  local results = {}
  for _, b in ipairs(list) do
    local head = obj()
    local s = node.dated and fields.as_string(node.reader.kind == "date" and node.reader
      or { kind = "date", format = node.reader.format }, b.key, node.zone) or nil
    if s then put(head, "key_as_string", s) end
    put(head, "key", b.key)
    results[b] = finish(node, b, run_list, head)
  end
  local kept = kept_sorted(node, list)
  local bl
  if node.keyed then
    bl = obj()
    for _, b in ipairs(kept) do
      put(bl, out.get(results[b], "key_as_string") or json.encode(b.key), results[b])
    end
  else
    bl = out.list()
    for i, b in ipairs(kept) do bl[i] = results[b] end
  end
  return buckets_of(bl)
end
runners.histogram = histo_run
runners.date_histogram = histo_run

------------------------------------------------------------------------
-- range and date_range

-- Java's Double.toString for the numbers ES writes in range keys
local function double_text(x)
  if x == floor(x) and x > -1e15 and x < 1e15 then return string.format("%d.0", x) end
  return json.encode_number(x)
end

local RANGE_KEYS = set{ "field", "ranges", "keyed", "format", "missing" }
local DATE_RANGE_KEYS = set{ "field", "ranges", "keyed", "format", "missing", "time_zone" }
local RANGE_ITEM_KEYS = set{ "from", "to", "key" }

local function parse_ranges(body, t, bound)
  if type(body.ranges) ~= "table" or #body.ranges == 0 then
    return nil, aerr("No [ranges] specified for the [" .. t .. "] aggregation", "illegal_argument_exception")
  end
  local ranges = {}
  for i, r in ipairs(body.ranges) do
    local e = check_keys("range", r, RANGE_ITEM_KEYS)
    if e then return nil, e end
    local from, to = r.from, r.to
    if from == null then from = nil end
    if to == null then to = nil end
    local f, tt = from ~= nil and bound(from) or nil, to ~= nil and bound(to) or nil
    if (from ~= nil and f == nil) or (to ~= nil and tt == nil) then
      return nil, aerr("[" .. t .. "] cannot parse range bound [" .. tostring(f == nil and from or to) .. "]",
        "parse_exception")
    end
    ranges[i] = { from = f, to = tt, key = r.key, n = i }
  end
  table.sort(ranges, function(a, b)
    local af, bf = a.from or -math.huge, b.from or -math.huge
    if af ~= bf then return af < bf end
    local at, bt = a.to or math.huge, b.to or math.huge
    if at ~= bt then return at < bt end
    return a.n < b.n
  end)
  return ranges
end

parsers.range = function(body, ctx, t)
  local reader, err = checked_reader(body, ctx, t, RANGE_KEYS, true, "number")
  if not reader then return nil, err end
  local ranges
  ranges, err = parse_ranges(body, t, tonumber)
  if not ranges then return nil, err end
  for _, r in ipairs(ranges) do
    r.key = r.key or ((r.from and double_text(r.from) or "*") .. "-" .. (r.to and double_text(r.to) or "*"))
  end
  return { reader = reader, ranges = ranges, keyed = body.keyed == true }
end

parsers.date_range = function(body, ctx, t)
  local reader, off = date_reader(body, ctx, t, DATE_RANGE_KEYS)
  if not reader then return nil, off end
  local err
  local now = floor(os.time() * 1000)
  local ranges
  ranges, err = parse_ranges(body, t, function(v) return date_math.parse_date(v, now) end)
  if not ranges then return nil, err end
  local fmt = { kind = "date", format = reader.format }
  for _, r in ipairs(ranges) do
    r.from_s = r.from and fields.as_string(fmt, r.from, off)
    r.to_s = r.to and fields.as_string(fmt, r.to, off)
    r.key = r.key or ((r.from_s or "*") .. "-" .. (r.to_s or "*"))
  end
  return { reader = reader, ranges = ranges, keyed = body.keyed == true, dated = true }
end

local function range_run(node, docs, run_list)
  local values = node.reader.values
  local bl = node.keyed and obj() or out.list()
  for _, r in ipairs(node.ranges) do
    local b = { docs = {} }
    for _, hit in ipairs(docs) do
      for _, v in ipairs(values(hit)) do
        if (r.from == nil or v >= r.from) and (r.to == nil or v < r.to) then
          b.docs[#b.docs + 1] = hit
          break
        end
      end
    end
    local head = obj()
    if not node.keyed then put(head, "key", r.key) end
    if r.from then
      put(head, "from", r.from)
      if node.dated then put(head, "from_as_string", r.from_s) end
    end
    if r.to then
      put(head, "to", r.to)
      if node.dated then put(head, "to_as_string", r.to_s) end
    end
    local res = finish(node, b, run_list, head)
    if node.keyed then put(bl, r.key, res) else bl[#bl + 1] = res end
  end
  return buckets_of(bl)
end
runners.range = range_run
runners.date_range = range_run

------------------------------------------------------------------------
-- filter, filters, missing

parsers.filter = function(body, ctx)
  local m, err = ctx.compile(body)
  if not m then return nil, err end
  return { matcher = m, hit_of = fields.hit_of(ctx) }
end

local function matching(node, m, docs)
  local list, hit_of = {}, node.hit_of
  for _, doc in ipairs(docs) do
    local hit = hit_of(doc)
    if m(hit._source or {}, hit) then list[#list + 1] = doc end
  end
  return list
end

runners.filter = function(node, docs, run_list)
  return finish(node, { docs = matching(node, node.matcher, docs) }, run_list)
end

local FILTERS_KEYS = set{ "filters", "other_bucket", "other_bucket_key", "keyed" }

parsers.filters = function(body, ctx, t)
  local e = check_keys(t, body, FILTERS_KEYS)
  if e then return nil, e end
  local spec = body.filters
  if type(spec) ~= "table" or spec == null then
    return nil, aerr("[filters] cannot be empty.", "illegal_argument_exception")
  end
  local list = {}
  local anonymous = json.is_array(spec) or spec[1] ~= nil
  if anonymous then
    for i, q in ipairs(spec) do list[i] = { q = q } end
  else
    for k, q in pairs(spec) do list[#list + 1] = { key = k, q = q } end
    table.sort(list, function(a, b) return a.key < b.key end)
  end
  for _, f in ipairs(list) do
    local m, err = ctx.compile(f.q)
    if not m then return nil, err end
    f.matcher = m
  end
  local other_key = body.other_bucket_key
  local node = { filters = list, keyed = not anonymous and body.keyed ~= false, hit_of = fields.hit_of(ctx),
                 other = body.other_bucket == true or other_key ~= nil, other_key = other_key or "_other_" }
  return node
end

runners.filters = function(node, docs, run_list)
  local bl = node.keyed and obj() or out.list()
  local hit_any = {}
  for _, f in ipairs(node.filters) do
    local b = { docs = matching(node, f.matcher, docs) }
    for _, hit in ipairs(b.docs) do hit_any[hit] = true end
    local res = finish(node, b, run_list)
    if node.keyed then put(bl, f.key, res) else bl[#bl + 1] = res end
  end
  if node.other then
    local rest = {}
    for _, hit in ipairs(docs) do if not hit_any[hit] then rest[#rest + 1] = hit end end
    local res = finish(node, { docs = rest }, run_list)
    if node.keyed then put(bl, node.other_key, res) else bl[#bl + 1] = res end
  end
  return buckets_of(bl)
end

parsers.missing = function(body, ctx, t)
  local e = check_keys(t, body, set{ "field" })
  if e then return nil, e end
  local reader, err = fields.reader(ctx, { field = body.field }, t, false)
  if not reader then return nil, err end
  return { reader = reader }
end

runners.missing = function(node, docs, run_list)
  local list = {}
  for _, hit in ipairs(docs) do
    if #node.reader.values(hit) == 0 then list[#list + 1] = hit end
  end
  return finish(node, { docs = list }, run_list)
end

-- composite (its own module)
local composite = require("espipe.server.agg_composite")
parsers.composite = function(body, ctx) return composite.parse(body, ctx, parsers) end
runners.composite = function(node, docs, run_list)
  return composite.run(node, docs, function(bucket_docs, head)
    return finish(node, { docs = bucket_docs }, run_list, head)
  end, group)
end

function M.run(node, docs, run_list)
  return runners[node.type](node, docs, run_list)
end

return M
