-- README's five-minute tour (examples/tour.lua) runs as written against the dev server.
local devserver = require "support.devserver"

describe("examples/tour.lua #server", function()
  local es = devserver.env { cluster = true }
  setup(es.start) teardown(es.stop) before_each(es.fresh)

  it("prints what README says it prints", function()
    local p = assert(io.popen("ES_URL=" .. es.server.url .. " lua5.4 examples/tour.lua 2>&1; echo rc=$?"))
    local out = p:read("*a")
    p:close()
    assert.matches("rc=0", out, 1, true)
    assert.matches("Dune\t1965\t[]", out, 1, true)
    assert.matches("nil\t404 not_found: document not found (GET /books/_doc/nope)", out, 1, true)
    assert.matches("scanned\t99501", out, 1, true)
    assert.matches("indexed\t50000\tdropped\t50000", out, 1, true)
  end)
end)
