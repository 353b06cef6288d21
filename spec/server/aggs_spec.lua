-- Aggregations on the dev server: answered after the hits, in ES's shapes,
-- over the documents the query matched; unknown types and _count bodies
-- with aggs refused.
local devserver = require("spec.support.devserver")
local http = require("spec.support.http")

describe("espipe serve #server: aggregations", function()
  local server, url
  setup(function()
    server = devserver.start()
    url = server.url
    assert.equal(200, (http.json("PUT", url .. "/sales", { mappings = { properties = {
      shop = { type = "keyword" }, amount = { type = "long" }, at = { type = "date" } } } })))
    local lines = {}
    local rows = { { "a", 10, "2024-03-01T08:00:00Z" }, { "b", 5, "2024-03-01T20:00:00Z" },
                   { "a", 7, "2024-03-03T09:00:00Z" }, { "c", 1, "2024-03-03T10:00:00Z" } }
    for i, r in ipairs(rows) do
      lines[#lines + 1] = { index = { _index = "sales", _id = tostring(i) } }
      lines[#lines + 1] = { shop = r[1], amount = r[2], at = r[3] }
    end
    local status = http.bulk(url, lines, "?refresh=true")
    assert.equal(200, status)
  end)
  teardown(function() server.stop() end)

  it("answers a size:0 search with terms, sub-aggregations and a date_histogram", function()
    local res = http.request { method = "POST", url = url .. "/sales/_search", body = [[{"size":0,
      "query":{"range":{"amount":{"gte":5}}},
      "aggs":{"shops":{"terms":{"field":"shop"},"aggs":{"total":{"sum":{"field":"amount"}}}},
              "days":{"date_histogram":{"field":"at","calendar_interval":"day","format":"yyyy-MM-dd"}}}}]] }
    assert.equal(200, res.status)
    assert.matches('"hits":[]},"aggregations":{', res.body, 1, true)
    assert.matches('"days":{"buckets":[{"key_as_string":"2024-03-01","key":1709251200000,"doc_count":2},'
      .. '{"key_as_string":"2024-03-02","key":1709337600000,"doc_count":0},'
      .. '{"key_as_string":"2024-03-03","key":1709424000000,"doc_count":1}]}', res.body, 1, true)
    assert.matches('"shops":{"doc_count_error_upper_bound":0,"sum_other_doc_count":0,"buckets":['
      .. '{"key":"a","doc_count":2,"total":{"value":17}},{"key":"b","doc_count":1,"total":{"value":5}}]}',
      res.body, 1, true)
  end)

  it("aggregates dynamically mapped fields (keyword sub-field) next to hits", function()
    assert.equal(201, (http.json("PUT", url .. "/dyn/_doc/1?refresh=true", { color = "red", n = 2 })))
    local status, body = http.json("POST", url .. "/dyn/_search",
      { aggs = { c = { terms = { field = "color.keyword" } }, m = { max = { field = "n" } } } })
    assert.equal(200, status)
    assert.equal(1, #body.hits.hits)
    assert.same({ { key = "red", doc_count = 1 } }, body.aggregations.c.buckets)
    assert.equal(2, body.aggregations.m.value)
    status, body = http.json("POST", url .. "/dyn/_search", { aggs = { c = { terms = { field = "color" } } } })
    assert.equal(400, status)
    assert.equal("illegal_argument_exception", body.error.type)
  end)

  it("answers top_hits per bucket, sorted", function()
    local status, body = http.json("POST", url .. "/sales/_search", { size = 0, aggs = { shops = {
      terms = { field = "shop", size = 1 }, aggs = { best = { top_hits = { size = 1, sort = { { amount = "desc" } },
        _source = { "amount" } } } } } } })
    assert.equal(200, status)
    local bucket = body.aggregations.shops.buckets[1]
    assert.same({ "a", 2 }, { bucket.key, bucket.doc_count })
    assert.equal(2, body.aggregations.shops.sum_other_doc_count)
    local hit = bucket.best.hits.hits[1]
    assert.same({ "1", { amount = 10 }, { 10 } }, { hit._id, hit._source, hit.sort })
  end)

  it("pages a composite aggregation with after_key", function()
    local keys, after = {}, nil
    for _ = 1, 3 do
      local comp = { size = 2, sources = { { shop = { terms = { field = "shop" } } } }, after = after }
      local status, body = http.json("POST", url .. "/sales/_search", { size = 0, aggs = { c = { composite = comp } } })
      assert.equal(200, status)
      local c = body.aggregations.c
      for _, b in ipairs(c.buckets) do keys[#keys + 1] = b.key.shop .. "=" .. b.doc_count end
      if #c.buckets == 0 then break end
      after = c.after_key
    end
    assert.same({ "a=2", "b=1", "c=1" }, keys)
  end)

  it("prefixes aggregation names with their types under typed_keys=true", function()
    local status, body = http.json("POST", url .. "/sales/_search?typed_keys=true&size=0",
      { aggs = { shops = { terms = { field = "shop" } }, top = { max = { field = "amount" } } } })
    assert.equal(200, status)
    assert.equal(3, #body.aggregations["sterms#shops"].buckets)
    assert.equal(10, body.aggregations["max#top"].value)
  end)

  it("refuses an unknown aggregation type naming it, and aggs on _count", function()
    local status, body = http.json("POST", url .. "/sales/_search",
      { aggs = { p = { percentiles = { field = "amount" } } } })
    assert.equal(400, status)
    assert.equal("parsing_exception", body.error.type)
    assert.equal("Unknown aggregation type [percentiles]", body.error.reason)
    status, body = http.json("POST", url .. "/sales/_count", { aggs = { m = { max = { field = "amount" } } } })
    assert.equal(400, status)
    assert.equal("request does not support [aggs]", body.error.reason)
  end)
end)
