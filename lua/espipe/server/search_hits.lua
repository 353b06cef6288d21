-- Hits with more than _index/_id/_source: docvalue_fields, fields,
-- stored_fields, version, seq_no_primary_term, matched_queries (_name) and
-- indices_boost. Searches without these keep api_search's spliced fast
-- path; these build each hit as a table. _score is not modelled: it is 1
-- times the index's indices_boost (null when sorted by something else).
local json = require("espipe.server.json")
local es = require("espipe.server.es_errors")
local query = require("espipe.server.query")
local date_math = require("espipe.server.date_math")
local doc_fields = require("espipe.server.doc_fields")
local source_filter = require("espipe.server.source_filter")
local mapping = require("espipe.server.mapping")
local cluster_indices = require("espipe.server.cluster_indices")
local date_format = require("espipe.server.date_format")
local date_nanos = require("espipe.server.date_nanos")

local M = {}

local function list_arg(v)
  if v == nil then return nil end
  if type(v) == "table" then return v end
  local out = json.array()
  for p in tostring(v):gmatch("[^,]+") do out[#out + 1] = p end
  return out
end

-- named clauses of a query: { { name =, query = {type = body} } }
local function named(q, out)
  if type(q) ~= "table" or q == json.null then return out end
  local k, body = next(q)
  if k ~= nil and next(q, k) == nil and type(body) == "table" and not json.is_array(body) then
    if type(body._name) == "string" then
      out[#out + 1] = { name = body._name, query = q }
    else
      for _, v in pairs(body) do
        if type(v) == "table" and not json.is_array(v) and type(v._name) == "string" then
          out[#out + 1] = { name = v._name, query = q }
        end
      end
    end
  end
  for _, v in pairs(q) do
    if type(v) == "table" then named(v, out) end
  end
  return out
end

-- options(body, args, indices) -> opts | nil (the fast path will do) | false, status, body
function M.options(body, args)
  local o = {
    docvalue = list_arg(body.docvalue_fields or args.docvalue_fields),
    fields = list_arg(body.fields),
    stored = list_arg(body.stored_fields or args.stored_fields),
    version = body.version == true or args.version == "true",
    seq_no = body.seq_no_primary_term == true or args.seq_no_primary_term == "true",
  }
  local names = named(body.query, {})
  if #names > 0 then o.named = names end
  if body.indices_boost ~= nil then
    local boosts, err = M.boosts(body.indices_boost, args.ignore_unavailable == "true")
    if not boosts then return false, es.bad_request(err) end
    if err == "missing" then return false, boosts.status, boosts.missing end
    o.boosts = boosts
  end
  if not (o.docvalue or o.fields or o.stored or o.version or o.seq_no or o.named or o.boosts) then return nil end
  if o.stored then
    o.stored_none, o.stored_source = false, false
    for _, f in ipairs(o.stored) do
      if f == "_none_" then o.stored_none = true end
      if f == "_source" then o.stored_source = true end
    end
  end
  return o
end

-- indices_boost: [{name: boost}, ...] or {name: boost}; names may be
-- aliases or patterns; the first entry that names an index wins; a missing
-- name is an error unless ignore_unavailable
function M.boosts(spec, ignore_unavailable)
  local entries = {}
  if json.is_array(spec) or spec[1] ~= nil then
    for _, e in ipairs(spec) do
      local k, v = next(e)
      entries[#entries + 1] = { k, v }
    end
  elseif type(spec) == "table" then
    for k, v in pairs(spec) do entries[#entries + 1] = { k, v } end
    table.sort(entries, function(a, b) return a[1] < b[1] end)
  else
    return nil, "[indices_boost] must be an array or an object"
  end
  local by_index = {}
  for _, e in ipairs(entries) do
    local list, s, b = cluster_indices.resolve(e[1], { ignore_unavailable = ignore_unavailable })
    if not list then return { missing = b, status = s }, "missing" end
    for _, idx in ipairs(list) do
      if by_index[idx.name] == nil then by_index[idx.name] = tonumber(e[2]) or 1 end
    end
  end
  return by_index
end

-- a doc value as ES prints it: dates in the requested format, else the
-- field's own (its first), else strict_date_optional_time(_nanos); numbers
-- with a "#.00" pattern
local function format_value(v, fmt, ty, def)
  if ty == "date" or ty == "date_nanos" then
    local pattern = fmt or (def and type(def.format) == "string" and def.format) or nil
    local out
    if ty == "date_nanos" then
      local n = date_nanos.value(v)
      out = n and date_nanos.format(n, pattern)
    else
      local ms = date_math.parse_date(v)
      out = ms and date_format.format(ms, pattern)
    end
    return out or v
  end
  if fmt and type(v) == "number" then
    local decimals = fmt:match("^#*0*%.(0+)$")
    if decimals then return string.format("%." .. #decimals .. "f", v) end
  end
  return v
end

local function leaf_paths(node, prefix, out)
  for k, v in pairs(node) do
    local path = prefix == "" and k or (prefix .. "." .. k)
    if type(v) == "table" and v ~= json.null and not json.is_array(v) then
      leaf_paths(v, path, out)
    else
      out[#out + 1] = path
    end
  end
  return out
end

local function glob_match(pattern, path)
  return path:match("^" .. pattern:gsub("[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0"):gsub("%*", ".*") .. "$") ~= nil
end

-- the values of one requested field (doc values and fields read the
-- source), its type and mapping
local function values_of(source, props, name, meta)
  local ty, path, def = doc_fields.resolve_field(props, name)
  local out = json.array()
  for _, v in ipairs(doc_fields.field_values(source, path, meta)) do
    if v ~= json.null then out[#out + 1] = v end
  end
  return out, ty, def
end

local function add_fields(fields, list, source, props, meta, with_patterns, docvalues)
  for _, f in ipairs(list) do
    local name, fmt = f, nil
    if type(f) == "table" then name, fmt = f.field, f.format end
    local names = { name }
    if with_patterns and type(name) == "string" and name:find("*", 1, true) then
      names = {}
      for _, p in ipairs(leaf_paths(source or {}, "", {})) do
        if glob_match(name, p) then names[#names + 1] = p end
      end
    end
    for _, n in ipairs(names) do
      local vals, ty, def = values_of(source, props, n, meta)
      if not docvalues then ty = nil end
      if #vals > 0 then
        for i, v in ipairs(vals) do vals[i] = format_value(v, fmt, ty, def) end
        fields[n] = vals
      end
    end
  end
end

-- does an index of the search keep no _source (mappings _source.enabled: false)?
function M.hides_source(indices)
  for _, idx in ipairs(indices) do
    if not mapping.source_enabled(idx.mapping) then return true end
  end
  return false
end

-- hit(o, info, rec, spec, sort_values, sorted) -> table for json.encode
function M.hit(o, info, rec, spec, sort_values, sorted)
  local idx = info.idx
  local h = { _index = idx.name }
  if not o.stored_none then h._id = rec.id end
  local boost = o.boosts and o.boosts[idx.name] or 1
  h._score = sorted and json.null or boost
  if rec.r then h._routing = rec.r end
  if o.version then h._version = rec.v end
  if o.seq_no then h._seq_no, h._primary_term = rec.s, rec.t end
  local needs_source = o.docvalue or o.fields or o.named
  local source = needs_source and json.decode(rec.src) or nil
  local meta = { _id = rec.id, _index = idx.name, _routing = rec.r }
  local keep_source = spec ~= false and (not o.stored or o.stored_source) and mapping.source_enabled(idx.mapping)
  if keep_source then
    if spec == nil or spec == true or spec == json.null then
      h._source = json.raw(rec.src)
    else
      h._source = source_filter.filter(json.raw(rec.src), spec)
    end
  end
  if o.docvalue or o.fields then
    local props = mapping.to_table(idx.mapping)
    local fields = json.object()
    if o.fields then add_fields(fields, o.fields, source, props, meta, true) end
    if o.docvalue then add_fields(fields, o.docvalue, source, props, meta, false, true) end
    if next(fields) then h.fields = fields end
  end
  if sort_values then h.sort = sort_values end
  if o.named then
    local props = mapping.to_table(idx.mapping)
    local matched = json.array()
    for _, n in ipairs(o.named) do
      local m = query.compile(n.query, props)
      if m and m(source, meta) then matched[#matched + 1] = n.name end
    end
    if #matched > 0 then h.matched_queries = matched end
  end
  return h
end

return M
