-- The regexp and fuzzy queries, registered into espipe.server.query's
-- compilers. regexp: Lucene's syntax (. [..] [^..] ( ) | * + ? {n,m} \x
-- "literal" and @), anchored on the whole term, by backtracking over bytes;
-- the optional operators ~ & # <n-m> are refused by name. fuzzy: Damerau
-- (optimal string alignment) edit distance within `fuzziness` (AUTO: 0 up to
-- 2 characters, 1 up to 5, else 2), after `prefix_length` exact characters.
-- On keyword fields the whole value is the term; on text fields each token.
local doc_fields = require("espipe.server.doc_fields")
local es = require("espipe.server.es_errors")

local M = {}

local perr = es.query

------------------------------------------------------------------------
-- regexp parsing: AST nodes { t = "seq"|"alt"|"rep"|"char"|"any"|"set"|"anystr" }

local parse_alt

local function parse_set(re, i)
  local set = { t = "set", ranges = {} }
  if re:sub(i, i) == "^" then set.neg = true; i = i + 1 end
  local first = true
  while i <= #re do
    local c = re:sub(i, i)
    if c == "]" and not first then return set, i + 1 end
    first = false
    if c == "\\" then i = i + 1; c = re:sub(i, i) end
    local lo = c
    if re:sub(i + 1, i + 1) == "-" and re:sub(i + 2, i + 2) ~= "]" and i + 2 <= #re then
      local hi = re:sub(i + 2, i + 2)
      if hi == "\\" then i = i + 1; hi = re:sub(i + 2, i + 2) end
      set.ranges[#set.ranges + 1] = { lo, hi }
      i = i + 3
    else
      set.ranges[#set.ranges + 1] = { lo, lo }
      i = i + 1
    end
  end
  return nil, "expected ']' at position " .. i
end

local function parse_atom(re, i)
  local c = re:sub(i, i)
  if c == "(" then
    local node, j = parse_alt(re, i + 1)
    if not node then return nil, j end
    if re:sub(j, j) ~= ")" then return nil, "expected ')' at position " .. j end
    return node, j + 1
  elseif c == "[" then
    return parse_set(re, i + 1)
  elseif c == "." then
    return { t = "any" }, i + 1
  elseif c == "@" then
    return { t = "anystr" }, i + 1
  elseif c == '"' then
    local close = re:find('"', i + 1, true)
    if not close then return nil, "expected '\"' at position " .. i end
    local seq = { t = "seq" }
    for k = i + 1, close - 1 do seq[#seq + 1] = { t = "char", c = re:sub(k, k) } end
    return seq, close + 1
  elseif c == "\\" then
    return { t = "char", c = re:sub(i + 1, i + 1) }, i + 2
  elseif c == "~" or c == "&" or c == "#" or c == "<" then
    return nil, "the regexp operator [" .. c .. "] is not supported by espipe serve"
  end
  return { t = "char", c = c }, i + 1
end

local function parse_repeat(re, i, atom)
  while true do
    local c = re:sub(i, i)
    if c == "*" then atom = { t = "rep", node = atom, min = 0 }; i = i + 1
    elseif c == "+" then atom = { t = "rep", node = atom, min = 1 }; i = i + 1
    elseif c == "?" then atom = { t = "rep", node = atom, min = 0, max = 1 }; i = i + 1
    elseif c == "{" then
      local a, b, close = re:match("^{(%d+)(,?%d*)}()", i)
      if not a then return nil, "invalid repetition at position " .. i end
      local max = tonumber(a)
      if b == "," then max = nil elseif b ~= "" then max = tonumber(b:sub(2)) end
      atom = { t = "rep", node = atom, min = tonumber(a), max = max }
      i = close
    else
      return atom, i
    end
  end
end

parse_alt = function(re, i)
  local alt = { t = "alt" }
  local seq = { t = "seq" }
  while i <= #re do
    local c = re:sub(i, i)
    if c == ")" then break end
    if c == "|" then
      alt[#alt + 1] = seq
      seq = { t = "seq" }
      i = i + 1
    else
      local atom, j = parse_atom(re, i)
      if not atom then return nil, j end
      atom, j = parse_repeat(re, j, atom)
      if not atom then return nil, j end
      seq[#seq + 1] = atom
      i = j
    end
  end
  alt[#alt + 1] = seq
  return alt, i
end

function M.parse_regexp(re)
  local ast, j = parse_alt(re, 1)
  if not ast then return nil, j end
  if j <= #re then return nil, "unexpected ')' at position " .. j end
  return ast
end

------------------------------------------------------------------------
-- regexp matching (continuation passing, backtracking)

local function in_set(set, ch)
  local hit = false
  for _, r in ipairs(set.ranges) do
    if ch >= r[1] and ch <= r[2] then hit = true break end
  end
  if set.neg then return not hit end
  return hit
end

local match_node

local function match_seq(node, s, j, i, k)
  if j > #node then return k(i) end
  return match_node(node[j], s, i, function(n) return match_seq(node, s, j + 1, n, k) end)
end

local function match_rep(node, s, count, i, k)
  if node.max == nil or count < node.max then
    local more = match_node(node.node, s, i, function(n)
      if n == i then return false end -- an empty match cannot loop
      return match_rep(node, s, count + 1, n, k)
    end)
    if more then return true end
  end
  return count >= node.min and k(i)
end

match_node = function(node, s, i, k)
  local t = node.t
  if t == "seq" then return match_seq(node, s, 1, i, k) end
  if t == "alt" then
    for _, o in ipairs(node) do if match_node(o, s, i, k) then return true end end
    return false
  end
  if t == "rep" then return match_rep(node, s, 0, i, k) end
  if t == "anystr" then
    for n = #s + 1, i, -1 do if k(n) then return true end end
    return false
  end
  if i > #s then return false end
  local ch = s:sub(i, i)
  if t == "char" then return ch == node.c and k(i + 1) end
  if t == "any" then return k(i + 1) end
  if t == "set" then return in_set(node, ch) and k(i + 1) end
  return false
end

function M.regexp_matches(ast, s)
  return match_node(ast, s, 1, function(n) return n == #s + 1 end)
end

------------------------------------------------------------------------
-- fuzzy: optimal string alignment distance, bounded

function M.edit_distance(a, b, transpositions)
  local la, lb = #a, #b
  local prev2, prev = {}, {}
  for j = 0, lb do prev[j] = j end
  for i = 1, la do
    local cur = { [0] = i }
    for j = 1, lb do
      local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
      local v = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
      if transpositions and i > 1 and j > 1 and a:sub(i, i) == b:sub(j - 1, j - 1)
          and a:sub(i - 1, i - 1) == b:sub(j, j) then
        v = math.min(v, prev2[j - 2] + 1)
      end
      cur[j] = v
    end
    prev2, prev = prev, cur
  end
  return prev[lb]
end

-- fuzziness ("AUTO", "AUTO:low,high", 0, 1, 2, "1") for a term -> edits | nil, err
function M.max_edits(fuzziness, term)
  local f = fuzziness == nil and "AUTO" or tostring(fuzziness)
  local low, high = 3, 6
  local auto, rest = f:match("^(AUTO)(.*)$")
  if auto then
    if rest ~= "" then
      low, high = rest:match("^:(%d+),(%d+)$")
      if not low then return nil, "failed to parse [" .. f .. "] as fuzziness" end
      low, high = tonumber(low), tonumber(high)
    end
    local n = #term
    if n < low then return 0 end
    if n < high then return 1 end
    return 2
  end
  local n = tonumber(f)
  if not n or n < 0 then return nil, "failed to parse [" .. f .. "] as fuzziness" end
  return math.min(math.floor(n), 2)
end

------------------------------------------------------------------------
-- the compilers

local function terms_of(ty, v)
  if type(v) ~= "string" then return {} end
  if ty == "text" or ty == "match_only_text" then return doc_fields.analyze(v) end
  return { v }
end

local function term_matcher(q, body, mappings, qname, make_pred)
  local field, value, err, opts = q.single_field(body, qname, "value")
  if err then return nil, err end
  local ty, path = doc_fields.resolve_field(mappings, field)
  local pred, perr_ = make_pred(tostring(value), opts or {}, ty)
  if not pred then return nil, perr_ end
  return function(source, meta)
    for _, v in ipairs(doc_fields.field_values(source, path, meta)) do
      for _, t in ipairs(terms_of(ty, v)) do
        if pred(t) then return true end
      end
    end
    return false
  end
end

function M.register(q, compilers)
  compilers.regexp = function(body, mappings)
    return term_matcher(q, body, mappings, "regexp", function(value, opts)
      local ci = opts.case_insensitive == true
      local ast, err = M.parse_regexp(ci and value:lower() or value)
      if not ast then return nil, perr("failed to parse regexp [" .. value .. "]: " .. err) end
      return function(t) return M.regexp_matches(ast, ci and t:lower() or t) end
    end)
  end
  compilers.fuzzy = function(body, mappings)
    return term_matcher(q, body, mappings, "fuzzy", function(value, opts)
      local edits, err = M.max_edits(opts.fuzziness, value)
      if not edits then return nil, perr(err) end
      local prefix = tonumber(opts.prefix_length) or 0
      local transpositions = opts.transpositions ~= false
      local head = value:sub(1, prefix)
      return function(t)
        if prefix > 0 and t:sub(1, prefix) ~= head then return false end
        if math.abs(#t - #value) > edits then return false end
        return M.edit_distance(t, value, transpositions) <= edits
      end
    end)
  end
end

return M
