-- espipe.client.api without a server: the request each named-parameter API
-- sends, and the wrong arguments it raises for (a scripted transport).
local client_mod = require("espipe.client")
local json = require("espipe.json")

local client_answering = require("spec.client.support.fixtures").client_answering

describe("client requests", function()
  it("index with an id is a PUT with escaped id and query parameters", function()
    local c, t = client_answering(201, '{"_id":"a/b c","result":"created","_seq_no":0}')
    local r = assert(c:index{ index = "logs-1", id = "a/b c", body = { n = 1, tags = json.array() },
                              refresh = "wait_for", if_seq_no = 3, if_primary_term = 1, routing = "r" })
    assert.are.equal("created", r.result)
    local s = t.sent[1]
    assert.are.equal("PUT", s.method)
    assert.are.equal("/logs-1/_doc/a%2Fb%20c", s.path)
    assert.are.equal("if_primary_term=1&if_seq_no=3&refresh=wait_for&routing=r", s.query)
    assert.are.same({ n = 1, tags = {} }, json.decode(s.body))
    assert.matches('"tags":%[%]', s.body)
    assert.are.equal("application/json", s.headers["Content-Type"])
  end)

  it("index without an id POSTs to _doc", function()
    local c, t = client_answering(201, '{"_id":"gen","result":"created"}')
    assert(c:index{ index = "i", body = '{"raw":true}' })
    assert.are.equal("POST", t.sent[1].method)
    assert.are.equal("/i/_doc", t.sent[1].path)
    assert.are.equal('{"raw":true}', t.sent[1].body)
  end)

  it("create, get, delete, update and mget use their endpoints", function()
    local c, t = client_answering(200, '{"ok":true}')
    c:create{ index = "i", id = 1, body = { a = 1 } }
    c:get{ index = "i", id = "x", _source_includes = { "a", "b" } }
    c:delete{ index = "i", id = "x", refresh = true }
    c:update{ index = "i", id = "x", doc = { a = 2 }, doc_as_upsert = true, retry_on_conflict = 3 }
    c:update{ index = "i", id = "y", script = { source = "ctx._source.n += 1" }, upsert = { n = 0 } }
    c:mget{ index = "i", ids = { "1", "2" } }
    c:search{ index = { "a", "b*" }, body = { query = { match_all = {} } }, size = 0 }
    c:count{ index = "i" }
    c:refresh{ index = "i" }
    local got = {}
    for i, s in ipairs(t.sent) do got[i] = s.method .. " " .. s.path .. (s.query and ("?" .. s.query) or "") end
    assert.are.same({
      "PUT /i/_create/1",
      "GET /i/_doc/x?_source_includes=a,b",
      "DELETE /i/_doc/x?refresh=true",
      "POST /i/_update/x?retry_on_conflict=3",
      "POST /i/_update/y",
      "POST /i/_mget",
      "POST /a,b*/_search?size=0",
      "POST /i/_count",
      "POST /i/_refresh",
    }, got)
    assert.are.same({ doc = { a = 2 }, doc_as_upsert = true }, json.decode(t.sent[4].body))
    assert.are.same({ script = { source = "ctx._source.n += 1" }, upsert = { n = 0 } }, json.decode(t.sent[5].body))
    assert.are.same({ ids = { "1", "2" } }, json.decode(t.sent[6].body))
  end)


  it("raises on wrong arguments", function()
    local c = client_answering(200, "{}")
    assert.has_error(function() c:index() end, "client:index expects a table of named parameters")
    assert.has_error(function() c:get{ index = "i" } end, "client:get: 'id' is required")
    assert.has_error(function() c:get{ id = "1" } end, "client:get: 'index' is required")
    assert.has_error(function() c:get{ index = "i", id = "1", routng = "x" } end, "client:get: unknown parameter 'routng'")
    assert.has_error(function() c:index{ index = "i", id = "1" } end, "client:index: 'body' is required")
    assert.has_error(function() c:index{ index = "", id = "1", body = {} } end)
    assert.has_error(function() c:index{ index = "i", id = "1", body = { f = print } } end)
    assert.has_error(function() c:update{ index = "i", id = "1" } end)
    assert.has_error(function() client_mod.new("http://x") end)
  end)
end)
