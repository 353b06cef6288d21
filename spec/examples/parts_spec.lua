-- examples/parts.sh runs as written against the dev server: three parts of
-- one reindex as three processes, their checkpoint in the dev server, and
-- `espipe job status` saying every part is done.
local devserver = require "support.devserver"
local J = require "pipeline.jobs"

describe("examples/parts.sh #server", function()
  local env = devserver.env {}
  setup(env.start) teardown(env.stop) before_each(env.fresh)

  it("copies an index in 3 parts and reports them done", function()
    local bi = env.client:bulk_indexer { index = "parts-src", batch_docs = 500 }
    for i = 1, 1500 do bi:index({ n = i }, { id = "d" .. i }) end
    assert.equal(1500, bi:close().ok)
    assert(env.client:refresh { index = "parts-src" })
    local p = assert(io.popen("ES_URL=" .. env.server.url .. " sh examples/parts.sh parts-src parts-dst 3 2>&1; echo rc=$?"))
    local out = p:read("*a")
    p:close()
    assert.matches("rc=0", out, 1, true)
    assert.matches("3 of 3 parts done", out, 1, true)
    local src, n = J.dump(env.client, "parts-src")
    local dst, m = J.dump(env.client, "parts-dst")
    assert.equal(n, m)
    assert.same(src, dst)
  end)
end)
