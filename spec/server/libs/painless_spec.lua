-- espipe.server.painless: the Painless subset's parser and interpreter, and
-- ES's script_exception shape for what lies outside it.
local json = require("espipe.server.json")
local painless = require("espipe.server.painless")

-- runs src on ctx = { _source = decoded source, op = "index" }; returns ctx
local function run(src, source, params)
  local program, err = painless.compile(src)
  assert(program, err and json.encode(err))
  local ctx = { _source = json.decode(source or "{}"), op = "index" }
  local _, rerr = program:run(ctx, params and json.decode(params))
  assert(rerr == nil, rerr and json.encode(rerr))
  return ctx
end

local function source_after(src, source, params)
  return json.encode(run(src, source, params)._source)
end

local function value(src, params)
  local program = assert(painless.compile(src))
  return (program:run({}, params and json.decode(params)))
end

describe("server painless", function()
  it("assigns, increments and compounds source fields, with dots and ['x']", function()
    assert.equal('{"n":3}', source_after("ctx._source.n += 2", '{"n":1}'))
    assert.equal('{"n":0}', source_after("ctx._source.n -= 1", '{"n":1}'))
    assert.equal('{"n":2}', source_after("ctx._source.n++", '{"n":1}'))
    assert.equal('{"n":2}', source_after("++ctx._source['n']", '{"n":1}'))
    assert.equal('{"a":{"b":"x"}}', source_after("ctx._source.a.b = 'x'", '{"a":{}}'))
    assert.equal('{"a":{"b":5}}', source_after("ctx._source['a']['b'] = params.v", '{"a":{}}', '{"v":5}'))
    assert.equal('{"n":6}', source_after("ctx._source.n *= params.k; ctx._source.n /= 2", '{"n":3}', '{"k":4}'))
  end)

  it("lists and maps: add, remove, contains, size, containsKey, literals", function()
    assert.equal('{"tags":["a","b"]}', source_after("ctx._source.tags.add(params.t)", '{"tags":["a"]}', '{"t":"b"}'))
    assert.equal('{"tags":[]}', source_after("ctx._source.tags.remove(0)", '{"tags":["a"]}'))
    assert.equal('{"tags":["b"]}', source_after(
      "if (ctx._source.tags.contains('a')) { ctx._source.tags.remove(ctx._source.tags.indexOf('a')) }",
      '{"tags":["a","b"]}'))
    local src = run("ctx._source.m = [:]; ctx._source.m.k = 1; ctx._source.s = ctx._source.m.size()")._source
    assert.same({ 1, 1 }, { src.m.k, src.s })
    assert.equal(true, value("Map m = ['a': 1]; return m.containsKey('a') && !m.containsKey('b')"))
    assert.equal(3, value("def l = [1, 2]; l.add(3); return l.size()"))
    assert.equal('{"l":[1]}', source_after("ctx._source.l = new ArrayList(); ctx._source.l.add(1)", "{}"))
    assert.equal('{}', source_after("ctx._source.remove('gone')", '{"gone":1}'))
  end)

  it("ctx.op, if/else, comparisons, boolean logic, null checks", function()
    assert.equal("noop", run("if (ctx._source.n == params.n) { ctx.op = 'noop' } else { ctx._source.n = params.n }",
      '{"n":1}', '{"n":1}').op)
    assert.equal("delete", run("if (ctx._source.n >= 1 && ctx._source.n < 5 || false) ctx.op = 'delete'",
      '{"n":1}').op)
    assert.equal("set", run("if (ctx._source.x == null) { ctx._source.x = 'set' }", '{"n":1}')._source.x)
    assert.equal(true, run("ctx._source.b = ctx._source.a != null ? true : false", '{"a":0}')._source.b)
    assert.equal(json.null, value("return params.missing?.length()", "{}"))
  end)

  it("declarations, string concatenation, for loops, division as longs do", function()
    assert.equal("n=3!", value("long n = 1; n += 2; String s = 'n=' + n; return s + '!'"))
    assert.equal(6, value("int t = 0; for (x in params.l) { t += x } return t", '{"l":[1,2,3]}'))
    assert.equal(6, value("def t = 0; for (def x : params.l) { t += x; } return t;", '{"l":[1,2,3]}'))
    assert.equal(10, value("int t = 0; for (int i = 0; i < 5; i++) { t = t + i } return t"))
    assert.equal(2, value("return 5 / 2"))
    assert.equal(2.5, value("double d = 5; return d / 2.0 + 0.5 - 0.5 + 0.0 == 2.5 ? 2.5 : 0"))
    assert.equal(3, value("return (long) 3.7"))
    assert.equal("[1, 2]", value("return [1, 2].toString()"))
    assert.equal("ab", value("return 'AB'.toLowerCase()"))
    assert.equal(7, value("return Math.max(3, 7)"))
    assert.equal(42, value("return Integer.parseInt('42')"))
  end)

  it("compile errors are script_exceptions naming the construct, with ES's position", function()
    local p, err, _ = painless.compile("ctx._source.n += 1; x.add(1)")
    assert.is_nil(p)
    assert.same({ "script_exception", "compile error", "painless" }, { err.type, err.reason, err.lang })
    assert.equal("cannot resolve symbol [x]", err.caused_by.reason)
    assert.equal(20, err.position.offset)
    _, err = painless.compile("def l = params.l; l.removeIf(v -> v == 1)")
    assert.matches("does not support lambdas", err.caused_by.reason)
    assert.equal(31, err.position.offset)
    assert.equal("illegal_argument_exception", err.caused_by.type)
    -- the snippet: at most 25 characters either side of the offset, "... " where cut
    assert.equal("... = params.l; l.removeIf(v -> v == 1)", err.script_stack[1])
    assert.equal(string.rep(" ", 4 + 25) .. "^---- HERE", err.script_stack[2])
    assert.same({ offset = 31, start = 6, ["end"] = 41 }, err.position)
    _, err = painless.compile("while (true) {}")
    assert.matches("does not support while loops", err.caused_by.reason)
    _, err = painless.compile("ctx._source.n ++ 1")
    assert.matches("^unexpected token %['1'%]", err.caused_by.reason)
    _, err = painless.compile("new Date()")
    assert.matches("cannot create a %[Date%]", err.caused_by.reason)
    _, err = painless.compile("return " .. string.rep("(", 5000) .. "1" .. string.rep(")", 5000))
    assert.matches("does not nest deeper than 256 levels", err.caused_by.reason)
    _, err = painless.compile(string.rep("{", 5000) .. string.rep("}", 5000))
    assert.matches("does not nest deeper than 256 levels", err.caused_by.reason)
    assert.equal(1, value("return " .. string.rep("(", 100) .. "1" .. string.rep(")", 100)))
    assert.has_error(function() painless.compile(nil) end, "painless.compile: source must be a string, got nil")
  end)

  it("runtime errors are script_exceptions with the place and the Java exception", function()
    local p, _ = assert(painless.compile("def a = 1;\nctx._source.missing.x = 1"))
    local err
    _, err = p:run({ _source = {} }, {})
    assert.same({ "script_exception", "runtime error" }, { err.type, err.reason })
    assert.equal("null_pointer_exception", err.caused_by.type)
    assert.equal("cannot access method/field [x] from a null def reference", err.caused_by.reason)
    assert.same({ offset = 30, start = 5, ["end"] = 36 }, err.position)
    assert.equal("...  = 1;\nctx._source.missing.x = 1", err.script_stack[1])
    _, err = assert(painless.compile("ctx._source.n += 1")):run({ _source = {} }, {})
    assert.equal("null_pointer_exception", err.caused_by.type)
    _, err = assert(painless.compile("return [1][3]")):run({}, {})
    assert.equal("Index 3 out of bounds for length 1", err.caused_by.reason)
    _, err = assert(painless.compile("return 'a'.nope()")):run({}, {})
    assert.equal("dynamic method [java.lang.String, nope/0] not found", err.caused_by.reason)
    _, err = assert(painless.compile("for (;;) {}")):run({}, {})
    assert.equal("painless_error", err.caused_by.type)
    _, err = assert(painless.compile("long n = 'x'")):run({}, {})
    assert.equal("class_cast_exception", err.caused_by.type)
  end)
end)
