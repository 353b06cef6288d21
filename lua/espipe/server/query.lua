-- The dev server's query DSL subset, sorting, _source filtering, time
-- values and slicing - Elasticsearch semantics on decoded Lua documents.
--
-- compile(query, mappings) -> matcher(source, meta) -> bool | nil, err
--   meta = { _id =, _index =, _routing = }; mappings is ES-shaped
--   ({ properties = {...} }) or nil. err = { status = 400, type =, reason = }.
--   Queries: match_all, match_none, term, terms, ids, range, exists, prefix,
--   wildcard, match, bool, constant_score.
--   Analysis is a small stand-in for ES's standard analyzer: lowercase, split
--   on anything that is not an ASCII letter/digit or a non-ASCII byte. A term
--   query on a text field matches one such token (the query value itself is
--   not analysed, as in ES); on keyword fields values compare whole.
--   Fields missing from the mappings are treated by the type of the value
--   found (strings then behave like ES's dynamic text + .keyword pair:
--   term/prefix match either the whole value or one token).
-- compile_sort(sort, mappings) -> { compare = fn(a, b), values = fn(hit),
--   after = fn(values, search_after) } | nil, err
--   hit = { _id =, _index =, _source =, _doc = int, _shard = int, _score = n }
-- source_filter(source, spec) -> filtered source | nil (spec false)
-- parse_time("1m") -> seconds | nil, err
-- parse_date(v) -> epoch millis | nil
-- slice_of(id, shard, max, shards[, id_hash]) -> slice number
local json = require("espipe.server.json")
local routing = require("espipe.server.routing")
local errors = require("espipe.client.errors")

local M = {}

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local floor = math.floor
local null = json.null

local function qerr(reason, typ)
  return errors.new{ kind = "query", status = 400, type = typ or "parsing_exception",
    reason = reason, message = reason }
end
M.error = qerr -- (reason[, type]) -> a 400 error, parsing_exception by default

local function is_array(t)
  local mt = getmetatable(t)
  if mt == json.array_mt then return true end
  if mt == json.object_mt then return false end
  return t[1] ~= nil
end

local function as_list(v)
  if type(v) == "table" and v ~= null and is_array(v) then return v end
  return { v }
end

------------------------------------------------------------------------
-- mappings and field values

-- path -> type (or nil), the path in _source (multi-fields live in their
-- parent), the field's mapping (or nil)
local function resolve_field(mappings, path)
  if type(mappings) ~= "table" or type(mappings.properties) ~= "table" then
    return nil, path
  end
  local props = mappings.properties
  local parts = {}
  for p in path:gmatch("[^.]+") do parts[#parts + 1] = p end
  local i = 1
  while i <= #parts do
    -- a property name may itself contain dots
    local def, j
    for k = #parts, i, -1 do
      local name = table.concat(parts, ".", i, k)
      if type(props) == "table" and type(props[name]) == "table" then def, j = props[name], k; break end
    end
    if not def then return nil, path end
    if j == #parts then return def.type or (def.properties and "object") or nil, path, def end
    if def.properties then
      props, i = def.properties, j + 1
    elseif type(def.fields) == "table" then
      local sub = table.concat(parts, ".", j + 1)
      local f = def.fields[sub]
      if type(f) == "table" then return f.type, table.concat(parts, ".", 1, j), f end
      return nil, path
    else
      return nil, path
    end
  end
  return nil, path
end
M.resolve_field = resolve_field

local function collect(node, parts, i, out)
  if node == nil or node == null then return end
  if type(node) == "table" and is_array(node) then
    for _, el in ipairs(node) do collect(el, parts, i, out) end
    return
  end
  if i > #parts then
    out[#out + 1] = node
    return
  end
  if type(node) ~= "table" then return end
  for j = i, #parts do
    local key = j == i and parts[i] or table.concat(parts, ".", i, j)
    local child = node[key]
    if child ~= nil then collect(child, parts, j + 1, out) end
  end
end

local function path_parts(path)
  local parts = {}
  for p in path:gmatch("[^.]+") do parts[#parts + 1] = p end
  return parts
end

-- all leaf values of a dotted path, arrays flattened
local function field_values(source, path, meta)
  if path == "_id" then return { meta and meta._id } end
  if path == "_index" then return { meta and meta._index } end
  if path == "_routing" then return { meta and meta._routing } end
  local out = {}
  if type(source) == "table" then collect(source, path_parts(path), 1, out) end
  return out
end
M.field_values = field_values

local function analyze(s)
  local tokens = {}
  for tok in s:lower():gmatch("[%w\128-\255]+") do tokens[#tokens + 1] = tok end
  return tokens
end
M.analyze = analyze

------------------------------------------------------------------------
-- dates and times

local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end
M.days_from_civil = days_from_civil

local UNIT_MS = { y = 365 * 86400000, M = 30 * 86400000, w = 7 * 86400000, d = 86400000,
  h = 3600000, H = 3600000, m = 60000, s = 1000 }

local function round_down(ms, unit)
  if unit == "d" or unit == "h" or unit == "H" or unit == "m" or unit == "s" or unit == "w" then
    local u = UNIT_MS[unit]
    if unit == "w" then -- weeks start on Monday; 1970-01-01 was a Thursday
      return floor((ms + 3 * 86400000) / u) * u - 3 * 86400000
    end
    return floor(ms / u) * u
  end
  local days = floor(ms / 86400000)
  -- civil from days (inverse of days_from_civil)
  local z = days + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  if unit == "M" then return days_from_civil(y, m, 1) * 86400000 end
  return days_from_civil(y, 1, 1) * 86400000
end

-- epoch millis of an ISO-8601 date/time string, a number, or "now[+-N<unit>][/unit]"
function M.parse_date(v, now_ms)
  if type(v) == "number" then return v end
  if type(v) ~= "string" then return nil end
  if v:find("^%-?%d+$") and #v > 4 then return tonumber(v) end
  if v:sub(1, 3) == "now" then
    local ms = now_ms or floor(os.time() * 1000)
    local rest = v:sub(4)
    while rest ~= "" do
      local sign, n, unit, r = rest:match("^([+-])(%d+)([yMwdhHms])(.*)$")
      if sign then
        ms = ms + (sign == "+" and 1 or -1) * tonumber(n) * UNIT_MS[unit]
        rest = r
      else
        local u, r2 = rest:match("^/([yMwdhHms])(.*)$")
        if not u then return nil end
        ms = round_down(ms, u)
        rest = r2
      end
    end
    return ms
  end
  local y, mo, d, rest = v:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then
    y, rest = v:match("^(%d%d%d%d)(.*)$")
    if not y or rest ~= "" then return nil end
    mo, d = "01", "01"
  end
  local ms = days_from_civil(tonumber(y), tonumber(mo), tonumber(d)) * 86400000
  if rest == "" then return ms end
  local hh, mi, tail = rest:match("^[T ](%d%d):(%d%d)(.*)$")
  if not hh then return nil end
  ms = ms + tonumber(hh) * 3600000 + tonumber(mi) * 60000
  local ss, t2 = tail:match("^:(%d%d)(.*)$")
  if ss then ms = ms + tonumber(ss) * 1000; tail = t2 end
  local frac, t3 = tail:match("^[.,](%d+)(.*)$")
  if frac then ms = ms + floor(tonumber("0." .. frac) * 1000 + 0.5); tail = t3 end
  if tail == "" or tail == "Z" then return ms end
  local zs, zh, zm = tail:match("^([+-])(%d%d):?(%d%d)$")
  if not zs then return nil end
  local off = (tonumber(zh) * 60 + tonumber(zm)) * 60000
  return zs == "+" and ms - off or ms + off
end
local parse_date = M.parse_date

local TIME_UNITS = { d = 86400, h = 3600, m = 60, s = 1, ms = 0.001, micros = 1e-6, nanos = 1e-9 }

function M.parse_time(s)
  if type(s) == "number" then s = tostring(s) end
  if type(s) ~= "string" then
    return nil, qerr("failed to parse time value [" .. tostring(s) .. "]", "illegal_argument_exception")
  end
  local n, unit = s:match("^%s*(%d+%.?%d*)%s*(%a+)%s*$")
  if s == "-1" or s == "0" then return tonumber(s) end
  local f = unit and TIME_UNITS[unit:lower()]
  if not f then
    return nil, qerr("failed to parse setting [time] with value [" .. s
      .. "] as a time value: unit is missing or unrecognized", "illegal_argument_exception")
  end
  return tonumber(n) * f
end

------------------------------------------------------------------------
-- value comparison per field type

local NUMERIC = { long = true, integer = true, short = true, byte = true, double = true,
  float = true, half_float = true, scaled_float = true, unsigned_long = true }
M.NUMERIC = NUMERIC

local function to_bool(v)
  if v == true or v == "true" then return true end
  if v == false or v == "false" or v == "" then return false end
  return nil
end

-- normalise a value of a field of type ty for comparisons: numbers, millis,
-- booleans or strings; nil when it cannot be read as that type
local function norm(ty, v)
  if ty and NUMERIC[ty] then return tonumber(v) end
  if ty == "date" or ty == "date_nanos" then return parse_date(v) end
  if ty == "boolean" then return to_bool(v) end
  if type(v) == "number" or type(v) == "boolean" then return v end
  if type(v) == "string" then return v end
  return nil
end

-- does a stored value v (of field type ty) equal the query term q?
local function term_equals(ty, v, q, ci)
  if ty == "text" or ty == "match_only_text" then
    if type(v) ~= "string" then return false end
    local qs = tostring(q)
    for _, tok in ipairs(analyze(v)) do
      if tok == qs or (ci and tok == qs:lower()) then return true end
    end
    return false
  end
  if ty ~= nil then
    local a, b = norm(ty, v), norm(ty, q)
    if a == nil or b == nil then return false end
    if ci and type(a) == "string" then return a:lower() == b:lower() end
    return a == b
  end
  -- unmapped: by the value's own type
  if type(v) == "number" then return v == tonumber(q) end
  if type(v) == "boolean" then return v == to_bool(q) end
  if type(v) == "string" then
    local qs = tostring(q)
    if v == qs or (ci and v:lower() == qs:lower()) then return true end
    return term_equals("text", v, q, ci)
  end
  return false
end

------------------------------------------------------------------------
-- query compilation

local compilers = {}

local function compile_query(q, mappings)
  if type(q) ~= "table" or q == null or is_array(q) then
    return nil, qerr("query malformed, must start with start_object")
  end
  local name, body = next(q)
  if name == nil then
    return nil, qerr("query malformed, empty clause found")
  end
  if next(q, name) ~= nil then
    local other = next(q, name)
    return nil, qerr("[" .. tostring(name) .. "] malformed query, expected [END_OBJECT] but found [FIELD_NAME]"
      .. " (also [" .. tostring(other) .. "])")
  end
  local c = compilers[name]
  if not c then return nil, qerr("unknown query [" .. tostring(name) .. "]") end
  return c(body, mappings, name)
end

-- {"<field>": value} or {"<field>": {"value"|"query": v, ...options}}
local function single_field(body, qname, value_key)
  if type(body) ~= "table" or is_array(body) then
    return nil, nil, qerr("[" .. qname .. "] query malformed, no start_object after query name")
  end
  local field, spec
  for k, v in pairs(body) do
    if k ~= "boost" and k ~= "_name" then
      if field then
        return nil, nil, qerr("[" .. qname .. "] query doesn't support multiple fields, found ["
          .. field .. "] and [" .. k .. "]")
      end
      field, spec = k, v
    end
  end
  if not field then
    return nil, nil, qerr("[" .. qname .. "] query malformed, no field")
  end
  if type(spec) == "table" and spec ~= null and not is_array(spec) then
    local v = spec[value_key or "value"]
    if v == nil then
      return nil, nil, qerr("[" .. qname .. "] query does not support [" .. tostring(next(spec) or "") .. "]")
    end
    return field, v, nil, spec
  end
  return field, spec, nil, {}
end

local function any_value(source, meta, path, pred)
  for _, v in ipairs(field_values(source, path, meta)) do
    if pred(v) then return true end
  end
  return false
end

compilers.match_all = function()
  return function() return true end
end

compilers.match_none = function()
  return function() return false end
end

compilers.term = function(body, mappings, qname)
  local field, value, err, opts = single_field(body, qname or "term")
  if err then return nil, err end
  if type(value) == "table" then
    return nil, qerr("[term] query does not support array of values", "parsing_exception")
  end
  local ty, path = resolve_field(mappings, field)
  local ci = opts.case_insensitive == true
  return function(source, meta)
    return any_value(source, meta, path, function(v) return term_equals(ty, v, value, ci) end)
  end
end

compilers.terms = function(body, mappings)
  if type(body) ~= "table" or is_array(body) then
    return nil, qerr("[terms] query malformed, no start_object after query name")
  end
  local field, values
  for k, v in pairs(body) do
    if k ~= "boost" and k ~= "_name" then
      if field then
        return nil, qerr("[terms] query does not support multiple fields")
      end
      field, values = k, v
    end
  end
  if not field or type(values) ~= "table" or not (is_array(values) or next(values) == nil) then
    return nil, qerr("[terms] query does not support [" .. tostring(field) .. "]")
  end
  local ty, path = resolve_field(mappings, field)
  return function(source, meta)
    return any_value(source, meta, path, function(v)
      for _, q in ipairs(values) do
        if term_equals(ty, v, q, false) then return true end
      end
      return false
    end)
  end
end

compilers.ids = function(body)
  if type(body) ~= "table" or type(body.values) ~= "table" then
    return nil, qerr("[ids] query malformed, no values")
  end
  local set = {}
  for _, id in ipairs(body.values) do set[tostring(id)] = true end
  return function(_, meta) return meta ~= nil and set[meta._id] == true end
end

compilers.exists = function(body, mappings)
  if type(body) ~= "table" or type(body.field) ~= "string" then
    return nil, qerr("[exists] must be provided with a [field]")
  end
  local _, path = resolve_field(mappings, body.field)
  return function(source, meta)
    for _, v in ipairs(field_values(source, path, meta)) do
      if v ~= nil and v ~= null then return true end
    end
    return false
  end
end

compilers.prefix = function(body, mappings)
  local field, value, err, opts = single_field(body, "prefix")
  if err then return nil, err end
  local ty, path = resolve_field(mappings, field)
  local p = tostring(value)
  local ci = opts.case_insensitive == true
  if ci then p = p:lower() end
  local function starts(s) if ci then s = s:lower() end return s:sub(1, #p) == p end
  return function(source, meta)
    return any_value(source, meta, path, function(v)
      if type(v) ~= "string" then return false end
      if ty ~= "text" and starts(v) then return true end
      if ty == nil or ty == "text" then
        for _, tok in ipairs(analyze(v)) do if starts(tok) then return true end end
      end
      return false
    end)
  end
end

compilers.wildcard = function(body, mappings)
  local field, value, err, opts = single_field(body, "wildcard")
  if err then return nil, err end
  if type(opts.wildcard) == "string" then value = opts.wildcard end
  local ty, path = resolve_field(mappings, field)
  local ci = opts.case_insensitive == true
  local pat = "^" .. tostring(value):gsub("[%^%$%(%)%%%.%[%]%+%-]", "%%%0")
    :gsub("%*", ".*"):gsub("%?", ".") .. "$"
  local function m(s) if ci then s = s:lower() end return s:find(ci and pat:lower() or pat) ~= nil end
  return function(source, meta)
    return any_value(source, meta, path, function(v)
      if type(v) ~= "string" then return false end
      if ty ~= "text" and m(v) then return true end
      if ty == nil or ty == "text" then
        for _, tok in ipairs(analyze(v)) do if m(tok) then return true end end
      end
      return false
    end)
  end
end

local RANGE_KEYS = { gt = true, gte = true, lt = true, lte = true, from = true, to = true,
  include_lower = true, include_upper = true, format = true, time_zone = true, boost = true,
  relation = true, _name = true }

compilers.range = function(body, mappings)
  if type(body) ~= "table" or is_array(body) then
    return nil, qerr("[range] query malformed, no start_object after query name")
  end
  local field, spec = next(body)
  if field == nil or type(spec) ~= "table" then
    return nil, qerr("[range] query malformed, no start_object after query name")
  end
  if next(body, field) ~= nil then
    return nil, qerr("[range] query doesn't support multiple fields, found [" .. field .. "] and ["
      .. tostring(next(body, field)) .. "]")
  end
  for k in pairs(spec) do
    if not RANGE_KEYS[k] then
      return nil, qerr("[range] query does not support [" .. tostring(k) .. "]")
    end
  end
  local ty, path = resolve_field(mappings, field)
  local lo, hi, lo_inc, hi_inc = spec.gte, spec.lte, true, true
  if spec.gt ~= nil then lo, lo_inc = spec.gt, false end
  if spec.lt ~= nil then hi, hi_inc = spec.lt, false end
  if lo == nil and spec.from ~= nil then lo, lo_inc = spec.from, spec.include_lower ~= false end
  if hi == nil and spec.to ~= nil then hi, hi_inc = spec.to, spec.include_upper ~= false end
  if lo == null then lo = nil end
  if hi == null then hi = nil end
  local kind -- how to compare: "number" | "date" | "string"
  if ty and NUMERIC[ty] then kind = "number"
  elseif ty == "date" or ty == "date_nanos" then kind = "date"
  elseif ty then kind = "string"
  elseif type(lo) == "number" or type(hi) == "number" then kind = "number"
  else kind = "auto" end
  local now = floor(os.time() * 1000)
  local function bound(b, k)
    if b == nil then return nil end
    if k == "number" then return tonumber(b) end
    if k == "date" then return parse_date(b, now) end
    return tostring(b)
  end
  local bounds = {}
  for _, k in ipairs({ "number", "date", "string" }) do
    bounds[k] = { bound(lo, k), bound(hi, k) }
  end
  if kind ~= "auto" and ((lo ~= nil and bounds[kind][1] == nil) or (hi ~= nil and bounds[kind][2] == nil)) then
    return nil, qerr("failed to parse range bound [" .. tostring(lo or hi) .. "] for field [" .. field .. "]",
      "parse_exception")
  end
  local function in_range(k, v)
    local b = bounds[k]
    local l, h = b[1], b[2]
    if (lo ~= nil and l == nil) or (hi ~= nil and h == nil) then return false end
    if l ~= nil and (v < l or (v == l and not lo_inc)) then return false end
    if h ~= nil and (v > h or (v == h and not hi_inc)) then return false end
    return true
  end
  return function(source, meta)
    return any_value(source, meta, path, function(v)
      local k = kind
      if k == "auto" then
        if type(v) == "number" then
          -- a number against date-string bounds is epoch millis
          local numeric = (lo == nil or bounds.number[1] ~= nil) and (hi == nil or bounds.number[2] ~= nil)
          k = numeric and "number" or "date"
        elseif type(v) == "string" and parse_date(v) and not v:find("^%-?%d+$") then k = "date"
        elseif type(v) == "string" then k = "string"
        else return false end
      end
      local nv
      if k == "number" then nv = tonumber(v)
      elseif k == "date" then nv = parse_date(v)
      elseif type(v) == "string" then nv = v
      else nv = tostring(v) end
      if nv == nil then return false end
      return in_range(k, nv)
    end)
  end
end

compilers.match = function(body, mappings)
  local field, value, err, opts = single_field(body, "match", "query")
  if err then return nil, err end
  local ty, path = resolve_field(mappings, field)
  local operator = tostring(opts.operator or "or"):lower()
  if operator ~= "or" and operator ~= "and" then
    return nil, qerr("Unknown operator [" .. operator .. "]", "illegal_argument_exception")
  end
  if ty and ty ~= "text" and ty ~= "match_only_text" then
    -- keyword, numeric, date, boolean: the query value is one term
    return function(source, meta)
      return any_value(source, meta, path, function(v) return term_equals(ty, v, value, false) end)
    end
  end
  local wanted = analyze(tostring(value))
  if #wanted == 0 then return function() return false end end
  return function(source, meta)
    local have = {}
    for _, v in ipairs(field_values(source, path, meta)) do
      if type(v) == "string" then
        for _, tok in ipairs(analyze(v)) do have[tok] = true end
      elseif type(v) == "number" or type(v) == "boolean" then
        have[tostring(v)] = true
      end
    end
    local hits = 0
    for _, w in ipairs(wanted) do if have[w] then hits = hits + 1 end end
    if operator == "and" then return hits == #wanted end
    return hits > 0
  end
end

compilers.constant_score = function(body, mappings)
  if type(body) ~= "table" or body.filter == nil then
    return nil, qerr("[constant_score] requires a 'filter' element")
  end
  return compile_query(body.filter, mappings)
end

local BOOL_KEYS = { must = true, filter = true, should = true, must_not = true,
  minimum_should_match = true, boost = true, _name = true, adjust_pure_negative = true }

local function min_should(spec, nshould)
  if spec == nil then return nil end
  local n
  if type(spec) == "number" then n = spec
  elseif type(spec) == "string" then
    local pct = spec:match("^%s*(%-?%d+)%%%s*$")
    if pct then
      local p = tonumber(pct)
      n = p >= 0 and floor(nshould * p / 100) or nshould - floor(nshould * -p / 100)
    else
      n = tonumber(spec)
      if not n then return nil, qerr("could not parse minimum_should_match [" .. spec .. "]") end
    end
  else
    return nil, qerr("[bool] minimum_should_match must be a number or a string")
  end
  if n < 0 then n = nshould + n end
  if n < 0 then n = 0 end
  return n
end

compilers.bool = function(body, mappings)
  if type(body) ~= "table" or is_array(body) then
    return nil, qerr("[bool] query malformed, no start_object after query name")
  end
  for k in pairs(body) do
    if not BOOL_KEYS[k] then return nil, qerr("[bool] query does not support [" .. tostring(k) .. "]") end
  end
  local groups = {}
  for _, k in ipairs({ "must", "filter", "should", "must_not" }) do
    local list = {}
    if body[k] ~= nil then
      for _, sub in ipairs(as_list(body[k])) do
        local m, err = compile_query(sub, mappings)
        if not m then return nil, err end
        list[#list + 1] = m
      end
    end
    groups[k] = list
  end
  local must, should, must_not = groups.must, groups.should, groups.must_not
  for _, m in ipairs(groups.filter) do must[#must + 1] = m end
  local msm, err = min_should(body.minimum_should_match, #should)
  if err then return nil, err end
  if msm == nil then msm = (#must == 0 and #should > 0) and 1 or 0 end
  return function(source, meta)
    for _, m in ipairs(must) do if not m(source, meta) then return false end end
    for _, m in ipairs(must_not) do if m(source, meta) then return false end end
    if msm > 0 then
      local n = 0
      for _, m in ipairs(should) do
        if m(source, meta) then
          n = n + 1
          if n >= msm then return true end
        end
      end
      return false
    end
    return true
  end
end

-- Lucene query syntax: translated by espipe.server.lucene_query into the DSL above
local function lucene_compiler(body, mappings, name)
  local dsl, err = require("espipe.server.lucene_query").translate(name, body, mappings)
  if not dsl then return nil, err end
  return compile_query(dsl, mappings)
end
compilers.query_string = lucene_compiler
compilers.simple_query_string = lucene_compiler

-- compile(query or nil, mappings) -> matcher | nil, err
function M.compile(query, mappings)
  if query == nil or query == null then return compilers.match_all() end
  return compile_query(query, mappings)
end

------------------------------------------------------------------------
-- sorting

local SPECIAL = { _doc = true, _shard_doc = true, _score = true }

-- date_nanos requires this module: loaded on first use
local date_nanos_mod
local function date_nanos()
  date_nanos_mod = date_nanos_mod or require("espipe.server.date_nanos")
  return date_nanos_mod
end

-- a value as the key sorts it: date_nanos keys compare exact nanoseconds
local function sort_norm(key, v)
  if key.nanos then return date_nanos().value(v) end
  return norm(key.type, v)
end

local function sort_key(field, opts, mappings)
  if type(opts) == "string" then opts = { order = opts } end
  if type(opts) ~= "table" then
    return nil, qerr("[sort] malformed for field [" .. tostring(field) .. "]")
  end
  local order = opts.order or (field == "_score" and "desc" or "asc")
  if order ~= "asc" and order ~= "desc" then
    return nil, qerr("[sort] unknown order [" .. tostring(order) .. "] for field [" .. field .. "]",
      "x_content_parse_exception")
  end
  local key = { field = field, desc = order == "desc", missing = opts.missing or "_last",
    mode = opts.mode }
  if SPECIAL[field] then return key end
  -- (whether _id may be sorted on is the flavour's: api_search asks first)
  if field == "_id" then key.type, key.path = "keyword", "_id" return key end
  local ty, path = resolve_field(mappings, field)
  if ty == "text" or ty == "match_only_text" then
    return nil, qerr("Text fields are not optimised for operations that require per-document field data "
      .. "like aggregations and sorting, so these operations are disabled by default. Please use a keyword "
      .. "field instead. Alternatively, set fielddata=true on [" .. field .. "] in order to load field data "
      .. "by uninverting the inverted index. Note that this can use significant memory.",
      "illegal_argument_exception")
  end
  if ty == nil and type(mappings) == "table" and type(mappings.properties) == "table"
      and opts.unmapped_type == nil and next(mappings.properties) ~= nil then
    return nil, qerr("No mapping found for [" .. field .. "] in order to sort on", "query_shard_exception")
  end
  key.type, key.path = ty or opts.unmapped_type, path
  key.nanos = key.type == "date_nanos"
  if opts.format ~= nil and (key.type == "date" or key.nanos) then key.format = opts.format end
  return key
end

-- one sort value of a hit for a key: a number, string, boolean or nil (missing)
local function hit_value(key, hit)
  local f = key.field
  if f == "_doc" then return hit._doc end
  if f == "_shard_doc" then return (hit._shard or 0) * 4294967296 + (hit._doc or 0) end
  if f == "_score" then return hit._score or 0 end
  local best
  local pick_max = key.mode == "max" or (key.mode == nil and key.desc)
  local meta = { _id = hit._id, _index = hit._index, _routing = hit._routing }
  for _, v in ipairs(field_values(hit._source, key.path, meta)) do
    local n = sort_norm(key, v)
    if type(n) == "boolean" then n = n and 1 or 0 end -- ES sorts booleans as 0/1
    if n ~= nil and n ~= null then
      if best == nil then
        best = n
      elseif type(best) == type(n) and ((pick_max and n > best) or (not pick_max and n < best)) then
        best = n
      end
    end
  end
  return best
end

-- -1, 0, 1 in the key's order; missing values follow the "missing" option
local function cmp_values(key, a, b)
  if a == null then a = nil end
  if b == null then b = nil end
  local miss = key.missing
  if miss ~= "_last" and miss ~= "_first" then
    if a == nil then a = sort_norm(key, miss) end
    if b == nil then b = sort_norm(key, miss) end
  end
  if a == nil or b == nil then
    if a == nil and b == nil then return 0 end
    local first = miss == "_first"
    if a == nil then return first and -1 or 1 end
    return first and 1 or -1
  end
  if type(a) ~= type(b) then a, b = tostring(a), tostring(b) end
  if a == b then return 0 end
  local r = a < b and -1 or 1
  return key.desc and -r or r
end

function M.compile_sort(spec, mappings)
  local keys = {}
  if spec ~= nil and spec ~= null then
    for _, item in ipairs(as_list(spec)) do
      local key, err
      if type(item) == "string" then
        local f, order = item:match("^([^:]+):(%a+)$")
        key, err = sort_key(f or item, order or {}, mappings)
      elseif type(item) == "table" then
        local f, opts = next(item)
        if f == nil or next(item, f) ~= nil then
          return nil, qerr("[sort] expects one field per sort object", "x_content_parse_exception")
        end
        key, err = sort_key(f, opts, mappings)
      else
        return nil, qerr("[sort] malformed", "x_content_parse_exception")
      end
      if not key then return nil, err end
      keys[#keys + 1] = key
    end
  end
  if #keys == 0 then keys[1] = { field = "_score", desc = true, missing = "_last" } end

  local sorter = { keys = keys }
  function sorter.values(hit)
    local out = json.array()
    for i, key in ipairs(keys) do
      local v = hit_value(key, hit)
      if v == nil then v = null end
      out[i] = v
    end
    return out
  end
  -- the values as a hit shows them: formatted where a key has a format
  local formatted = false
  for _, key in ipairs(keys) do formatted = formatted or key.format ~= nil end
  function sorter.output(values)
    if not formatted then return values end
    local out = json.array()
    for i, key in ipairs(keys) do
      local v = values[i]
      if key.format and v ~= null and v ~= nil then
        if key.nanos then v = date_nanos().format(v, key.format)
        else v = require("espipe.server.date_format").format(v, key.format) end
      end
      out[i] = v
    end
    return out
  end
  -- a before b? ties are broken by shard then doc order, as ES does
  function sorter.compare(a, b)
    for _, key in ipairs(keys) do
      local c = cmp_values(key, hit_value(key, a), hit_value(key, b))
      if c ~= 0 then return c < 0 end
    end
    if (a._shard or 0) ~= (b._shard or 0) then return (a._shard or 0) < (b._shard or 0) end
    return (a._doc or 0) < (b._doc or 0)
  end
  -- is a hit with these sort values strictly after search_after?
  function sorter.after(values, search_after)
    if type(search_after) ~= "table" or #search_after ~= #keys then
      return nil, qerr("search_after has " .. (type(search_after) == "table" and #search_after or 0)
        .. " value(s) but sort has " .. #keys .. ".", "illegal_argument_exception")
    end
    for i, key in ipairs(keys) do
      local given = search_after[i]
      if given ~= null and key.nanos then
        given = date_nanos().from_sort(given)
      elseif given ~= null and key.type and type(given) == "string" and key.type ~= "keyword" then
        given = norm(key.type, given)
      end
      local c = cmp_values(key, values[i], given)
      if c ~= 0 then return c > 0 end
    end
    return false
  end
  return sorter
end

------------------------------------------------------------------------
-- _source filtering

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

local function filter_node(v, path, inc, exc, included)
  if path ~= "" and #exc > 0 and matches_any(exc, path) then return nil end
  if not included and path ~= "" and inc and matches_any(inc, path) then included = true end
  if type(v) ~= "table" or v == null then
    if included or not inc then return v end
    return nil
  end
  if not included and inc and path ~= "" and not may_match_below(inc, path) then return nil end
  if is_array(v) then
    local out, n = json.array(), 0
    for _, el in ipairs(v) do
      local r = filter_node(el, path, inc, exc, included)
      if r ~= nil then n = n + 1; out[n] = r end
    end
    if n == 0 and #v > 0 then return nil end
    if n == 0 and not included and inc then return nil end
    return out
  end
  local out, any = json.object(), false
  for k, child in pairs(v) do
    local r = filter_node(child, path == "" and k or (path .. "." .. k), inc, exc, included)
    if r ~= nil then out[k] = r; any = true end
  end
  if not any and path ~= "" and (next(v) ~= nil or (inc and not included)) then return nil end
  return out
end

-- spec: true/nil (whole source), false (none), "a", {"a","b.*"},
-- {includes=, excludes=} (also include/exclude); source may be json.raw
function M.source_filter(source, spec)
  if spec == nil or spec == true or spec == null then return source end
  if spec == false then return nil end
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
    error("source_filter: bad spec of type " .. type(spec), 2)
  end
  if inc and #inc == 0 then inc = nil end
  if (not inc) and (not exc or #exc == 0) then return source end
  if json.is_raw(source) then
    local decoded = json.decode_marked(json.raw_text(source))
    if decoded == nil then return source end
    source = decoded
  end
  local r = filter_node(source, "", inc and compile_patterns(inc), compile_patterns(exc or {}), false)
  return r or json.object()
end

------------------------------------------------------------------------
-- slices

-- ES: with max <= shards each shard belongs to one slice; with more slices
-- than shards a shard's documents are split further by a hash of the _id
-- (h: the id's hash when the caller keeps it)
function M.slice_of(id, shard, max, shards, h)
  shards = shards or 1
  if max <= shards then return shard % max end
  local in_shard = floor(max / shards) + ((max % shards) > shard and 1 or 0)
  h = h or routing.hash(tostring(id)) or 0
  return shard + (h % in_shard) * shards
end

-- regexp and fuzzy live in their own module
M.single_field = single_field
require("espipe.server.query_patterns").register(M, compilers)

return M
