-- _msearch, _cluster/settings, the index-level search limits and terms
-- lookup, as Elasticsearch answers them.
local devserver = require("spec.support.devserver")
local http = require("spec.support.http")

describe("espipe serve #server: search APIs", function()
  local server = devserver.start()
  local url = server.url
  teardown(function() server.stop() end)
  http.json("PUT", url .. "/m", { settings = { max_result_window = 5, max_terms_count = 2 } })
  http.bulk(url, {
    { index = { _index = "m", _id = "1" } }, { user = "u1", followers = { "u2", "u3" } },
    { index = { _index = "m", _id = "2" } }, { user = "u2", followers = { "u1", "u3", "u4" } },
    { index = { _index = "m", _id = "3" } }, { user = "u3" },
  })
  http.json("POST", url .. "/m/_refresh")

  it("answers _msearch item by item, an error as one item", function()
    local body = http.ndjson({ { index = "m" }, { query = { term = { user = "u1" } }, size = 1 },
                               { index = "nope" }, { query = { match_all = {} } },
                               {}, { size = 0 } })
    local status, res = http.json("POST", url .. "/_msearch", body,
      { ["Content-Type"] = "application/x-ndjson" })
    assert.equal(200, status)
    assert.equal(3, #res.responses)
    assert.equal(1, res.responses[1].hits.total.value)
    assert.equal(200, res.responses[1].status)
    assert.equal("index_not_found_exception", res.responses[2].error.type)
    assert.equal(404, res.responses[2].status)
    assert.equal(3, res.responses[3].hits.total.value)
  end)

  it("keeps cluster settings and honours search.max_keep_alive", function()
    local status, res = http.json("PUT", url .. "/_cluster/settings",
      { persistent = { search = { max_keep_alive = "1m" } }, transient = { ["a.b"] = "c" } })
    assert.equal(200, status)
    assert.same({ search = { max_keep_alive = "1m" } }, res.persistent)
    local body
    status, body = http.json("POST", url .. "/m/_search?scroll=2m", { size = 1 })
    assert.equal(400, status)
    assert.matches("Keep alive for request %(2m%) is too large. It must be less than %(1m%)", body.error.reason)
    local null = require("espipe.server.json").null
    http.json("PUT", url .. "/_cluster/settings", { persistent = { ["search.max_keep_alive"] = null } })
    status, res = http.json("GET", url .. "/_cluster/settings?flat_settings=true")
    assert.equal(200, status)
    assert.same({ ["a.b"] = "c" }, res.transient)
  end)

  it("enforces max_result_window, max_terms_count and reads terms lookups", function()
    local status, body = http.json("POST", url .. "/m/_search", { from = 3, size = 3 })
    assert.equal(400, status)
    assert.matches("Result window is too large, from %+ size must be less than or equal to: %[5%] but was %[6%]",
      body.error.reason)
    status, body = http.json("POST", url .. "/m/_search",
      { size = 1, query = { terms = { user = { "a", "b", "c" } } } })
    assert.equal(400, status)
    assert.matches("The number of terms %[3%] used in the Terms Query request", body.error.reason)
    status, body = http.json("POST", url .. "/m/_search",
      { size = 5, query = { terms = { user = { index = "m", id = "1", path = "followers" } } } })
    assert.equal(200, status)
    assert.equal(2, body.hits.total.value)
  end)
end)

describe("espipe serve #server: hit fields", function()
  local server = devserver.start()
  local url = server.url
  teardown(function() server.stop() end)
  http.json("PUT", url .. "/h1/_doc/1", { count = 1, d = 3.14, tag = "a" })
  http.json("PUT", url .. "/h2/_doc/1?refresh=true", { count = 2, tag = "b" })
  http.json("POST", url .. "/h1/_refresh")

  it("adds docvalue_fields, version, seq_no_primary_term and matched_queries to hits", function()
    local status, body = http.json("POST", url .. "/h1/_search", {
      docvalue_fields = { "count", { field = "d", format = "#.00" } }, version = true,
      seq_no_primary_term = true, query = { bool = { should = {
        { term = { tag = { value = "a", _name = "is_a" } } },
        { term = { tag = { value = "z", _name = "is_z" } } } } } } })
    assert.equal(200, status)
    local hit = body.hits.hits[1]
    assert.same({ 1 }, hit.fields.count)
    assert.same({ "3.14" }, hit.fields.d)
    assert.equal(1, hit._version)
    assert.equal(0, hit._seq_no)
    assert.equal(1, hit._primary_term)
    assert.same({ "is_a" }, hit.matched_queries)
  end)

  it("drops _source for stored_fields, and _id too for _none_; URL _source_includes wins", function()
    local _, body = http.json("POST", url .. "/h1/_search", { stored_fields = {} })
    assert.is_nil(body.hits.hits[1]._source)
    assert.equal("1", body.hits.hits[1]._id)
    _, body = http.json("POST", url .. "/h1/_search", { stored_fields = "_none_" })
    assert.is_nil(body.hits.hits[1]._id)
    _, body = http.json("POST", url .. "/h1/_search?_source_includes=tag", { _source = "count" })
    assert.same({ tag = "a" }, body.hits.hits[1]._source)
  end)

  it("orders by indices_boost without a sort, the score being the boost", function()
    local _, body = http.json("POST", url .. "/h*/_search", { indices_boost = { { h1 = 1 }, { h2 = 3 } } })
    assert.equal("h2", body.hits.hits[1]._index)
    assert.equal(3, body.hits.hits[1]._score)
    assert.equal(3, body.hits.max_score)
    local status = http.json("POST", url .. "/h*/_search", { indices_boost = { { nope = 2 } } })
    assert.equal(404, status)
    status = http.json("POST", url .. "/h*/_search?ignore_unavailable=true", { indices_boost = { { nope = 2 } } })
    assert.equal(200, status)
  end)
end)

describe("espipe serve #server: search_after", function()
  local server = devserver.start()
  local url = server.url
  teardown(function() server.stop() end)
  local lines = {}
  for i = 1, 5 do
    lines[#lines + 1] = { index = { _index = "sa", _id = tostring(i) } }
    lines[#lines + 1] = { n = i }
  end
  http.bulk(url, lines, "?refresh=true")

  it("reads string search_after values on _shard_doc as the numbers they are", function()
    local _, pit = http.json("POST", url .. "/sa/_pit?keep_alive=1m")
    local _, first = http.json("POST", url .. "/_search", { size = 2, pit = { id = pit.id }, sort = { "_shard_doc" } })
    local after = first.hits.hits[2].sort[1]
    local _, page = http.json("POST", url .. "/_search",
      { size = 10, pit = { id = pit.id }, sort = { "_shard_doc" }, search_after = { tostring(after) } })
    assert.equal(3, #page.hits.hits)
    local status, body = http.json("POST", url .. "/_search",
      { pit = { id = pit.id }, sort = { "_shard_doc" }, search_after = { "x9" } })
    assert.equal(400, status)
    assert.equal("Failed to parse search_after value for field [_shard_doc].", body.error.reason)
  end)
end)

describe("espipe serve #server: _stats", function()
  local server = devserver.start()
  local url = server.url
  teardown(function() server.stop() end)

  it("counts refreshed documents, stored bytes and indexing totals", function()
    http.bulk(url, { { index = { _index = "st", _id = "1" } }, { a = 1 },
                     { index = { _index = "st", _id = "2" } }, { a = 22 },
                     { delete = { _index = "st", _id = "2" } } }, "?refresh=true")
    local status, body = http.json("GET", url .. "/st/_stats")
    assert.equal(200, status)
    local p = body.indices.st.primaries
    assert.equal(1, p.docs.count)
    assert.equal(#'{"a":1}', p.store.size_in_bytes)
    assert.equal(2, p.indexing.index_total)
    assert.equal(1, p.indexing.delete_total)
    status, body = http.json("GET", url .. "/_stats")
    assert.equal(200, status)
    assert.equal(1, body._all.primaries.docs.count)
  end)
end)

describe("espipe serve #server: health levels and capabilities", function()
  local server = devserver.start()
  local url = server.url
  teardown(function() server.stop() end)

  it("answers level=indices|shards and counts closed indices", function()
    http.json("PUT", url .. "/hl", { settings = { number_of_shards = 2, number_of_replicas = 0 } })
    local _, body = http.json("GET", url .. "/_cluster/health?level=shards")
    assert.equal("green", body.indices.hl.status)
    assert.equal(2, body.indices.hl.number_of_shards)
    assert.is_table(body.indices.hl.shards["1"])
    http.json("POST", url .. "/hl/_close")
    _, body = http.json("GET", url .. "/_cluster/health?level=indices")
    assert.is_table(body.indices.hl)
    assert.equal(2, body.active_primary_shards)
  end)

  it("says which capabilities it has", function()
    local _, body = http.json("GET", url .. "/_capabilities?method=GET&path=/_cluster/health"
      .. "&capabilities=unassigned_pri_shard_count")
    assert.is_true(body.supported)
    _, body = http.json("GET", url .. "/_capabilities?method=PUT&path=/{index}&capabilities=lookup_index_mode")
    assert.is_false(body.supported)
  end)
end)

describe("espipe serve #server: searching through an alias", function()
  local server = devserver.start()
  local url = server.url
  teardown(function() server.stop() end)

  it("applies the alias's filter and search_routing", function()
    http.json("PUT", url .. "/al", { settings = { number_of_shards = 5 } })
    local lines = {}
    for i = 1, 20 do
      lines[#lines + 1] = { index = { _index = "al", _id = tostring(i), routing = tostring(i % 2) } }
      lines[#lines + 1] = { n = i, kind = (i % 4 == 0) and "x" or "y" }
    end
    http.bulk(url, lines, "?refresh=true")
    http.json("POST", url .. "/_aliases", { actions = {
      { add = { index = "al", alias = "only_x", filter = { term = { kind = "x" } } } },
      { add = { index = "al", alias = "even", search_routing = "0" } } } })
    local _, body = http.json("POST", url .. "/only_x/_search", { size = 0 })
    assert.equal(5, body.hits.total.value)
    _, body = http.json("POST", url .. "/only_x/_count", { query = { range = { n = { lte = 10 } } } })
    assert.equal(2, body.count)
    _, body = http.json("POST", url .. "/even/_search", { size = 20, query = { range = { n = { lte = 10 } } } })
    for _, h in ipairs(body.hits.hits) do assert.equal("0", h._routing) end
    assert.is_true(#body.hits.hits >= 5)
  end)
end)

describe("espipe serve #server: min_score with constant scores", function()
  local server = devserver.start()
  local url = server.url
  teardown(function() server.stop() end)

  it("keeps every hit at min_score 1 and none above, in search, scroll and count", function()
    http.bulk(url, { { index = { _index = "ms1", _id = "1" } }, { a = 1 },
                     { index = { _index = "ms2", _id = "1" } }, { a = 2 } }, "?refresh=true")
    local _, body = http.json("POST", url .. "/ms*/_search", { min_score = 1 })
    assert.equal(2, body.hits.total.value)
    _, body = http.json("POST", url .. "/ms*/_search?scroll=1m", { min_score = 1.5, size = 1 })
    assert.equal(0, body.hits.total.value)
    assert.equal(0, #body.hits.hits)
    local _, more = http.json("POST", url .. "/_search/scroll", { scroll_id = body._scroll_id })
    assert.equal(0, #more.hits.hits)
    _, body = http.json("POST", url .. "/ms*/_count?min_score=2")
    assert.equal(0, body.count)
    _, body = http.json("POST", url .. "/ms*/_search", { min_score = 1.5, indices_boost = { { ms2 = 2 } } })
    assert.equal(1, body.hits.total.value)
    assert.equal("ms2", body.hits.hits[1]._index)
  end)
end)
