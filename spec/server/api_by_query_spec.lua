-- _delete_by_query and _update_by_query: what was refreshed and matches goes,
-- a document changed since the refresh is a version conflict, tasks keep
-- the response of wait_for_completion=false.
local devserver = require("spec.support.devserver")
local http = require("spec.support.http")

describe("espipe serve #server: by query", function()
  local server = devserver.start()
  local url = server.url
  teardown(function() server.stop() end)

  before_each(function()
    http.json("DELETE", url .. "/q")
    http.json("PUT", url .. "/q", { settings = { refresh_interval = "-1" } })
    http.bulk(url, {
      { index = { _index = "q", _id = "1" } }, { user = "kimchy" },
      { index = { _index = "q", _id = "2" } }, { user = "junk" },
      { index = { _index = "q", _id = "3" } }, { user = "kimchy" },
    })
    http.json("POST", url .. "/q/_refresh")
  end)

  it("deletes what the query matches", function()
    local status, body = http.json("POST", url .. "/q/_delete_by_query?refresh=true",
      { query = { term = { user = "kimchy" } } })
    assert.equal(200, status)
    assert.equal(2, body.deleted)
    assert.equal(2, body.total)
    assert.same({}, body.failures)
    local _, count = http.json("GET", url .. "/q/_count")
    assert.equal(1, count.count)
  end)

  it("stops at a document changed since the refresh, or counts it with conflicts=proceed", function()
    http.json("PUT", url .. "/q/_doc/1", { user = "kimchy", v = 2 })
    local status, body = http.json("POST", url .. "/q/_delete_by_query", { query = { match_all = {} } })
    assert.equal(409, status)
    assert.equal(0, body.deleted)
    assert.equal(1, body.version_conflicts)
    assert.equal("version_conflict_engine_exception", body.failures[1].cause.type)
    assert.matches("^%[1%]: version conflict, required seqNo %[0%]", body.failures[1].cause.reason)
    status, body = http.json("POST", url .. "/q/_delete_by_query?conflicts=proceed&refresh=true",
      { query = { match_all = {} } })
    assert.equal(200, status)
    assert.equal(2, body.deleted)
    assert.equal(1, body.version_conflicts)
    assert.equal(200, (http.json("GET", url .. "/q/_doc/1")))
  end)

  it("reindexes matches in place, honours max_docs, and keeps a task's response", function()
    local status, body = http.json("POST", url .. "/q/_update_by_query?max_docs=2&refresh=true", {})
    assert.equal(200, status)
    assert.equal(2, body.updated)
    local _, doc = http.json("GET", url .. "/q/_doc/1")
    assert.equal(2, doc._version)
    status, body = http.json("POST", url .. "/q/_update_by_query?wait_for_completion=false&refresh=true", {})
    assert.equal(200, status)
    assert.matches("^[^:]+:%d+$", body.task)
    local task
    status, task = http.json("GET", url .. "/_tasks/" .. body.task)
    assert.equal(200, status)
    assert.is_true(task.completed)
    assert.equal(3, task.response.updated)
    assert.equal(404, (http.json("GET", url .. "/_tasks/espipe:999")))
  end)

  it("splits the work into slices=N and reports each", function()
    local status, body = http.json("POST", url .. "/q/_update_by_query?slices=2", {})
    assert.equal(200, status)
    assert.equal(3, body.updated)
    assert.equal(2, #body.slices)
    assert.equal(3, body.slices[1].updated + body.slices[2].updated)
    assert.equal(1, body.slices[2].slice_id)
    status = http.json("POST", url .. "/q/_delete_by_query?slices=x", {})
    assert.equal(400, status)
  end)

  it("refuses unknown body keys and scripts it cannot run", function()
    local status, body = http.json("POST", url .. "/q/_delete_by_query", { qurey = { match_all = {} } })
    assert.equal(400, status)
    assert.equal("parsing_exception", body.error.type)
    -- (a lambda: outside the Painless subset the server interprets)
    status, body = http.json("POST", url .. "/q/_update_by_query",
      { script = { source = "ctx._source.x = ctx._source.keySet().stream().map(k -> k)" } })
    assert.equal(400, status)
    assert.equal("script_exception", body.error.type)
  end)
end)
