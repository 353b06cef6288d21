-- espipe.client without a server: the requests each API sends and how
-- answers and failures come back (a scripted in-memory transport).
local client_mod = require("espipe.client")
local errors = require("espipe.client.errors")
local json = require("espipe.json")
local script = require("spec.client.support.script_transport")

local function client_answering(status, body)
  local t = script.new(function() return { status = status, body = body } end)
  return client_mod.new{ transport = t }, t
end

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

  it("indices APIs use their endpoints", function()
    local c, t = client_answering(200, '{"acknowledged":true}')
    c.indices:create{ index = "i", settings = { number_of_shards = 2 }, mappings = { dynamic = "strict" } }
    c.indices:get_settings{ index = "i", flat_settings = true }
    c.indices:put_settings{ index = "i", settings = { index = { refresh_interval = "-1" } } }
    c.indices:get_mapping{ index = "i" }
    c.indices:put_mapping{ index = "i", properties = { n = { type = "long" } } }
    c.indices:update_aliases{ actions = { { add = { index = "i", alias = "a" } } } }
    c.indices:get_alias{ name = "a" }
    c.indices:get{ index = "i" }
    c.indices:delete{ index = "i" }
    local got = {}
    for i, s in ipairs(t.sent) do got[i] = s.method .. " " .. s.path .. (s.query and ("?" .. s.query) or "") end
    assert.are.same({
      "PUT /i", "GET /i/_settings?flat_settings=true", "PUT /i/_settings", "GET /i/_mapping",
      "PUT /i/_mapping", "POST /_aliases", "GET /_alias/a", "GET /i", "DELETE /i",
    }, got)
    assert.are.same({ settings = { number_of_shards = 2 }, mappings = { dynamic = "strict" } }, json.decode(t.sent[1].body))
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

describe("client answers", function()
  it("maps an Elasticsearch error to a one-line error", function()
    local c = client_answering(404, '{"error":{"root_cause":[{"type":"index_not_found_exception","reason":"no such index [x]"}],'
      .. '"type":"index_not_found_exception","reason":"no such index [x]","index":"x"},"status":404}')
    local r, err = c:get{ index = "x", id = 1 }
    assert.is_nil(r)
    assert.is_true(errors.is(err))
    assert.are.equal("http", err.kind)
    assert.are.equal(404, err.status)
    assert.are.equal("index_not_found_exception", err.type)
    assert.are.equal("404 index_not_found_exception: no such index [x] (GET /x/_doc/1)", tostring(err))
  end)

  it("a missing document is a 404 error naming it", function()
    local c = client_answering(404, '{"_index":"i","_id":"9","found":false}')
    local r, err = c:get{ index = "i", id = "9" }
    assert.is_nil(r)
    assert.are.equal(404, err.status)
    assert.are.equal("404 not_found: document not found (GET /i/_doc/9)", tostring(err))
  end)

  it("exists answers true/false and errors on other statuses", function()
    local status = 200
    local t = script.new(function() return { status = status, body = "" } end)
    local c = client_mod.new{ transport = t }
    assert.are.equal(true, c:exists{ index = "i", id = "1" })
    status = 404
    assert.are.equal(false, c:exists{ index = "i", id = "1" })
    assert.are.equal(false, c.indices:exists{ index = "i" })
    status = 401
    local r, err = c:exists{ index = "i", id = "1" }
    assert.is_nil(r)
    assert.are.equal("401 HTTP 401 (HEAD /i/_doc/1)", tostring(err))
  end)

  it("returns transport failures with the request and without credentials", function()
    local t = script.new(function()
      return { err = errors.new{ kind = "transport", code = "connect", message = "connection refused" } }
    end)
    local c = client_mod.new{ transport = t, auth = { username = "elastic", password = "s3cret" } }
    local r, err = c:count{ index = "i" }
    assert.is_nil(r)
    assert.are.equal("transport", err.kind)
    assert.are.equal("connection refused (POST /i/_count)", tostring(err))
    assert.is_nil(tostring(err):find("s3cret", 1, true))
  end)

  it("a 200 that is not JSON is an error, not a success", function()
    local c = client_answering(200, "<html>proxy</html>")
    local r, err = c:search{ index = "i" }
    assert.is_nil(r)
    assert.are.equal("json", err.kind)
  end)
end)

describe("espipe.client options", function()
  it("rejects an unknown key, naming the nearest valid one (a typo must not fall back to localhost)", function()
    local ok, err = pcall(client_mod.new, { hots = { "http://127.0.0.1:1" } })
    assert.is_false(ok)
    assert.matches("espipe.client: unknown option 'hots' %(did you mean 'hosts'%?%)", err)
    ok, err = pcall(client_mod.new, { hosts = { "http://127.0.0.1:1" }, timout = 3 })
    assert.is_false(ok)
    assert.matches("unknown option 'timout' %(did you mean 'timeout'%?%)", err)
  end)

  it("takes every transport option and a transport of its own", function()
    local c = client_mod.new{ hosts = { "http://127.0.0.1:1" }, timeout = 3, connect_timeout = 1,
                             max_inflight = 2, dead_host_retry = 5, compress = false }
    c:close()
  end)
end)
