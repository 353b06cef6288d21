-- espipe.client.url: path segments, query strings, redacted URLs.
local url = require("espipe.client.url")

describe("client url", function()
  it("escapes an id into one path segment and keeps an index list readable", function()
    assert.are.equal("a%2F1%3F%23%20%C3%A9", url.segment("a/1?# é", "id"))
    assert.are.equal("logs-*,other", url.segment({ "logs-*", "other" }, "index"))
    assert.are.equal("42", url.segment(42, "id"))
  end)

  it("raises for an empty or missing segment", function()
    assert.has_error(function() url.segment("", "id") end, 'id must be a non-empty string, got ""')
    assert.has_error(function() url.segment(nil, "id") end, "id must be a non-empty string, got nil")
    assert.has_error(function() url.segment({}, "index") end, "index must not be an empty list")
  end)

  it("writes a query as the transports do, empty when there is nothing", function()
    assert.are.equal("filter_path=a,b&refresh=true&size=10", url.query{ size = 10.0, refresh = true, filter_path = { "a", "b" } })
    assert.are.equal("", url.query{})
  end)

  it("drops the credentials of a URL", function()
    assert.are.equal("http://host:9200/x", url.redact("http://elastic:secret@host:9200/x"))
    assert.are.equal("http://host:9200", url.redact("http://host:9200"))
  end)
end)
