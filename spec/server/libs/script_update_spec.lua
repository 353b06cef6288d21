-- espipe.server.script_update's hook for _update_by_query: a script run on
-- a ctx in place, its op normalised, its failures as ES answers them.
local json = require("espipe.server.json")
local script_update = require("espipe.server.script_update")

local function ctx_of(source)
  return { _index = "i", _id = "1", _version = 1, op = "index", _source = json.decode(source) }
end

describe("server script_update.hook", function()
  it("runs an inline script with params on the ctx", function()
    local ctx = ctx_of('{"n":1}')
    assert.is_true(script_update.hook({ source = "ctx._source.n += params.by", params = { by = 2 } }, ctx))
    assert.same({ 3, "index" }, { ctx._source.n, ctx.op })
    ctx = ctx_of('{"n":1}')
    assert.is_true(script_update.hook("ctx.op = 'none'", ctx))
    assert.equal("noop", ctx.op)
    ctx = ctx_of('{"n":1}')
    assert.is_true(script_update.hook("ctx.op = 'delete'", ctx))
    assert.equal("delete", ctx.op)
  end)

  it("answers compile and runtime errors with the script_exception itself", function()
    local ok, status, body = script_update.hook("ctx._source.l.removeIf(x -> x)", ctx_of("{}"))
    assert.is_nil(ok)
    assert.equal(400, status)
    assert.same({ "script_exception", "compile error" }, { body.error.type, body.error.reason })
    ok, status, body = script_update.hook("ctx._source.a.b = 1", ctx_of("{}"))
    assert.same({ 400, "runtime error", "null_pointer_exception" },
      { status, body.error.reason, body.error.caused_by.type })
    assert.is_nil(ok)
    ok, status, body = script_update.hook({ id = "nope" }, ctx_of("{}"))
    assert.same({ 404, "resource_not_found_exception" }, { status, body.error.type })
    assert.is_nil(ok)
    ok, status, body = script_update.hook({ source = "1", lang = "expression" }, ctx_of("{}"))
    assert.same({ 400, "script_lang not supported [expression]" }, { status, body.error.reason })
    assert.is_nil(ok)
  end)
end)
