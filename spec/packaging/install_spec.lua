-- The source rocks `make rock` makes install offline with LuaRocks into a
-- fresh tree, and the installed `espipe` command works there: once for Lua 5.4
-- and once for LuaJIT (LuaRocks' 5.1 tree configured as README's Install
-- section says). Slow (two C builds): tagged #packaging, run on Lua 5.4 only.
local pkg = require "packaging.support"
local q, sh, run = pkg.q, pkg.sh, pkg.run

local on_lua54 = _VERSION == "Lua 5.4" and not jit
local VERSION = assert(require("espipe")._VERSION:match("^espipe (%d+%.%d+%.%d+)$"))
local ROCK = "espipe-scm-1.src.rock"

describe("make rock and luarocks install #packaging", function()
  if not on_lua54 then
    pending("runs on Lua 5.4 only: it builds the rock once per Lua itself")
    return
  end
  local tmp
  setup(function()
    tmp = pkg.tmpdir()
    run("make rock ROCK_DIR=" .. q(tmp .. "/rocks"))
  end)
  teardown(function() pkg.remove(tmp) end)

  local expected_route = run("bin/espipe route --shards 5 x user-1")

  it("writes the release rockspec: the scm one with the version of espipe._VERSION and its tag", function()
    local release = pkg.read(tmp .. "/rocks/espipe-" .. VERSION .. "-1.rockspec")
    local scm = pkg.read("espipe-scm-1.rockspec")
    local url = assert(scm:match('\n  url = "(git%+https://[^"]+)",\n'))
    assert.equal(scm:gsub('\nversion = "scm%-1"\n', '\nversion = "' .. VERSION .. '-1"\n')
      :gsub('\n  url = "[^"]+",\n', '\n  url = "' .. url .. '",\n  tag = "v' .. VERSION .. '",\n'), release)
    assert(sh("luarocks lint " .. q(tmp .. "/rocks/espipe-" .. VERSION .. "-1.rockspec")))
    -- a source rock holds the rockspec and the committed sources, as `luarocks pack` clones them
    local listing = run("unzip -l " .. q(tmp .. "/rocks/espipe-" .. VERSION .. "-1.src.rock"))
    assert.matches(" espipe%-" .. VERSION .. "%-1%.rockspec\n", listing)
    assert.matches(" espipe/lua/espipe/cli/init%.lua\n", listing)
    assert.not_matches(" espipe/%.git", listing)
  end)

  local function install(tree, env, lua_version)
    local ok, out = sh("cd " .. q(tmp) .. " && " .. env .. " luarocks --lua-version=" .. lua_version
      .. " install --tree " .. q(tree) .. " rocks/" .. ROCK)
    assert(ok, out)
    return tree .. "/bin/espipe"
  end

  it("installs on Lua 5.4 into a tree, and that tree's espipe runs Lua 5.4 outside the checkout", function()
    local espipe = install(tmp .. "/tree54", "", "5.4")
    assert.equal("espipe " .. VERSION .. " (Lua 5.4)\n", run("cd / && " .. q(espipe) .. " --version"))
    assert.equal(expected_route, run("cd / && " .. q(espipe) .. " route --shards 5 x user-1"))
  end)

  it("installs for LuaJIT (LuaRocks' 5.1 tree with lua_interpreter = luajit), and its espipe runs LuaJIT", function()
    local config = tmp .. "/luajit-config.lua"
    pkg.write(config, 'lua_interpreter = "luajit"\nvariables = { LUA_INCDIR = "/usr/include/luajit-2.1" }\n')
    local espipe = install(tmp .. "/treejit", "LUAROCKS_CONFIG=" .. q(config), "5.1")
    assert.matches("^espipe " .. VERSION:gsub("%.", "%%.") .. " %(LuaJIT 2%.1[^)]*%)\n$",
      run("cd / && " .. q(espipe) .. " --version"))
    assert.equal(expected_route, run("cd / && " .. q(espipe) .. " route --shards 5 x user-1"))
  end)
end)
