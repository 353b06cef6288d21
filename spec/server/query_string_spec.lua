-- ?q= on _search and _count, and the query_string / simple_query_string
-- queries, on the dev server (the cases of ES's count/20_query_string.yml).
local devserver = require("spec.support.devserver")
local http = require("spec.support.http")

describe("espipe serve #server: Lucene query syntax", function()
  local server, url
  setup(function()
    server = devserver.start()
    url = server.url
    assert.equal(200, (http.json("PUT", url .. "/test",
      { mappings = { properties = { number = { type = "integer" } } } })))
    assert.equal(201, (http.json("PUT", url .. "/test/_doc/1?refresh=true", { field = "foo bar" })))
    assert.equal(201, (http.json("PUT", url .. "/test/_doc/2?refresh=true", { field = "other", number = 7 })))
  end)
  teardown(function() server.stop() end)

  local function count(qs)
    local status, body = http.json("GET", url .. "/test/_count?" .. qs)
    assert.equal(200, status, body and body.error and body.error.reason)
    return body.count
  end

  it("counts with q=, df, default_operator and lenient", function()
    assert.equal(1, count("q=bar&df=field"))
    assert.equal(1, count("q=field:foo%20field:xyz"))
    assert.equal(0, count("q=field:foo%20field:xyz&default_operator=AND"))
    assert.equal(1, count("q=field:BA*"))
    assert.equal(0, count("q=number:foo&lenient=true"))
    assert.equal(1, count("q=number:%5B5%20TO%2010%5D"))
    assert.equal(1, count("q=-field:foo"))
  end)

  it("searches with q= and refuses a number field given a word", function()
    local status, body = http.json("GET", url .. "/test/_search?q=field:%22foo%20bar%22")
    assert.equal(200, status)
    assert.equal(1, #body.hits.hits)
    assert.equal("1", body.hits.hits[1]._id)
    status, body = http.json("GET", url .. "/test/_search?q=number:foo")
    assert.equal(400, status)
    assert.equal("query_shard_exception", body.error.type)
  end)

  it("evaluates query_string and simple_query_string queries in a body", function()
    local status, body = http.json("POST", url .. "/test/_search",
      { query = { query_string = { query = "foo AND NOT other", default_field = "field" } } })
    assert.equal(200, status)
    assert.equal(1, body.hits.total.value)
    status, body = http.json("POST", url .. "/test/_search",
      { query = { simple_query_string = { query = "foo | other", fields = { "field" } } } })
    assert.equal(200, status)
    assert.equal(2, body.hits.total.value)
  end)

  it("matches /regex/ terms as the regexp query, index.max_regex_length enforced", function()
    local status, body = http.json("POST", url .. "/test/_search",
      { query = { query_string = { query = "field:/fo+/ OR field:/oth.r/" } } })
    assert.equal(200, status, body.error and body.error.reason)
    assert.equal(2, body.hits.total.value)
    assert.equal(200, (http.json("PUT", url .. "/rx", { settings = { ["index.max_regex_length"] = 5 } })))
    status, body = http.json("POST", url .. "/rx/_search", { query = { query_string = { query = "/abcdef/" } } })
    assert.equal(400, status)
    assert.equal("illegal_argument_exception", body.error.root_cause[1].type)
    assert.matches("The length of regex %[6%] used in the Regexp Query request has exceeded the allowed maximum of %[5%]",
      body.error.root_cause[1].reason)
    status = http.json("POST", url .. "/rx/_search", { query = { query_string = { query = "/abcde/" } } })
    assert.equal(200, status)
  end)
end)
