-- The OpenResty example run from a checkout inside a private directory
-- (mode 0700, as `mktemp -d` makes and as many home directories are): nginx
-- started as root must run its workers as the invoking user, or they cannot
-- read the Lua tree ("module 'espipe.client' not found").
local devserver = require "support.devserver"
local example = require "openresty.example"

local q, sh = example.q, example.sh

describe("OpenResty example from a 0700 directory #server", function()
  local es, app, private

  after_each(function()
    if app then app.stop(); app = nil end
    if es then es.stop(); es = nil end
    if private then sh("rm -rf " .. q(private)); private = nil end
  end)

  it("ships every event (the workers can read the tree)", function()
    private = example.mktemp()
    assert.equal("700", (io.popen("stat -c %a " .. q(private)):read("*l")))
    -- a copy of what nginx reads, not symlinks into the (readable) original
    local root = private .. "/checkout"
    assert(sh("mkdir -p " .. q(root .. "/examples") .. " " .. q(root .. "/build")
      .. " && cp -R lua " .. q(root .. "/lua")
      .. " && cp -R examples/openresty " .. q(root .. "/examples/openresty")
      .. " && cp -R build/luajit " .. q(root .. "/build/luajit")))
    es = devserver.start{ cluster = true }
    example.reset(es, "nginx-access")
    app = example.start(es.url, { root = root })
    example.hit(app, 50)
    local s = example.settled(app, 50, 30)
    assert.same({ 50, 0, 0 }, { s.shipped, s.failed, s.dropped })
    assert.equal(50, example.count(es, "nginx-access"))
    assert.is_nil(app.error_log():find("not found", 1, true), app.error_log())
  end)
end)
