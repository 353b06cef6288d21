-- A Painless subset, interpreted in Lua (an AST walker: no Lua code is
-- generated from scripts, so a script reaches nothing but its ctx and
-- params).
--
--   compile(src) -> program | nil, err
--   program:run(ctx, params) -> value | nil, err
--     ctx and params are decoded JSON (Lua tables, json.null for null);
--     the script changes ctx in place (ctx._source.f = ..., ctx.op = ...).
--   err: ES's script_exception cause: { type = "script_exception",
--     reason = "compile error" | "runtime error", script_stack, script,
--     lang = "painless", position = { offset, start, end }, caused_by }
--
-- The subset: def/var/long/int/double/float/boolean/String/Map/List
-- declarations, = += -= *= /= %=, ++ and --, + - * / %, comparisons,
-- && || !, ?: and ?., string concatenation, field access with dots and
-- ['x'], list/map literals, new ArrayList()/HashMap(), if/else,
-- for (x in list), for (def x : list), for (;;), while, do/while, break,
-- continue, return, and the methods in
-- espipe.server.painless_methods. Numbers are Lua numbers: / on two
-- integral values divides as longs do. Anything else is a compile error
-- naming the construct.
local json = require("espipe.server.json")
local parser = require("espipe.server.painless_parser")
local methods = require("espipe.server.painless_methods")

local M = {}

local type, pairs, ipairs, tostring, error, pcall = type, pairs, ipairs, tostring, error, pcall
local floor, ceil = math.floor, math.ceil
local null = json.null

local MAX_LOOP = 1000000 -- ES's script.painless.regex... max_loop_counter default

local is_list, is_map, java_string = methods.is_list, methods.is_map, methods.java_string
local rt_error = methods.raise

------------------------------------------------------------------------
-- errors in ES's shape

-- ES's script_stack: the script 25 characters either side of the offset
-- ("... " and " ..." where it is cut) and a pointer under the offset
local function snippet(src, offset)
  local from, to = math.max(0, offset - 25), math.min(#src, offset + 25)
  local text = (from > 0 and "... " or "") .. src:sub(from + 1, to) .. (to < #src and " ..." or "")
  local pointer = (from > 0 and "    " or "") .. string.rep(" ", offset - from) .. "^---- HERE"
  return { text, pointer }, from, to
end

local function script_exception(src, reason, offset, cause)
  local stack, s, e = snippet(src, offset)
  return { type = "script_exception", reason = reason, script_stack = json.array(stack), script = src,
           lang = "painless", position = { offset = offset, start = s, ["end"] = e }, caused_by = cause }
end

------------------------------------------------------------------------
-- static checks: every name resolves (as Painless does at compile time)

local STATICS = { Math = true, Integer = true, Long = true, Double = true, String = true, Boolean = true,
  Objects = true, Collections = true }
local CONSTRUCTIBLE = { ArrayList = "list", HashMap = "map", LinkedHashMap = "map", TreeMap = "map",
  HashSet = "list", LinkedList = "list", String = "string" }

local check_stmt

local function check_expr(e, scope)
  if e == nil then return end
  local k = e.k
  if k == "var" then
    local s = scope
    while s do
      if s.names[e.name] then return end
      s = s.parent
    end
    if STATICS[e.name] then e.static = true return end
    error({ painless = true, offset = e.at, reason = "cannot resolve symbol [" .. e.name .. "]" }, 0)
  elseif k == "new" then
    if not CONSTRUCTIBLE[e.ty] then
      error({ painless = true, offset = e.at, reason = "espipe serve's Painless subset cannot create a ["
        .. tostring(e.ty) .. "] (ArrayList, HashMap, HashSet, LinkedHashMap, TreeMap)" }, 0)
    end
    for _, a in ipairs(e.args) do check_expr(a, scope) end
  elseif k == "bin" then check_expr(e.a, scope); check_expr(e.b, scope)
  elseif k == "un" or k == "cast" then check_expr(e.e, scope)
  elseif k == "cond" then check_expr(e.cond, scope); check_expr(e.yes, scope); check_expr(e.no, scope)
  elseif k == "assign" then check_expr(e.target, scope); check_expr(e.e, scope)
  elseif k == "incr" then check_expr(e.target, scope)
  elseif k == "field" then check_expr(e.obj, scope)
  elseif k == "index" then check_expr(e.obj, scope); check_expr(e.i, scope)
  elseif k == "call" then
    check_expr(e.obj, scope)
    for _, a in ipairs(e.args) do check_expr(a, scope) end
  elseif k == "list" then for _, a in ipairs(e.items) do check_expr(a, scope) end
  elseif k == "map" then
    for i, v in ipairs(e.values) do check_expr(e.keys[i], scope); check_expr(v, scope) end
  end
end

local function declare(scope, name, at)
  if scope.names[name] then
    error({ painless = true, offset = at, reason = "variable [" .. name .. "] is already defined" }, 0)
  end
  scope.names[name] = true
end

local function check_body(list, scope)
  for _, st in ipairs(list) do check_stmt(st, scope) end
end

check_stmt = function(st, scope)
  local k = st.k
  if k == "block" then check_body(st.body, { names = {}, parent = scope })
  elseif k == "expr" then check_expr(st.e, scope)
  elseif k == "return" then check_expr(st.e, scope)
  elseif k == "decl" then
    for _, d in ipairs(st.decls) do
      check_expr(d.init, scope)
      declare(scope, d.name, st.at)
    end
  elseif k == "if" then
    check_expr(st.cond, scope)
    check_stmt(st.yes, { names = {}, parent = scope })
    if st.no then check_stmt(st.no, { names = {}, parent = scope }) end
  elseif k == "foreach" then
    check_expr(st.list, scope)
    local inner = { names = { [st.name] = true }, parent = scope, loop = true }
    check_stmt(st.body, inner)
  elseif k == "while" or k == "dowhile" then
    check_expr(st.cond, scope)
    check_stmt(st.body, { names = {}, parent = scope, loop = true })
  elseif k == "break" or k == "continue" then
    local s = scope
    while s and not s.loop do s = s.parent end
    if not s then
      error({ painless = true, offset = st.at, reason = "invalid " .. k .. " statement: not inside a loop" }, 0)
    end
  elseif k == "for" then
    local inner = { names = {}, parent = scope, loop = true }
    if st.init then check_stmt(st.init, inner) end
    check_expr(st.cond, inner)
    check_expr(st.step, inner)
    check_stmt(st.body, inner)
  end
end

------------------------------------------------------------------------
-- values

local function truthy(v, at)
  if type(v) ~= "boolean" then
    rt_error("class_cast_exception", "Cannot cast " .. methods.class_of(v) .. " to java.lang.Boolean", at)
  end
  return v
end

local INTEGRAL_TYPES = { long = true, int = true, short = true, byte = true, Integer = true, Long = true }
local DOUBLE_TYPES = { double = true, float = true, Double = true }

-- a value stored into a variable of a declared type (or cast explicitly)
local function coerce(ty, v, at, explicit)
  if ty == nil or ty == "def" or ty == "var" or ty == "Object" then return v end
  if INTEGRAL_TYPES[ty] then
    if type(v) == "number" then
      if explicit then return v >= 0 and floor(v) or ceil(v) end
      if v == floor(v) then return v end
      rt_error("class_cast_exception", "Cannot cast java.lang.Double to java.lang.Long", at)
    end
    if type(v) == "string" and #v == 1 and explicit then return v:byte() end
  elseif DOUBLE_TYPES[ty] then
    if type(v) == "number" then return v end
  elseif ty == "String" then
    if type(v) == "string" or v == null then return v end
  elseif ty == "boolean" or ty == "Boolean" then
    if type(v) == "boolean" then return v end
  elseif ty == "Map" or ty == "HashMap" then
    if is_map(v) or v == null then return v end
  elseif ty == "List" or ty == "ArrayList" then
    if is_list(v) or v == null then return v end
  else
    return v
  end
  if v == null and not INTEGRAL_TYPES[ty] and not DOUBLE_TYPES[ty] and ty ~= "boolean" then return v end
  rt_error("class_cast_exception", "Cannot cast " .. methods.class_of(v) .. " to " .. ty, at)
end

-- does an expression have a floating-point static type? (so that / on
-- integral-valued operands still divides as doubles do)
local function is_double(e, scope)
  local k = e.k
  if k == "lit" then return e.double == true end
  if k == "cast" then return DOUBLE_TYPES[e.ty] == true end
  if k == "un" then return is_double(e.e, scope) end
  if k == "bin" then return is_double(e.a, scope) or is_double(e.b, scope) end
  if k == "var" then
    local s = scope
    while s do
      local slot = s.vars[e.name]
      if slot then return DOUBLE_TYPES[slot.ty] == true end
      s = s.parent
    end
  end
  return false
end

local function arith(op, a, b, at, double)
  if op == "+" and (type(a) == "string" or type(b) == "string") then
    local r = java_string(a) .. java_string(b)
    methods.charge(#r, at)
    return r
  end
  if a == null or b == null then
    rt_error("null_pointer_exception", "Cannot invoke \"Object.getClass()\" because \"callArgs[0]\" is null", at)
  end
  if type(a) ~= "number" or type(b) ~= "number" then
    rt_error("class_cast_exception", "Cannot apply [" .. op .. "] operation to types [" .. methods.class_of(a)
      .. "] and [" .. methods.class_of(b) .. "].", at)
  end
  if op == "+" then return a + b end
  if op == "-" then return a - b end
  if op == "*" then return a * b end
  local integral = not double and a == floor(a) and b == floor(b)
  if (op == "/" or op == "%") and integral and b == 0 then
    rt_error("arithmetic_exception", "/ by zero", at)
  end
  if op == "/" then
    local q = a / b
    if integral then return q >= 0 and floor(q) or ceil(q) end
    return q
  end
  return math.fmod(a, b)
end

local function compare(op, a, b, at)
  if op == "==" then return methods.equals(a, b) end
  if op == "!=" then return not methods.equals(a, b) end
  if type(a) ~= "number" or type(b) ~= "number" then
    if a == null or b == null then
      rt_error("null_pointer_exception", "Cannot invoke \"Object.getClass()\" because \"callArgs[0]\" is null", at)
    end
    rt_error("class_cast_exception", "Cannot apply [" .. op .. "] operation to types [" .. methods.class_of(a)
      .. "] and [" .. methods.class_of(b) .. "].", at)
  end
  if op == "<" then return a < b end
  if op == ">" then return a > b end
  if op == "<=" then return a <= b end
  return a >= b
end

------------------------------------------------------------------------
-- the interpreter

local Interpreter = {}
Interpreter.__index = Interpreter

local eval

local function lookup(scope, name)
  local s = scope
  while s do
    local slot = s.vars[name]
    if slot then return slot end
    s = s.parent
  end
  return nil
end

local function get_field(obj, name, e)
  if obj == null or obj == nil then
    if e.safe then return null end
    rt_error("null_pointer_exception", "cannot access method/field [" .. name .. "] from a null def reference", e.at)
  end
  if is_map(obj) then
    local v = obj[name]
    if v == nil then return null end
    return v
  end
  if is_list(obj) and name == "length" then return #obj end
  rt_error("illegal_argument_exception", "dynamic getter [" .. methods.class_of(obj) .. ", " .. name
    .. "] not found", e.at)
end

local function list_slot(list, i, at)
  if type(i) ~= "number" then
    rt_error("class_cast_exception", "Cannot cast " .. methods.class_of(i) .. " to java.lang.Number", at)
  end
  local n = #list
  local k = i < 0 and n + i or i
  if k < 0 or k >= n then
    rt_error("index_out_of_bounds_exception", "Index " .. java_string(i) .. " out of bounds for length " .. n, at)
  end
  return k + 1
end

local function get_index(obj, i, e)
  if obj == null then
    rt_error("null_pointer_exception", "Cannot invoke \"Object.getClass()\" because \"callArgs[0]\" is null", e.at)
  end
  if is_list(obj) then return obj[list_slot(obj, i, e.at)] end
  if is_map(obj) then
    local v = obj[i]
    if v == nil then return null end
    return v
  end
  rt_error("illegal_argument_exception", "Attempting to address a non-array-like type [" .. methods.class_of(obj)
    .. "] as an array.", e.at)
end

-- a place to assign: getter and setter over the target expression
function Interpreter:place(t, scope)
  if t.k == "var" then
    local slot = lookup(scope, t.name)
    if not slot then rt_error("illegal_argument_exception", "cannot resolve symbol [" .. t.name .. "]", t.at) end
    return function() return slot.v end, function(v) slot.v = coerce(slot.ty, v, t.at) end
  end
  local obj = eval(self, t.obj, scope)
  if t.k == "field" then
    if not is_map(obj) then get_field(obj, t.name, t) end
    return function() return get_field(obj, t.name, t) end, function(v) obj[t.name] = v end
  end
  local i = eval(self, t.i, scope)
  if is_list(obj) then
    local k = list_slot(obj, i, t.at)
    return function() return obj[k] end, function(v) obj[k] = v end
  end
  get_index(obj, i, t)
  return function() return get_index(obj, i, t) end, function(v) obj[i] = v end
end

local evaluators = {}

evaluators.lit = function(_, e) return e.v end
evaluators.null = function() return null end
evaluators.var = function(_, e, scope)
  if e.static then return methods.static_ref(e.name) end
  local slot = lookup(scope, e.name)
  if not slot then rt_error("illegal_argument_exception", "cannot resolve symbol [" .. e.name .. "]", e.at) end
  return slot.v
end
evaluators.field = function(self, e, scope)
  return get_field(eval(self, e.obj, scope), e.name, e)
end
evaluators.index = function(self, e, scope)
  return get_index(eval(self, e.obj, scope), eval(self, e.i, scope), e)
end
evaluators.bin = function(self, e, scope)
  local op = e.op
  if op == "&&" then return truthy(eval(self, e.a, scope), e.at) and truthy(eval(self, e.b, scope), e.at) end
  if op == "||" then return truthy(eval(self, e.a, scope), e.at) or truthy(eval(self, e.b, scope), e.at) end
  local a, b = eval(self, e.a, scope), eval(self, e.b, scope)
  if op == "==" or op == "!=" or op == "<" or op == ">" or op == "<=" or op == ">=" then
    return compare(op, a, b, e.at)
  end
  return arith(op, a, b, e.at, (op == "/" or op == "%") and (is_double(e.a, scope) or is_double(e.b, scope)))
end
evaluators.un = function(self, e, scope)
  local v = eval(self, e.e, scope)
  if e.op == "!" then return not truthy(v, e.at) end
  if type(v) ~= "number" then
    rt_error("class_cast_exception", "Cannot apply [" .. e.op .. "] operation to type [" .. methods.class_of(v)
      .. "].", e.at)
  end
  return e.op == "-" and -v or v
end
evaluators.cast = function(self, e, scope)
  return coerce(e.ty, eval(self, e.e, scope), e.at, true)
end
evaluators.cond = function(self, e, scope)
  if truthy(eval(self, e.cond, scope), e.at) then return eval(self, e.yes, scope) end
  return eval(self, e.no, scope)
end
evaluators.assign = function(self, e, scope)
  local get, set = self:place(e.target, scope)
  local v = eval(self, e.e, scope)
  if e.op then v = arith(e.op, get(), v, e.at, is_double(e.target, scope) or is_double(e.e, scope)) end
  set(v)
  return v
end
evaluators.incr = function(self, e, scope)
  local get, set = self:place(e.target, scope)
  local old = get()
  local new = arith("+", old, e.delta, e.at)
  set(new)
  return e.pre and new or old
end
evaluators.list = function(self, e, scope)
  local out = json.array()
  for i, item in ipairs(e.items) do out[i] = eval(self, item, scope) end
  return out
end
evaluators.map = function(self, e, scope)
  local out = json.object()
  for i, v in ipairs(e.values) do
    local k = eval(self, e.keys[i], scope)
    out[k] = eval(self, v, scope)
  end
  return out
end
evaluators.new = function(self, e, scope)
  local kind = CONSTRUCTIBLE[e.ty]
  local a = e.args[1] and eval(self, e.args[1], scope)
  if kind == "string" then return a and java_string(a) or "" end
  local out = kind == "list" and json.array() or json.object()
  if type(a) == "table" and a ~= null then
    for k, v in pairs(a) do
      methods.charge(8, e.at)
      out[k] = v
    end
  end
  return out
end
evaluators.call = function(self, e, scope)
  local obj = eval(self, e.obj, scope)
  if obj == null and e.safe then return null end
  local args = {}
  for i, a in ipairs(e.args) do args[i] = eval(self, a, scope) end
  return methods.call(obj, e.name, args, e.at)
end

eval = function(self, e, scope)
  return evaluators[e.k](self, e, scope)
end

-- what a statement may end with besides running on: return, break, continue
local RETURN, BREAK, CONTINUE = {}, {}, {}
local exec

-- a loop body's signal: true when the loop stops (return propagates)
local function loop_stops(signal)
  return signal == RETURN or signal == BREAK
end

function Interpreter:loop_tick(at)
  self.loops = self.loops + 1
  if self.loops > MAX_LOOP then
    rt_error("painless_error", "The maximum number of statements that can be executed in a loop has been reached.", at)
  end
end

local function exec_body(self, list, scope)
  for _, st in ipairs(list) do
    local r = exec(self, st, scope)
    if r then return r end
  end
end

local runners = {}
runners.block = function(self, st, scope) return exec_body(self, st.body, { vars = {}, parent = scope }) end
runners.expr = function(self, st, scope) eval(self, st.e, scope) end
runners["return"] = function(self, st, scope)
  self.result = st.e and eval(self, st.e, scope) or null
  return RETURN
end
runners.decl = function(self, st, scope)
  for _, d in ipairs(st.decls) do
    local v = null
    if d.init then
      v = coerce(st.ty, eval(self, d.init, scope), st.at)
    elseif INTEGRAL_TYPES[st.ty] or DOUBLE_TYPES[st.ty] then
      v = 0
    elseif st.ty == "boolean" then
      v = false
    end
    scope.vars[d.name] = { v = v, ty = st.ty }
  end
end
runners["if"] = function(self, st, scope)
  if truthy(eval(self, st.cond, scope), st.at) then
    return exec(self, st.yes, { vars = {}, parent = scope })
  elseif st.no then
    return exec(self, st.no, { vars = {}, parent = scope })
  end
end
runners.foreach = function(self, st, scope)
  local list = eval(self, st.list, scope)
  local items
  if is_list(list) then
    items = list
  elseif is_map(list) then
    items = {}
    for k in pairs(list) do items[#items + 1] = k end
  else
    rt_error("illegal_argument_exception", "Cannot iterate over [" .. methods.class_of(list) .. "]", st.at)
  end
  for i = 1, #items do
    self:loop_tick(st.at)
    local r = exec(self, st.body, { vars = { [st.name] = { v = items[i] } }, parent = scope })
    if loop_stops(r) then return r == RETURN and RETURN or nil end
  end
end
runners["for"] = function(self, st, scope)
  local inner = { vars = {}, parent = scope }
  if st.init then exec(self, st.init, inner) end
  while st.cond == nil or truthy(eval(self, st.cond, inner), st.at) do
    self:loop_tick(st.at)
    local r = exec(self, st.body, { vars = {}, parent = inner })
    if loop_stops(r) then return r == RETURN and RETURN or nil end
    if st.step then eval(self, st.step, inner) end
  end
end
runners["while"] = function(self, st, scope)
  while truthy(eval(self, st.cond, scope), st.at) do
    self:loop_tick(st.at)
    local r = exec(self, st.body, { vars = {}, parent = scope })
    if loop_stops(r) then return r == RETURN and RETURN or nil end
  end
end
runners.dowhile = function(self, st, scope)
  repeat
    self:loop_tick(st.at)
    local r = exec(self, st.body, { vars = {}, parent = scope })
    if loop_stops(r) then return r == RETURN and RETURN or nil end
  until not truthy(eval(self, st.cond, scope), st.at)
end
runners["break"] = function() return BREAK end
runners["continue"] = function() return CONTINUE end

exec = function(self, st, scope)
  self.stmt = st
  return runners[st.k](self, st, scope)
end

------------------------------------------------------------------------
-- entry points

local Program = {}
Program.__index = Program

function M.compile(src)
  if type(src) ~= "string" then error("painless.compile: source must be a string, got " .. type(src), 2) end
  local tree, perr = parser.parse(src)
  if tree then
    local ok, cerr = pcall(check_body, tree.body, { names = { ctx = true, params = true } })
    if not ok then
      if type(cerr) ~= "table" or not cerr.painless then error(cerr, 0) end
      tree, perr = nil, cerr
    end
  end
  if not tree then
    return nil, script_exception(src, "compile error", perr.offset,
      { type = "illegal_argument_exception", reason = perr.reason })
  end
  return setmetatable({ src = src, tree = tree }, Program)
end

function Program:run(ctx, params)
  local self_ = setmetatable({ loops = 0 }, Interpreter)
  methods.reset_budget()
  local root = { vars = { ctx = { v = ctx == nil and null or ctx }, params = { v = params or json.object() } } }
  local ok, err = pcall(exec_body, self_, self.tree.body, root)
  if not ok then
    if type(err) ~= "table" or not err.painless_rt then error(err, 0) end
    local st = self_.stmt
    return nil, script_exception(self.src, "runtime error", err.at or (st and st.at) or 0,
      { type = err.type, reason = err.reason })
  end
  return self_.result == nil and null or self_.result
end

return M
