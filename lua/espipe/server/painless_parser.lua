-- Painless subset: lexer and parser into an AST that
-- espipe.server.painless interprets. Every node keeps `at`, the 0-based
-- offset of its first character, for ES's script_exception positions.
--
--   parse(src) -> { body = statements } | nil, { offset =, reason = }
local M = {}

local tostring, tonumber = tostring, tonumber

------------------------------------------------------------------------
-- lexer

local PUNCT = { -- longest first
  ">>>=", "<<=", ">>=", ">>>", "===", "!==", "==~", "?.", "::", "->", "++", "--", "+=", "-=", "*=", "/=", "%=",
  "&=", "|=", "^=", "==", "!=", "<=", ">=", "&&", "||", "=~", "<<", ">>",
  "+", "-", "*", "/", "%", "=", "<", ">", "!", "?", ":", ".", ",", ";", "(", ")", "[", "]", "{", "}",
  "&", "|", "^", "~",
}

local ESCAPES = { n = "\n", t = "\t", r = "\r", b = "\b", f = "\f", ["\\"] = "\\", ["'"] = "'", ['"'] = '"' }

local function lex_error(at, reason) return nil, { offset = at, reason = reason } end

local function read_string(src, i, quote)
  local parts, j = {}, i + 1
  while true do
    local c = src:sub(j, j)
    if c == "" then return nil, j end
    if c == "\\" then
      local e = src:sub(j + 1, j + 1)
      parts[#parts + 1] = ESCAPES[e] or e
      j = j + 2
    elseif c == quote then
      return table.concat(parts), j + 1
    else
      parts[#parts + 1] = c
      j = j + 1
    end
  end
end

local function lex(src)
  local toks, i, n = {}, 1, #src
  while i <= n do
    local c = src:sub(i, i)
    if c:find("%s") then
      i = i + 1
    elseif src:sub(i, i + 1) == "//" then
      local e = src:find("\n", i, true)
      i = e and e + 1 or n + 1
    elseif src:sub(i, i + 1) == "/*" then
      local _, e = src:find("*/", i + 2, true)
      if not e then return lex_error(i - 1, "unterminated comment") end
      i = e + 1
    elseif c == "'" or c == '"' then
      local s, j = read_string(src, i, c)
      if not s then return lex_error(i - 1, "unterminated string") end
      toks[#toks + 1] = { t = "str", v = s, at = i - 1 }
      i = j
    elseif c:find("%d") or (c == "." and src:sub(i + 1, i + 1):find("%d")) then
      local num = src:match("^0[xX]%x+", i) or src:match("^%d*%.?%d+[eE][+-]?%d+", i)
        or src:match("^%d+%.%d*", i) or src:match("^%.%d+", i) or src:match("^%d+", i)
      local j = i + #num
      local suffix = src:sub(j, j):lower()
      local is_double = num:find("[.eE]") ~= nil and not num:find("^0[xX]")
      if suffix == "l" or suffix == "d" or suffix == "f" then
        if suffix ~= "l" then is_double = true end
        j = j + 1
      end
      toks[#toks + 1] = { t = "num", v = tonumber(num), double = is_double, at = i - 1 }
      i = j
    elseif c:find("[%a_]") then
      local word = src:match("^[%w_]+", i)
      toks[#toks + 1] = { t = "id", v = word, at = i - 1 }
      i = i + #word
    else
      local found
      for _, p in ipairs(PUNCT) do
        if src:sub(i, i + #p - 1) == p then found = p break end
      end
      if not found then return lex_error(i - 1, "unexpected character [" .. c .. "]") end
      toks[#toks + 1] = { t = "op", v = found, at = i - 1 }
      i = i + #found
    end
  end
  toks[#toks + 1] = { t = "eof", v = "<EOF>", at = n }
  return toks
end

------------------------------------------------------------------------
-- parser

local TYPES = { def = true, long = true, int = true, short = true, byte = true, double = true, float = true,
  boolean = true, String = true, Map = true, List = true, Object = true, HashMap = true, ArrayList = true,
  char = true, Integer = true, Long = true, Double = true, Boolean = true, var = false }

-- constructs outside the subset, named in the error
local UNSUPPORTED_OPS = { ["->"] = "lambdas (->)", ["::"] = "method references (::)", ["=~"] = "regex (=~)",
  ["==~"] = "regex (==~)", ["&"] = "bitwise operators (&)", ["|"] = "bitwise operators (|)",
  ["^"] = "bitwise operators (^)", ["~"] = "bitwise operators (~)", ["<<"] = "shift operators (<<)",
  [">>"] = "shift operators (>>)", [">>>"] = "shift operators (>>>)", ["&="] = "compound assignment (&=)",
  ["|="] = "compound assignment (|=)", ["^="] = "compound assignment (^=)", ["<<="] = "compound assignment (<<=)",
  [">>="] = "compound assignment (>>=)", [">>>="] = "compound assignment (>>>=)", ["==="] = "identity equality (===)",
  ["!=="] = "identity equality (!==)" }
local UNSUPPORTED_WORDS = { switch = "switch statements", try = "try/catch", throw = "throw",
  catch = "try/catch", instanceof = "instanceof" }

local Parser = {}
Parser.__index = Parser

local function parser(toks, src)
  return setmetatable({ toks = toks, k = 1, src = src, depth = 0 }, Parser)
end

-- nesting deeper than this is refused (a script, not the Lua stack, fails)
local MAX_DEPTH = 256

function Parser:enter()
  self.depth = self.depth + 1
  if self.depth > MAX_DEPTH then
    self:fail(self:peek(), "espipe serve's Painless subset does not nest deeper than " .. MAX_DEPTH .. " levels")
  end
end

function Parser:peek(d) return self.toks[self.k + (d or 0)] end
function Parser:next() local t = self.toks[self.k]; self.k = self.k + 1; return t end
function Parser:is(v, d) local t = self:peek(d); return (t.t == "op" or t.t == "id") and t.v == v end

function Parser.fail(_, tok, reason)
  error({ painless = true, offset = tok.at, reason = reason }, 0)
end

function Parser:unexpected(tok, expected)
  local u = tok.t == "op" and UNSUPPORTED_OPS[tok.v] or (tok.t == "id" and UNSUPPORTED_WORDS[tok.v])
  if u then self:fail(tok, "espipe serve's Painless subset does not support " .. u) end
  local shown = tok.t == "str" and ("'" .. tok.v .. "'") or tostring(tok.v)
  self:fail(tok, "unexpected token ['" .. shown .. "'] was expecting one of [" .. expected .. "].")
end

function Parser:expect(v)
  local t = self:peek()
  if not ((t.t == "op" or t.t == "id") and t.v == v) then self:unexpected(t, "'" .. v .. "'") end
  return self:next()
end

function Parser:ident()
  local t = self:peek()
  if t.t ~= "id" then self:unexpected(t, "an identifier") end
  return self:next().v
end

-- a type name, with generics (List<String>) and arrays (int[]) skipped
function Parser:skip_type()
  self:next()
  if self:is("<") then
    local depth = 0
    repeat
      local t = self:next()
      if t.v == "<" then depth = depth + 1 elseif t.v == ">" then depth = depth - 1
      elseif t.v == ">>" then depth = depth - 2 elseif t.t == "eof" then self:unexpected(t, "'>'") end
    until depth <= 0
  end
  while self:is("[") and self:is("]", 1) do self:next(); self:next() end
end

-- is a declaration starting here? (a known type name followed by a name)
function Parser:at_declaration()
  local t = self:peek()
  if t.t ~= "id" or not TYPES[t.v] then return false end
  local d = 1
  if self:is("<", d) then
    local depth = 0
    repeat
      local x = self:peek(d)
      if x.v == "<" then depth = depth + 1 elseif x.v == ">" then depth = depth - 1
      elseif x.v == ">>" then depth = depth - 2 elseif x.t == "eof" then return false end
      d = d + 1
    until depth <= 0
  end
  while self:is("[", d) and self:is("]", d + 1) do d = d + 2 end
  return self:peek(d).t == "id"
end

local parse_expr

function Parser:statement()
  self:enter()
  local t = self:peek()
  local node
  if self:is("{") then
    node = { k = "block", body = self:block() }
  elseif self:is("if") then
    self:next()
    self:expect("(")
    local cond = parse_expr(self)
    self:expect(")")
    local yes = self:statement()
    local no
    if self:is("else") then self:next(); no = self:statement() end
    node = { k = "if", cond = cond, yes = yes, no = no }
  elseif self:is("for") then
    node = self:for_statement()
  elseif self:is("while") then
    self:next()
    self:expect("(")
    local cond = parse_expr(self)
    self:expect(")")
    node = { k = "while", cond = cond, body = self:statement() }
  elseif self:is("do") then
    self:next()
    local body = self:statement()
    self:expect("while")
    self:expect("(")
    local cond = parse_expr(self)
    self:expect(")")
    self:semicolon()
    node = { k = "dowhile", cond = cond, body = body }
  elseif self:is("break") or self:is("continue") then
    node = { k = self:next().v }
    self:semicolon()
  elseif self:is("return") then
    self:next()
    local e
    if not self:is(";") and not self:is("}") and self:peek().t ~= "eof" then e = parse_expr(self) end
    self:semicolon()
    node = { k = "return", e = e }
  elseif self:is(";") then
    self:next()
    node = { k = "block", body = {} }
  elseif t.t == "id" and UNSUPPORTED_WORDS[t.v] then
    self:unexpected(t, "a statement")
  elseif self:at_declaration() then
    node = self:declaration()
    self:semicolon()
  else
    node = { k = "expr", e = parse_expr(self) }
    self:semicolon()
  end
  node.at = t.at
  self.depth = self.depth - 1
  return node
end

-- ';' ends a statement, or may be left out before '}' and at the end
function Parser:semicolon()
  if self:is(";") then self:next() return end
  if self:is("}") or self:peek().t == "eof" then return end
  self:unexpected(self:peek(), "{<EOF>, ';'}")
end

function Parser:declaration()
  local at = self:peek().at
  local ty = self:peek().v
  self:skip_type()
  local decls = {}
  repeat
    if #decls > 0 then self:next() end
    local name = self:ident()
    local init
    if self:is("=") then self:next(); init = parse_expr(self) end
    decls[#decls + 1] = { name = name, init = init }
  until not self:is(",")
  return { k = "decl", ty = ty, decls = decls, at = at }
end

function Parser:for_statement()
  self:next()
  self:expect("(")
  -- for (x in list) / for (def x : list)
  if self:peek().t == "id" and self:is("in", 1) then
    local name = self:ident()
    self:next()
    local list = parse_expr(self)
    self:expect(")")
    return { k = "foreach", name = name, list = list, body = self:statement() }
  end
  if self:at_declaration() and self:is(":", 2) then
    self:skip_type()
    local name = self:ident()
    self:expect(":")
    local list = parse_expr(self)
    self:expect(")")
    return { k = "foreach", name = name, list = list, body = self:statement() }
  end
  local init, cond, step
  if not self:is(";") then
    init = self:at_declaration() and self:declaration() or { k = "expr", e = parse_expr(self) }
  end
  self:expect(";")
  if not self:is(";") then cond = parse_expr(self) end
  self:expect(";")
  if not self:is(")") then step = parse_expr(self) end
  self:expect(")")
  return { k = "for", init = init, cond = cond, step = step, body = self:statement() }
end

function Parser:block()
  self:expect("{")
  local body = {}
  while not self:is("}") do
    if self:peek().t == "eof" then self:unexpected(self:peek(), "'}'") end
    body[#body + 1] = self:statement()
  end
  self:next()
  return body
end

------------------------------------------------------------------------
-- expressions (precedence climbing)

local BINARY = {
  ["||"] = 1, ["&&"] = 2, ["=="] = 3, ["!="] = 3,
  ["<"] = 4, [">"] = 4, ["<="] = 4, [">="] = 4,
  ["+"] = 5, ["-"] = 5, ["*"] = 6, ["/"] = 6, ["%"] = 6,
}
local ASSIGN = { ["="] = true, ["+="] = "+", ["-="] = "-", ["*="] = "*", ["/="] = "/", ["%="] = "%" }

local parse_unary

local function parse_binary(p, min)
  local left = parse_unary(p)
  while true do
    local t = p:peek()
    local prec = t.t == "op" and BINARY[t.v]
    if t.t == "op" and UNSUPPORTED_OPS[t.v] then p:unexpected(t, "an operator") end
    if t.t == "id" and t.v == "instanceof" then p:unexpected(t, "an operator") end
    if not prec or prec < min then return left end
    p:next()
    local right = parse_binary(p, prec + 1)
    left = { k = "bin", op = t.v, a = left, b = right, at = t.at }
  end
end

local function parse_ternary(p)
  local cond = parse_binary(p, 1)
  if p:is("?") then
    local t = p:next()
    local yes = parse_expr(p)
    p:expect(":")
    local no = parse_expr(p)
    return { k = "cond", cond = cond, yes = yes, no = no, at = t.at }
  end
  return cond
end

local ASSIGNABLE = { var = true, field = true, index = true }

parse_expr = function(p)
  local left = parse_ternary(p)
  local t = p:peek()
  if t.t == "op" and ASSIGN[t.v] then
    if not ASSIGNABLE[left.k] then p:fail(t, "invalid assignment: cannot assign a value to this expression") end
    p:next()
    local value = parse_expr(p)
    return { k = "assign", target = left, op = ASSIGN[t.v] ~= true and ASSIGN[t.v] or nil, e = value, at = t.at }
  end
  if t.t == "op" and UNSUPPORTED_OPS[t.v] then p:unexpected(t, "an operator") end
  return left
end

local parse_postfix

local parse_unary_inner

parse_unary = function(p)
  p:enter()
  local e = parse_unary_inner(p)
  p.depth = p.depth - 1
  return e
end

parse_unary_inner = function(p)
  local t = p:peek()
  if t.t == "op" and (t.v == "!" or t.v == "-" or t.v == "+") then
    p:next()
    return { k = "un", op = t.v, e = parse_unary(p), at = t.at }
  end
  if t.t == "op" and (t.v == "++" or t.v == "--") then
    p:next()
    local target = parse_unary(p)
    if not ASSIGNABLE[target.k] then p:fail(t, "invalid increment: cannot increment this expression") end
    return { k = "incr", pre = true, delta = t.v == "++" and 1 or -1, target = target, at = t.at }
  end
  -- a cast: (long) x, (String) y
  if t.t == "op" and t.v == "(" and p:peek(1).t == "id" and TYPES[p:peek(1).v] and p:is(")", 2) then
    p:next()
    local ty = p:next().v
    p:next()
    return { k = "cast", ty = ty, e = parse_unary(p), at = t.at }
  end
  return parse_postfix(p)
end

local function args(p)
  p:expect("(")
  local list = {}
  while not p:is(")") do
    if #list > 0 then p:expect(",") end
    list[#list + 1] = parse_expr(p)
  end
  p:next()
  return list
end

local function parse_primary(p)
  local t = p:next()
  if t.t == "num" then return { k = "lit", v = t.v, double = t.double, at = t.at } end
  if t.t == "str" then return { k = "lit", v = t.v, at = t.at } end
  if t.t == "id" then
    if t.v == "true" or t.v == "false" then return { k = "lit", v = t.v == "true", at = t.at } end
    if t.v == "null" then return { k = "null", at = t.at } end
    if t.v == "new" then
      local ty = p:peek()
      p:skip_type()
      if p:is("[") then p:unexpected(p:peek(), "'('") end
      return { k = "new", ty = ty.v, args = args(p), at = t.at }
    end
    if UNSUPPORTED_WORDS[t.v] then p:unexpected(t, "an expression") end
    return { k = "var", name = t.v, at = t.at }
  end
  if t.t == "op" and t.v == "(" then
    local e = parse_expr(p)
    p:expect(")")
    return e
  end
  if t.t == "op" and t.v == "[" then
    -- [a, b] list or [k: v] map initialiser ([:] is an empty map)
    if p:is(":") and p:is("]", 1) then
      p:next(); p:next()
      return { k = "map", keys = {}, values = {}, at = t.at }
    end
    local items, keys = {}, nil
    while not p:is("]") do
      if #items > 0 then p:expect(",") end
      local e = parse_expr(p)
      if p:is(":") then
        p:next()
        keys = keys or {}
        keys[#items + 1] = e
        e = parse_expr(p)
      end
      items[#items + 1] = e
    end
    p:next()
    if keys then return { k = "map", keys = keys, values = items, at = t.at } end
    return { k = "list", items = items, at = t.at }
  end
  p:unexpected(t, "an expression")
end

parse_postfix = function(p)
  local e = parse_primary(p)
  while true do
    local t = p:peek()
    if t.t == "op" and (t.v == "." or t.v == "?.") then
      p:next()
      local name = p:ident()
      if p:is("(") then
        e = { k = "call", obj = e, name = name, args = args(p), safe = t.v == "?.", at = t.at }
      else
        e = { k = "field", obj = e, name = name, safe = t.v == "?.", at = t.at }
      end
    elseif t.t == "op" and t.v == "[" then
      p:next()
      local i = parse_expr(p)
      p:expect("]")
      e = { k = "index", obj = e, i = i, at = t.at }
    elseif t.t == "op" and (t.v == "++" or t.v == "--") and ASSIGNABLE[e.k] then
      p:next()
      e = { k = "incr", pre = false, delta = t.v == "++" and 1 or -1, target = e, at = t.at }
    elseif t.t == "op" and t.v == "(" and e.k == "var" then
      p:fail(t, "espipe serve's Painless subset does not support function calls [" .. e.name .. "()]")
    else
      return e
    end
  end
end

function M.parse(src)
  local toks, lerr = lex(src)
  if not toks then return nil, lerr end
  local p = parser(toks, src)
  local ok, res = pcall(function()
    local body = {}
    while p:peek().t ~= "eof" do body[#body + 1] = p:statement() end
    return body
  end)
  if not ok then
    if type(res) == "table" and res.painless then return nil, { offset = res.offset, reason = res.reason } end
    error(res, 0)
  end
  return { body = res }
end

return M
