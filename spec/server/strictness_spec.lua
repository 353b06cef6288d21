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

describe("espipe serve #server: index expressions", function()
  local server, url
  setup(function()
    server = devserver.start()
    url = server.url
    http.json("PUT", url .. "/index", { aliases = { alias = {} } })
    http.json("PUT", url .. "/index2")
  end)
  teardown(function() server.stop() end)

  it("never deletes an index through an alias", function()
    local status = http.json("DELETE", url .. "/alia*")
    assert.equal(200, status)
    local body
    assert.equal(200, (http.json("GET", url .. "/index")))
    status, body = http.json("DELETE", url .. "/alia*?allow_no_indices=false")
    assert.equal(404, status)
    assert.equal("index_not_found_exception", body.error.type)
    status = http.json("DELETE", url .. "/alias")
    assert.equal(400, status)
    assert.equal(200, (http.json("GET", url .. "/index")))
  end)

  it("closes and opens an index; a closed index refuses searches", function()
    assert.equal(200, (http.json("POST", url .. "/index2/_close")))
    local status, body = http.json("POST", url .. "/index2/_search", {})
    assert.equal(400, status)
    assert.equal("index_closed_exception", body.error.type)
    status = http.json("POST", url .. "/index*/_search", {})
    assert.equal(200, status)
    assert.equal(200, (http.json("POST", url .. "/index2/_open")))
    assert.equal(200, (http.json("POST", url .. "/index2/_search", {})))
  end)

  it("resolves date math names", function()
    local status, body = http.json("PUT", url .. "/%3Clogs-%7B2022-12-31%7C%7C%2Fd%7Byyyy-MM-dd%7D%7D%3E")
    assert.equal(200, status)
    assert.equal("logs-2022-12-31", body.index)
    assert.equal(200, (http.json("GET", url .. "/logs-2022-12-31")))
    local today = os.date("!%Y.%m.%d")
    http.json("PUT", url .. "/logs-" .. today)
    status = http.json("POST", url .. "/%3Clogs-%7Bnow%2Fd%7D%3E/_search", {})
    assert.equal(200, status)
  end)
end)

describe("espipe serve #server: mappings and aliases", function()
  local server = devserver.start()
  local url = server.url
  teardown(function() server.stop() end)

  it("refuses invalid alias names and alias names of indices", function()
    http.json("PUT", url .. "/ix")
    http.json("PUT", url .. "/foo")
    local status, body = http.json("PUT", url .. "/ix/_alias/bad*")
    assert.equal(400, status)
    assert.equal("invalid_alias_name_exception", body.error.type)
    status, body = http.json("PUT", url .. "/ix/_alias/foo")
    assert.equal(400, status)
    assert.matches("an index or data stream exists with the same name", body.error.reason)
  end)

  it("reads dotted property names as objects, refuses empty names and types; a refused put changes nothing", function()
    http.json("PUT", url .. "/mp")
    assert.equal(200, (http.json("PUT", url .. "/mp/_mapping", { properties = { ["sub.f"] = { type = "text" } } })))
    local _, m = http.json("GET", url .. "/mp/_mapping")
    assert.equal("text", m.mp.mappings.properties.sub.properties.f.type)
    local status, body = http.json("PUT", url .. "/mp/_mapping",
      { properties = { ok = { type = "keyword" }, [""] = { type = "keyword" } } })
    assert.equal(400, status)
    assert.equal("illegal_argument_exception", body.error.type)
    _, m = http.json("GET", url .. "/mp/_mapping")
    assert.is_nil(m.mp.mappings.properties.ok)
    status, body = http.json("PUT", url .. "/mp/_mapping", { _doc = { properties = { x = { type = "keyword" } } } })
    assert.equal(400, status)
    assert.equal("Types cannot be provided in put mapping requests", body.error.reason)
  end)
end)

describe("espipe serve #server: document reads", function()
  local server = devserver.start()
  local url = server.url
  teardown(function() server.stop() end)
  http.json("PUT", url .. "/d", { settings = { refresh_interval = "-1" },
    mappings = { properties = { count = { type = "integer", store = true } } } })
  http.json("PUT", url .. "/d/_doc/1", { count = 1, other = "x" })
  http.json("PUT", url .. "/nosrc", { mappings = { _source = { enabled = false } } })
  http.json("PUT", url .. "/nosrc/_doc/1", { a = 1 })

  it("reads only refreshed documents with realtime=false", function()
    assert.equal(404, (http.json("GET", url .. "/d/_doc/1?realtime=false")))
    assert.equal(200, (http.json("GET", url .. "/d/_doc/1")))
    local _, body = http.json("POST", url .. "/d/_mget?realtime=false", { ids = { "1" } })
    assert.is_false(body.docs[1].found)
    assert.equal(200, (http.json("GET", url .. "/d/_doc/1?realtime=false&refresh=true")))
  end)

  it("answers a GET with another version as a conflict", function()
    local status, body = http.json("GET", url .. "/d/_doc/1?version=7")
    assert.equal(409, status)
    assert.equal("version_conflict_engine_exception", body.error.type)
    assert.equal(200, (http.json("GET", url .. "/d/_doc/1?version=1")))
  end)

  it("returns stored fields, and the source only when asked for", function()
    local _, body = http.json("GET", url .. "/d/_doc/1?stored_fields=count,other")
    assert.same({ count = { 1 } }, body.fields)
    assert.is_nil(body._source)
    _, body = http.json("GET", url .. "/d/_doc/1?stored_fields=count&_source=true")
    assert.equal("x", body._source.other)
  end)

  it("keeps no source for _source.enabled: false", function()
    local _, body = http.json("GET", url .. "/nosrc/_doc/1")
    assert.is_true(body.found)
    assert.is_nil(body._source)
    assert.equal(404, (http.json("GET", url .. "/nosrc/_source/1")))
    http.json("POST", url .. "/nosrc/_refresh")
    local _, res = http.json("POST", url .. "/nosrc/_search", {})
    assert.equal("1", res.hits.hits[1]._id)
    assert.is_nil(res.hits.hits[1]._source)
  end)
end)

describe("espipe serve #server: URL parameters", function()
  local server = devserver.start()
  local url = server.url
  teardown(function() server.stop() end)

  it("refuses a parameter the API does not take, as ES does", function()
    local status, body = http.json("POST", url .. "/_search?sizee=3&pretty", {})
    assert.equal(400, status)
    assert.equal("illegal_argument_exception", body.error.type)
    assert.equal("request [/_search] contains unrecognized parameter: [sizee]", body.error.reason)
    status, body = http.json("PUT", url .. "/p/_doc/1?refreshh=true&rooting=x", { a = 1 })
    assert.equal(400, status)
    assert.equal("request [/p/_doc/1] contains unrecognized parameters: [refreshh], [rooting]", body.error.reason)
    assert.equal(201, (http.json("PUT", url .. "/p/_doc/1?refresh=true&filter_path=result", { a = 1 })))
  end)
end)

describe("espipe serve #server: exact numbers", function()
  local server = devserver.start()
  local url = server.url
  teardown(function() server.stop() end)

  it("keeps integers beyond 2^53 exact through filter_path", function()
    http.json("PUT", url .. "/big/_doc/1?refresh=true", '{"n":9007199254741493,"m":-9007199254741493,"f":1.5}')
    local res = http.request{ url = url .. "/big/_doc/1?filter_path=_source" }
    assert.equal('{"_source":{"n":9007199254741493,"m":-9007199254741493,"f":1.5}}', res.body)
    res = http.request{ url = url .. "/big/_search?filter_path=hits.hits._source.n" }
    assert.equal('{"hits":{"hits":[{"_source":{"n":9007199254741493}}]}}', res.body)
  end)
end)

describe("espipe serve #server: nested objects limit", function()
  local server = devserver.start()
  local url = server.url
  teardown(function() server.stop() end)

  it("refuses a document with more nested objects than index.mapping.nested_objects.limit", function()
    http.json("PUT", url .. "/n", { settings = { ["index.mapping.nested_objects.limit"] = 2 },
      mappings = { properties = { n1 = { type = "nested" } } } })
    assert.equal(201, (http.json("PUT", url .. "/n/_create/1", { n1 = { { a = 1 }, { a = 2 } } })))
    local status, body = http.json("PUT", url .. "/n/_create/2", { n1 = { { a = 1 }, { a = 2 }, { a = 3 } } })
    assert.equal(400, status)
    assert.matches("The number of nested documents has exceeded the allowed limit of %[2%]", body.error.reason)
  end)
end)
