-- The dev server's query DSL subset: ES semantics on decoded Lua documents.
--
-- compile(query, mappings) -> matcher(source, meta) -> bool | nil, err
--   meta = { _id =, _index =, _routing = }; mappings is ES-shaped
--   ({ properties = {...} }) or nil. err = { status = 400, type =, reason = }.
--   Queries: match_all, match_none, term, terms, ids, range (query_range),
--   exists, prefix, wildcard, match, bool, constant_score, regexp and fuzzy
--   (query_patterns), query_string and simple_query_string (lucene_query).
--   Fields are read through espipe.server.doc_fields: a term query on a text
--   field matches one token (the query value itself is not analysed, as in
--   ES); on keyword fields values compare whole. Fields missing from the
--   mappings are treated by the type of the value found (strings then behave
--   like ES's dynamic text + .keyword pair: term/prefix match either the
--   whole value or one token).
-- single_field(body, qname[, value_key]) -> field, value, nil, options | nil, nil, err
-- error(reason[, type]) -> a 400 error, parsing_exception by default
local json = require("espipe.server.json")
local doc_fields = require("espipe.server.doc_fields")
local es = require("espipe.server.es_errors")

local M = {}

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local floor = math.floor
local null = json.null
local qerr = es.query
local is_array, as_list = doc_fields.is_array, doc_fields.as_list
local resolve_field, field_values, analyze = doc_fields.resolve_field, doc_fields.field_values, doc_fields.analyze
local norm, to_bool = doc_fields.norm, doc_fields.to_bool

M.error = qerr

-- does the text v hold the token qs?
local function token_equals(v, qs, ci)
  for _, tok in ipairs(analyze(v)) do
    if tok == qs or (ci and tok == qs:lower()) then return true end
  end
  return false
end

-- does a stored value v equal the query term q by the value's own type?
-- (unmapped fields)
local function unmapped_equals(v, q, ci)
  if type(v) == "number" then return v == tonumber(q) end
  if type(v) == "boolean" then return v == to_bool(q) end
  if type(v) == "string" then
    local qs = tostring(q)
    if v == qs or (ci and v:lower() == qs:lower()) then return true end
    return token_equals(v, qs, ci)
  end
  return false
end

-- does a stored value v (of field type ty) equal the query term q?
local function term_equals(ty, v, q, ci)
  if ty == "text" or ty == "match_only_text" then
    return type(v) == "string" and token_equals(v, tostring(q), ci)
  end
  if ty == nil then return unmapped_equals(v, q, ci) end
  local a, b = norm(ty, v), norm(ty, q)
  if a == nil or b == nil then return false end
  if ci and type(a) == "string" then return a:lower() == b:lower() end
  return a == b
end

local compilers = {}

-- nil, or the error of a query whose body is not an object
local function not_object(body, qname)
  if type(body) ~= "table" or is_array(body) then
    return qerr("[" .. qname .. "] query malformed, no start_object after query name")
  end
end

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
  local oerr = not_object(body, qname)
  if oerr then return nil, nil, oerr end
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

-- matches string values by test(s): whole values unless the field is text,
-- tokens when it is text or unmapped
local function string_matcher(ty, path, test)
  return function(source, meta)
    return any_value(source, meta, path, function(v)
      if type(v) ~= "string" then return false end
      if ty ~= "text" and test(v) then return true end
      if ty == nil or ty == "text" then
        for _, tok in ipairs(analyze(v)) do if test(tok) then return true end end
      end
      return false
    end)
  end
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
  local oerr = not_object(body, "terms")
  if oerr then return nil, oerr end
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
  return string_matcher(ty, path, function(s)
    if ci then s = s:lower() end
    return s:sub(1, #p) == p
  end)
end

compilers.wildcard = function(body, mappings)
  local field, value, err, opts = single_field(body, "wildcard")
  if err then return nil, err end
  if type(opts.wildcard) == "string" then value = opts.wildcard end
  local ty, path = resolve_field(mappings, field)
  local ci = opts.case_insensitive == true
  local pat = "^" .. tostring(value):gsub("[%^%$%(%)%%%.%[%]%+%-]", "%%%0")
    :gsub("%*", ".*"):gsub("%?", ".") .. "$"
  if ci then pat = pat:lower() end
  return string_matcher(ty, path, function(s)
    if ci then s = s:lower() end
    return s:find(pat) ~= nil
  end)
end

compilers.range = require("espipe.server.query_range").compile

-- the tokens (and number/boolean values) of the field's values
local function token_set(source, meta, path)
  local have = {}
  for _, v in ipairs(field_values(source, path, meta)) do
    if type(v) == "string" then
      for _, tok in ipairs(analyze(v)) do have[tok] = true end
    elseif type(v) == "number" or type(v) == "boolean" then
      have[tostring(v)] = true
    end
  end
  return have
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
    local have, hits = token_set(source, meta, path), 0
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

-- the compiled clauses of each occurrence type | nil, err
local function bool_groups(body, mappings)
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
  for _, m in ipairs(groups.filter) do groups.must[#groups.must + 1] = m end
  return groups
end

local function bool_matcher(must, must_not, should, msm)
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

compilers.bool = function(body, mappings)
  local oerr = not_object(body, "bool")
  if oerr then return nil, oerr end
  for k in pairs(body) do
    if not BOOL_KEYS[k] then return nil, qerr("[bool] query does not support [" .. tostring(k) .. "]") end
  end
  local groups, err = bool_groups(body, mappings)
  if not groups then return nil, err end
  local must, should = groups.must, groups.should
  local msm, merr = min_should(body.minimum_should_match, #should)
  if merr then return nil, merr end
  if msm == nil then msm = (#must == 0 and #should > 0) and 1 or 0 end
  return bool_matcher(must, groups.must_not, should, msm)
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


M.single_field = single_field
M.term_equals = term_equals
-- regexp and fuzzy live in their own module
require("espipe.server.query_patterns").register(M, compilers)

return M
