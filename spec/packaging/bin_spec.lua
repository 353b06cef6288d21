-- bin/espipe finds its checkout also when it is run through a symlink
-- (~/bin/espipe -> checkout/bin/espipe), from any directory.
local pkg = require "packaging.support"
local q, run = pkg.q, pkg.run

describe("bin/espipe", function()
  local tmp
  before_each(function() tmp = pkg.tmpdir() end)
  after_each(function() pkg.remove(tmp) end)

  local interp = jit and "luajit" or "lua" .. _VERSION:match("%d+%.%d+")

  it("runs through a symlink, with the checkout's modules", function()
    local checkout = run("pwd"):match("[^\n]+")
    run("mkdir " .. q(tmp .. "/bin") .. " && ln -s " .. q(checkout .. "/bin/espipe") .. " " .. q(tmp .. "/bin/espipe"))
    local link = q(tmp .. "/bin/espipe")
    assert.equal(run(interp .. " bin/espipe --version"), run("cd / && " .. interp .. " " .. link .. " --version"))
    assert.equal(run(interp .. " bin/espipe route --shards 5 x user-1"),
      run("cd / && " .. interp .. " " .. link .. " route --shards 5 x user-1"))
    -- and as a command on PATH (the shebang), from the link's own directory
    assert.matches("^espipe %d+%.%d+%.%d+ %(Lua 5%.4%)\n$", run("cd " .. q(tmp .. "/bin") .. " && PATH=.:$PATH espipe --version"))
  end)
end)
