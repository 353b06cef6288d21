-- The Lucene query syntax subset of `?q=`, `query_string` and
-- `simple_query_string`, translated into the query DSL that
-- espipe.server.query evaluates (so evaluation stays in one place).
--
--   translate(name, body, mappings) -> dsl | nil, err
--     name = "query_string" | "simple_query_string"; body as ES takes it
--   from_args(args) -> { query_string = {...} } | nil   for ?q= with df,
--     default_operator, lenient, analyze_wildcard
--
-- query_string: terms, field:value, "quoted phrases", AND/OR/NOT, && || !,
-- +/- prefixes, (groups), field:(groups), wildcards * ?, ranges [a TO b],
-- {a TO b} and mixed brackets with * for open ends, field:>n >= < <=,
-- _exists_:field, ^boost (accepted, scores are not modelled), \ escapes.
-- Clauses combine as Lucene's classic parser combines them (default_operator
-- OR: AND makes both sides required; AND: OR makes both sides optional).
-- simple_query_string: + (and), | (or), - (not), phrases, prefix*, groups;
-- it never fails on syntax. Phrases match when all their words match (word
-- positions are not modelled); /regex/ terms become regexp queries (the
-- regexp query's syntax; text fields match it lowercased); fuzzy (~) is refused.
--   regexps(body) -> the /regex/ texts of a query_string body (for
--     index.max_regex_length) | nil when it does not parse
local json = require("espipe.server.json")
local query = require("espipe.server.query")
local doc_fields = require("espipe.server.doc_fields")

local M = {}

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local null = json.null

local function qerr(reason, typ) return query.error(reason, typ or "query_shard_exception") end

local NUMERIC = doc_fields.NUMERIC

------------------------------------------------------------------------
-- scanning

local SPECIAL_QS = "[%s%(%)%[%]{}\":%^~\\]"
local SPECIAL_SIMPLE = "[%s%(%)\"|+%^~\\]"

local function scanner(text, simple)
  return { s = text, i = 1, n = #text, simple = simple, special = simple and SPECIAL_SIMPLE or SPECIAL_QS,
           regexps = {} }
end

local function peek(sc, len) return sc.s:sub(sc.i, sc.i + (len or 1) - 1) end

local function skip_ws(sc)
  local _, e = sc.s:find("^%s+", sc.i)
  if e then sc.i = e + 1 end
end

local function at_end(sc) return sc.i > sc.n end

local function fail(sc, why)
  error({ lucene = true, reason = why, at = sc.i }, 0)
end

-- a bare term up to the next special character; \x escapes x.
-- Returns the text and whether it holds an unescaped wildcard.
local function read_term(sc)
  local parts, wild = {}, false
  while not at_end(sc) do
    local c = peek(sc)
    if c == "\\" then
      if sc.i == sc.n then fail(sc, "Cannot parse: a term ends with an escape character") end
      parts[#parts + 1] = sc.s:sub(sc.i + 1, sc.i + 1)
      sc.i = sc.i + 2
    elseif c:find(sc.special) then
      break
    else
      if c == "*" or c == "?" then wild = true end
      parts[#parts + 1] = c
      sc.i = sc.i + 1
    end
  end
  return table.concat(parts), wild
end

local function read_phrase(sc)
  sc.i = sc.i + 1
  local parts = {}
  while true do
    if at_end(sc) then fail(sc, "Cannot parse: the phrase has no closing quote") end
    local c = peek(sc)
    if c == "\\" then
      parts[#parts + 1] = sc.s:sub(sc.i + 1, sc.i + 1)
      sc.i = sc.i + 2
    elseif c == '"' then
      sc.i = sc.i + 1
      return table.concat(parts)
    else
      parts[#parts + 1] = c
      sc.i = sc.i + 1
    end
  end
end

-- ^boost and ~fuzziness/slop after a term or phrase
local function read_suffixes(sc, phrase)
  while true do
    local c = peek(sc)
    if c == "^" then
      sc.i = sc.i + 1
      local _, e = sc.s:find("^%d*%.?%d*", sc.i)
      sc.i = e + 1
    elseif c == "~" then
      sc.i = sc.i + 1
      local _, e = sc.s:find("^%d*%.?%d*", sc.i)
      sc.i = e + 1
      if not phrase and not sc.simple then fail(sc, "fuzzy terms (~) are not supported by espipe serve") end
    else
      return
    end
  end
end

------------------------------------------------------------------------
-- leaf queries

-- /regex/: up to the next / not escaped as \/, kept as written (Lucene's
-- classic parser hands the text between the slashes to the regexp query)
local function read_regexp(sc)
  local s, i = sc.s, sc.i + 1
  while i <= sc.n do
    local c = s:sub(i, i)
    if c == "\\" and s:sub(i + 1, i + 1) == "/" then
      i = i + 2
    elseif c == "/" then
      local text = s:sub(sc.i + 1, i - 1)
      sc.i = i + 1
      return text
    else
      i = i + 1
    end
  end
  fail(sc, "Cannot parse: the regular expression has no closing /")
end

-- a leaf: { kind = "term"|"phrase"|"wildcard"|"range"|"exists"|"group", ... }
local function read_range(sc)
  local open = peek(sc)
  sc.i = sc.i + 1
  skip_ws(sc)
  local lo = peek(sc) == '"' and read_phrase(sc) or read_term(sc)
  skip_ws(sc)
  if sc.s:sub(sc.i, sc.i + 1) ~= "TO" then fail(sc, "Cannot parse: expected TO in a range") end
  sc.i = sc.i + 2
  skip_ws(sc)
  local hi = peek(sc) == '"' and read_phrase(sc) or read_term(sc)
  skip_ws(sc)
  local close = peek(sc)
  if close ~= "]" and close ~= "}" then fail(sc, "Cannot parse: the range has no closing ] or }") end
  sc.i = sc.i + 1
  read_suffixes(sc, true)
  return { kind = "range", lo = lo ~= "*" and lo or nil, hi = hi ~= "*" and hi or nil,
           lo_inc = open == "[", hi_inc = close == "]" }
end

local parse_query
local MAX_DEPTH = 256 -- a query, not the Lua stack, fails beyond it

local function read_value(sc, field)
  local c = peek(sc)
  if c == "(" then
    sc.i = sc.i + 1
    sc.depth = (sc.depth or 0) + 1
    if sc.depth > MAX_DEPTH then fail(sc, "groups nest deeper than " .. MAX_DEPTH .. " levels") end
    local q = parse_query(sc, field, true)
    sc.depth = sc.depth - 1
    if peek(sc) == ")" then
      sc.i = sc.i + 1
    elseif not sc.simple then
      fail(sc, "Cannot parse: missing )")
    end
    read_suffixes(sc, true)
    return q
  end
  if c == '"' then
    local text = read_phrase(sc)
    read_suffixes(sc, true)
    return { kind = "phrase", text = text, field = field }
  end
  if not sc.simple and (c == "[" or c == "{") then
    local r = read_range(sc)
    r.field = field
    return r
  end
  if not sc.simple and c == "/" then
    local text = read_regexp(sc)
    read_suffixes(sc, true)
    sc.regexps[#sc.regexps + 1] = text
    return { kind = "regexp", text = text, field = field }
  end
  if not sc.simple and (c == ">" or c == "<") then
    local op = sc.s:match("^[<>]=?", sc.i)
    sc.i = sc.i + #op
    local v = peek(sc) == '"' and read_phrase(sc) or read_term(sc)
    local r = { kind = "range", field = field }
    if op:sub(1, 1) == ">" then r.lo, r.lo_inc = v, op == ">=" else r.hi, r.hi_inc = v, op == "<=" end
    return r
  end
  local text, wild = read_term(sc)
  if text == "" then fail(sc, "Cannot parse: unexpected [" .. c .. "]") end
  read_suffixes(sc, false)
  if sc.simple then
    -- only a trailing * is an operator in simple_query_string
    if text:sub(-1) == "*" and #text > 1 then return { kind = "wildcard", text = text, field = field } end
    return { kind = "term", text = text, field = field }
  end
  if text == "*" and field == nil then return { kind = "all" } end
  return { kind = wild and "wildcard" or "term", text = text, field = field }
end

-- field:value, or a value in the current default field
local function read_clause(sc, field)
  if not sc.simple and peek(sc) ~= "(" and peek(sc) ~= '"' then
    local save = sc.i
    local name = read_term(sc)
    if name ~= "" and peek(sc) == ":" then
      sc.i = sc.i + 1
      skip_ws(sc)
      if name == "_exists_" then
        local f = read_term(sc)
        return { kind = "exists", field = f }
      end
      return read_value(sc, name)
    end
    sc.i = save
  end
  return read_value(sc, field)
end

------------------------------------------------------------------------
-- combining clauses as Lucene's classic QueryParser does

local MUST, SHOULD, MUST_NOT = "must", "should", "must_not"

local function add_clause(clauses, conj, mod, q, and_default)
  local last = clauses[#clauses]
  if last and conj == "AND" and last.occur ~= MUST_NOT then last.occur = MUST end
  if last and and_default and conj == "OR" and last.occur ~= MUST_NOT then last.occur = SHOULD end
  local occur
  if mod == "NOT" then
    occur = MUST_NOT
  elseif and_default then
    occur = conj == "OR" and SHOULD or MUST
  else
    occur = (mod == "REQ" or conj == "AND") and MUST or SHOULD
  end
  clauses[#clauses + 1] = { occur = occur, q = q }
end

local function read_operator(sc)
  local s, i = sc.s, sc.i
  if sc.simple then
    local c = peek(sc)
    if c == "|" then sc.i = i + 1 return "OR" end
    if c == "+" then sc.i = i + 1 return "AND" end
    return nil
  end
  for _, op in ipairs({ { "AND", "AND" }, { "OR", "OR" }, { "&&", "AND" }, { "||", "OR" } }) do
    local w = op[1]
    if s:sub(i, i + #w - 1) == w then
      local after = s:sub(i + #w, i + #w)
      if w:find("%p") or after == "" or after:find("[%s%(]") then
        sc.i = i + #w
        return op[2]
      end
    end
  end
  return nil
end

local function read_modifier(sc)
  local c = peek(sc)
  if c == "-" then sc.i = sc.i + 1 return "NOT" end
  if not sc.simple then
    if c == "+" then sc.i = sc.i + 1 return "REQ" end
    if c == "!" then sc.i = sc.i + 1 return "NOT" end
    if sc.s:sub(sc.i, sc.i + 3):find("^NOT[%s%(]") then sc.i = sc.i + 3 return "NOT" end
  end
  return nil
end

parse_query = function(sc, field, nested)
  local clauses, conj = {}, nil
  while true do
    skip_ws(sc)
    if at_end(sc) or (peek(sc) == ")" and nested) then break end
    if peek(sc) == ")" then
      if sc.simple then sc.i = sc.i + 1 else fail(sc, "Cannot parse: unexpected )") end
    else
      local op = read_operator(sc)
      if op then
        conj = op
      else
        local mod = read_modifier(sc)
        skip_ws(sc)
        if at_end(sc) then
          if sc.simple then break end
          fail(sc, "Cannot parse: the query ends after an operator")
        end
        add_clause(clauses, conj, mod, read_clause(sc, field), sc.and_default)
        conj = nil
      end
    end
  end
  return { kind = "bool", clauses = clauses }
end

------------------------------------------------------------------------
-- to the query DSL

local function leaf_fields(props, prefix, out)
  for name, def in pairs(props) do
    if type(def) == "table" then
      local path = prefix .. name
      if type(def.properties) == "table" then
        leaf_fields(def.properties, path .. ".", out)
      elseif def.type ~= "object" and def.type ~= "nested" then
        out[#out + 1] = path
      end
    end
  end
  return out
end

-- the fields a clause without field: searches (ES's "*" default field)
local function default_fields(opts, mappings)
  if opts.fields then return opts.fields, opts.lenient end
  if opts.df then return { opts.df }, opts.lenient end
  local list = {}
  if type(mappings) == "table" and type(mappings.properties) == "table" then
    leaf_fields(mappings.properties, "", list)
    table.sort(list)
  end
  return list, true
end

local function bool_of(list, occur)
  if #list == 1 then return list[1] end
  if #list == 0 then return { match_none = json.object() } end
  return { bool = { [occur] = list } }
end

local function leaf_dsl(leaf, field, opts, mappings, lenient)
  local ty = doc_fields.resolve_field(mappings, field)
  local k = leaf.kind
  if k == "exists" then return { exists = { field = field } } end
  if k == "range" then
    local spec = {}
    if leaf.lo then spec[leaf.lo_inc and "gte" or "gt"] = leaf.lo end
    if leaf.hi then spec[leaf.hi_inc and "lte" or "lt"] = leaf.hi end
    return { range = { [field] = spec } }
  end
  if k == "regexp" then
    if NUMERIC[ty] or ty == "date" or ty == "date_nanos" or ty == "boolean" then
      if lenient then return nil end
      return nil, qerr("failed to create query: Can only use regexp queries on keyword and text fields - not on ["
        .. field .. "] which is of type [" .. ty .. "]")
    end
    local v = leaf.text
    if ty == nil or ty == "text" or ty == "match_only_text" then v = v:lower() end
    return { regexp = { [field] = { value = v } } }
  end
  if NUMERIC[ty] and k ~= "wildcard" and tonumber(leaf.text) == nil then
    if lenient then return nil end
    return nil, qerr("failed to create query: For input string: \"" .. leaf.text .. "\"")
  end
  if k == "wildcard" then
    if NUMERIC[ty] then return nil end
    local v = leaf.text
    -- text fields hold lowercased tokens: the pattern is normalised as ES normalises it
    if ty == nil or ty == "text" or ty == "match_only_text" then v = v:lower() end
    return { wildcard = { [field] = { value = v } } }
  end
  local operator = (k == "phrase") and "and" or opts.operator
  return { match = { [field] = { query = leaf.text, operator = operator } } }
end

local to_dsl

local function field_leaf(leaf, opts, mappings)
  local fields, lenient
  if leaf.field then
    fields, lenient = { leaf.field }, opts.lenient
  else
    fields, lenient = default_fields(opts, mappings)
  end
  local list = {}
  for _, f in ipairs(fields) do
    local name = f:match("^([^%^]+)") -- "title^2": boosts are accepted, scores are not modelled
    local d, err = leaf_dsl(leaf, name, opts, mappings, lenient)
    if err then return nil, err end
    if d then list[#list + 1] = d end
  end
  return bool_of(list, "should")
end

to_dsl = function(node, opts, mappings)
  if node.kind == "all" then return { match_all = json.object() } end
  if node.kind ~= "bool" then return field_leaf(node, opts, mappings) end
  local clauses = node.clauses
  if #clauses == 0 then return { match_none = json.object() } end
  if #clauses == 1 and clauses[1].occur ~= MUST_NOT then return to_dsl(clauses[1].q, opts, mappings) end
  local b = {}
  for _, c in ipairs(clauses) do
    local d, err = to_dsl(c.q, opts, mappings)
    if not d then return nil, err end
    b[c.occur] = b[c.occur] or {}
    table.insert(b[c.occur], d)
  end
  return { bool = b }
end

------------------------------------------------------------------------
-- entry points

local QS_KEYS = { query = true, default_field = true, fields = true, default_operator = true, lenient = true,
  analyze_wildcard = true, boost = true, _name = true, analyzer = true, allow_leading_wildcard = true,
  auto_generate_synonyms_phrase_query = true, flags = true, fuzziness = true, minimum_should_match = true,
  quote_field_suffix = true, time_zone = true, phrase_slop = true, type = true, tie_breaker = true,
  rewrite = true, max_determinized_states = true, enable_position_increments = true, escape = true,
  fuzzy_max_expansions = true, fuzzy_prefix_length = true, fuzzy_transpositions = true }

function M.translate(name, body, mappings)
  if type(body) ~= "table" or body == null then
    return nil, qerr("[" .. name .. "] query malformed, no start_object after query name", "parsing_exception")
  end
  for k in pairs(body) do
    if not QS_KEYS[k] then
      return nil, qerr("[" .. name .. "] query does not support [" .. tostring(k) .. "]", "parsing_exception")
    end
  end
  if type(body.query) ~= "string" then
    return nil, qerr("[" .. name .. "] requires query value", "parsing_exception")
  end
  local op = tostring(body.default_operator or "or"):lower()
  if op ~= "or" and op ~= "and" then
    return nil, qerr("Unknown operator [" .. tostring(body.default_operator) .. "]", "illegal_argument_exception")
  end
  local fields = body.fields
  if type(fields) == "string" then fields = { fields } end
  if fields and #fields == 1 and fields[1] == "*" then fields = nil end
  local df = body.default_field
  if df == "*" then df = nil end
  local opts = { df = df, fields = fields, operator = op, lenient = body.lenient == true }
  local sc = scanner(body.query, name == "simple_query_string")
  sc.and_default = op == "and"
  local ok, tree = pcall(parse_query, sc, nil, false)
  if not ok then
    if type(tree) ~= "table" or not tree.lucene then error(tree, 0) end
    return nil, qerr("Failed to parse query [" .. body.query .. "]: " .. tree.reason .. " at character "
      .. (tree.at - 1))
  end
  return to_dsl(tree, opts, mappings)
end

function M.regexps(body)
  if type(body) ~= "table" or type(body.query) ~= "string" then return nil end
  local sc = scanner(body.query, false)
  sc.and_default = tostring(body.default_operator or "or"):lower() == "and"
  if not pcall(parse_query, sc, nil, false) then return nil end
  return sc.regexps
end

-- ?q= and its companions -> a query_string query
function M.from_args(args)
  local q = args.q
  if type(q) ~= "string" then return nil end
  local body = { query = q }
  if type(args.df) == "string" then body.default_field = args.df end
  if type(args.default_operator) == "string" then body.default_operator = args.default_operator end
  if args.lenient == "true" or args.lenient == true then body.lenient = true end
  return { query_string = body }
end

return M
