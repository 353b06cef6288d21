-- One version, in lua/espipe/init.lua: `espipe --version` prints it with the
-- interpreter that runs the command, and the client's user-agent carries it.
local pkg = require "packaging.support"

describe("espipe --version", function()
  local interp = jit and "luajit" or "lua" .. _VERSION:match("%d+%.%d+")
  local version = require("espipe")._VERSION

  it("prints espipe._VERSION and the Lua running it", function()
    assert.matches("^espipe %d+%.%d+%.%d+$", version)
    local running = jit and jit.version or _VERSION
    assert.equal(version .. " (" .. running .. ")\n", pkg.run(interp .. " bin/espipe --version"))
  end)

  it("is the version the client and its HTTP transport report", function()
    local number = version:match("[%d.]+$")
    assert.equal(number, require("espipe.client")._VERSION)
    assert.equal(number, require("espipe.transport.curl")._VERSION)
  end)
end)
