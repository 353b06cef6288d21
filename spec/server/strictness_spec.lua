-- What Elasticsearch refuses, the dev server refuses the same way: unknown
-- body keys, and error bodies whose keys come in ES's order on every start.
local devserver = require("spec.support.devserver")
local http = require("spec.support.http")

describe("espipe serve #server: strictness", function()
  local server, url
  setup(function()
    server = devserver.start()
    url = server.url
    http.json("PUT", url .. "/t/_doc/1?refresh=true", { a = 1 })
  end)
  teardown(function() server.stop() end)

  it("refuses an unknown search body key instead of matching everything", function()
    local status, body = http.json("POST", url .. "/t/_search", '{"qurey": {"term": {"a": 2}}}')
    assert.equal(400, status)
    assert.equal("parsing_exception", body.error.type)
    assert.equal("Unknown key for a START_OBJECT in [qurey].", body.error.reason)
    assert.equal(1, body.error.line)
    assert.equal(11, body.error.col)
    status, body = http.json("POST", url .. "/t/_search", { sizee = 1 })
    assert.equal(400, status)
    assert.equal("Unknown key for a VALUE_NUMBER in [sizee].", body.error.reason)
  end)

  it("refuses a _count body with anything but a query", function()
    local status, body = http.json("POST", url .. "/t/_count", { qurey = { match_all = {} } })
    assert.equal(400, status)
    assert.equal("parsing_exception", body.error.type)
    assert.equal("request does not support [qurey]", body.error.reason)
  end)

  it("writes error objects root_cause, type, reason first", function()
    local res = http.request{ method = "GET", url = url .. "/missing/_doc/1" }
    assert.equal(404, res.status)
    assert.matches('^{"error":{"root_cause":%[{"type":"index_not_found_exception","reason":"no such index %[missing%]",'
      .. '"resource.type":"index_or_alias","resource.id":"missing","index_uuid":"_na_","index":"missing"}%],'
      .. '"type":"index_not_found_exception","reason":', res.body)
    assert.matches('},"status":404}$', res.body)
  end)

  it("writes a document's keys in ES's order", function()
    local res = http.request{ method = "GET", url = url .. "/t/_doc/1" }
    assert.equal('{"_index":"t","_id":"1","_version":1,"_seq_no":0,"_primary_term":1,"found":true,'
      .. '"_source":{"a":1}}', res.body)
  end)
end)
