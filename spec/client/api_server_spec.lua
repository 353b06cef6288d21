-- The document and index APIs (espipe.client.api, .indices) against the dev server.
local json = require("espipe.json")

describe("client APIs against espipe serve #server", function()
  local server, c = require("spec.client.support.fixtures").chaos_server(), nil
  setup(function() c = server.start() end)
  teardown(server.stop)

  it("document APIs round-trip and report errors in one line", function()
    assert(c.indices:create{ index = "docs", settings = { number_of_shards = 2 } })
    assert.are.equal(true, c.indices:exists{ index = "docs" })
    local r = assert(c:index{ index = "docs", id = "a/1", body = { n = 1, big = 9007199254740993, tags = json.array() }, refresh = true })
    assert.are.equal("created", r.result)
    local g = assert(c:get{ index = "docs", id = "a/1" })
    assert.are.equal(9007199254740993, g._source.big)
    assert.is_true(json.is_array(g._source.tags))
    assert.are.equal(true, c:exists{ index = "docs", id = "a/1" })
    assert.are.equal(false, c:exists{ index = "docs", id = "nope" })
    local _, err = c:create{ index = "docs", id = "a/1", body = { n = 2 } }
    assert.are.equal(409, err.status)
    assert.are.equal("version_conflict_engine_exception", err.type)
    r = assert(c:update{ index = "docs", id = "a/1", doc = { n = 1 } })
    assert.are.equal("noop", r.result)
    r = assert(c:update{ index = "docs", id = "b", doc = { n = 5 }, doc_as_upsert = true })
    assert.are.equal("created", r.result)
    _, err = c:index{ index = "docs", id = "a/1", body = { n = 3 }, if_seq_no = 999, if_primary_term = 1 }
    assert.are.equal(409, err.status)
    local m = assert(c:mget{ index = "docs", ids = { "a/1", "zzz" } })
    assert.are.equal(true, m.docs[1].found)
    assert.are.equal(false, m.docs[2].found)
    assert(c:refresh{ index = "docs" })
    assert.are.equal(2, assert(c:count{ index = "docs" }).count)
    assert.are.equal("deleted", assert(c:delete{ index = "docs", id = "b" }).result)
    _, err = c:get{ index = "missing", id = "1" }
    assert.are.equal("404 index_not_found_exception: no such index [missing] (GET /missing/_doc/1)", tostring(err))
    assert(c.indices:delete{ index = "docs" })
  end)
end)
