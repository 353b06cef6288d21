-- examples/load_enrich.sh (the batch transform examples/enrich_batch.lua)
-- runs as README shows it against the dev server: every sample log is
-- indexed enriched, dropped, or dead-lettered for its unknown host.
local devserver = require "support.devserver"
local json = require "espipe.json"
local S = require "pipeline.support"
local J = require "pipeline.jobs"

describe("examples/load_enrich.sh #server", function()
  local es = devserver.env { nodes = 1 }
  setup(es.start) teardown(es.stop) before_each(es.fresh)

  it("enriches from the hosts index, drops health checks, dead-letters unknown hosts", function()
    local dl = es.dir .. "/dl.ndjson"
    local code = J.exec("ES_URL=" .. es.server.url .. " LUA=lua5.4 ESPIPE_FLAGS='--quiet --json --dead-letter "
      .. dl .. "' examples/load_enrich.sh 2000 >" .. S.q(es.dir .. "/out"))
    assert.equal(1, code) -- the db-1 documents were dead-lettered
    local s = json.decode(S.read(es.dir .. "/out"))
    local docs, n = J.dump(es.client, "logs-enriched")
    assert.equal(s.ok, n)
    local teams = { ["web-1"] = "shop", ["web-2"] = "shop", ["web-3"] = "search" }
    for _, doc in pairs(docs) do
      assert.equal(teams[doc.host.name], doc.host.team)
      assert.not_equal("/health", doc.path)
    end
    local dead = 0
    for line in S.read(dl .. ".transform"):gmatch("[^\n]+") do
      local r = json.decode(line)
      assert.equal("unknown host db-1", r.error)
      assert.equal("db-1", r.source.host)
      dead = dead + 1
    end
    assert.equal(dead, s.transform_errors)
    assert.is_true(s.dropped > 0 and dead > 0)
    assert.equal(2000, n + s.dropped + dead)
  end)
end)
