-- espipe.client.dispatch without a server: how answers and failures of a
-- request come back (a scripted transport).
local client_mod = require("espipe.client")
local errors = require("espipe.client.errors")
local script = require("spec.client.support.script_transport")

local client_answering = require("spec.client.support.fixtures").client_answering

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
