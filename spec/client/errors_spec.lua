-- espipe.client.errors: the one error shape, its one-line tostring, and the
-- constructors the client uses.
local errors = require("espipe.client.errors")

describe("client errors", function()
  it("read as one line: status, type, reason, where, request", function()
    local e = errors.new{ kind = "http", status = 404, type = "index_not_found_exception",
                          reason = "no such index [x]", request = { method = "GET", path = "/x/_doc/1" } }
    assert.are.equal("404 index_not_found_exception: no such index [x] (GET /x/_doc/1)", tostring(e))
    assert.are.equal("bad value at line 3, field a, byte 7",
      tostring(errors.new{ kind = "input", message = "bad value", line = 3, field = "a", offset = 7 }))
  end)

  it("name the cluster of a transport or systemic error once", function()
    local e = errors.new{ kind = "transport", message = "refused", host = "http://h:9200" }
    assert.are.equal("refused on http://h:9200", tostring(e))
    assert.are.equal("systemic", errors.systemic(e).kind)
    assert.are.equal("transport", e.cause)
    assert.are.equal("transport", errors.systemic(e).cause) -- marking twice keeps the first cause
  end)

  it("attach the request to a transport error, whatever shape it came in", function()
    local req = { method = "POST", path = "/_bulk", headers = { authorization = "secret" } }
    local e = errors.transport_error("connection reset", req)
    assert.is_true(errors.is(e))
    assert.are.same({ method = "POST", path = "/_bulk" }, e.request)
    assert.are.equal("connection reset (POST /_bulk)", tostring(e))
  end)

  it("raise for a constructor called without a table", function()
    assert.has_error(function() errors.new("x") end, "errors.new expects a table, got string")
  end)
end)
