local options = require("espipe.client.options")

describe("espipe.client.options", function()
  it("accepts known keys, from a set or a list", function()
    assert.are.same({ a = 1 }, options.check({ a = 1 }, { a = true, b = true }, "f"))
    assert.are.same({ b = 2 }, options.check({ b = 2 }, { "a", "b" }, "f"))
  end)

  it("names an unknown key and the nearest valid one", function()
    local ok, err = pcall(options.check, { file = "x" }, { "files", "index", "format" }, "espipe.load")
    assert.is_false(ok)
    assert.matches("espipe.load: unknown option 'file' %(did you mean 'files'%?%)", err)
  end)

  it("gives no suggestion when nothing is close", function()
    local ok, err = pcall(options.check, { zzzzzz = 1 }, { "index", "body" }, "client")
    assert.is_false(ok)
    assert.matches("client: unknown option 'zzzzzz'$", err)
  end)

  it("reports the first unknown key in sorted order, whatever the table order", function()
    local ok, err = pcall(options.check, { zeta = 1, alpha = 1, index = 1 }, { "index" }, "x")
    assert.is_false(ok)
    assert.matches("unknown option 'alpha'", err)
  end)

  it("raises at the caller's caller", function()
    local function api(opts) options.check(opts, { "a" }, "api", 2) end
    local ok, err = pcall(function() api({ b = 1 }) end)  -- this line is blamed
    assert.is_false(ok)
    assert.matches("options_spec.lua:%d+: api: unknown option 'b'", err)
  end)

  it("rejects a non-table", function()
    assert.has_error(function() options.check("x", { "a" }, "api") end, "api expects an options table, got string")
  end)
end)
