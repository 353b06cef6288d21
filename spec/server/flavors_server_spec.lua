-- `espipe serve --flavor`: each release line's wire, read over HTTP.
local devserver = require("spec.support.devserver")
local http = require("spec.support.http")

local function start(flavor)
  return devserver.start { nodes = 2, args = { "--flavor", flavor } }
end

-- 30 documents over 2 shards, refreshed (typed: the actions name the
-- type, as 6.x requires)
local function fill(url, typed)
  local lines = {}
  for i = 1, 30 do
    lines[#lines + 1] = { index = { _index = "f", _id = tostring(i), _type = typed and "_doc" or nil } }
    lines[#lines + 1] = { n = i }
  end
  local s = http.json("PUT", url .. "/f", { settings = { number_of_shards = 2 } })
  assert.equal(200, s)
  s = http.bulk(url, lines, "?refresh=true")
  assert.equal(200, s)
end

describe("espipe serve --flavor #server", function()
  describe("opensearch-2", function()
    local server
    setup(function() server = start("opensearch-2") fill(server.url) end)
    teardown(function() if server then server.stop() end end)

    it("says it is OpenSearch", function()
      local s, root = http.json("GET", server.url .. "/")
      assert.equal(200, s)
      assert.equal("opensearch", root.version.distribution)
      assert.equal("2.11.1", root.version.number)
      assert.matches("OpenSearch", root.tagline)
    end)

    it("has OpenSearch's point-in-time API and not Elasticsearch's", function()
      local s, body = http.json("POST", server.url .. "/f/_pit?keep_alive=1m")
      assert.equal(400, s)
      assert.matches("no handler found for uri %[/f/_pit%]", body.error)
      local open
      s, open = http.json("POST", server.url .. "/f/_search/point_in_time?keep_alive=1m")
      assert.equal(200, s)
      assert.is_string(open.pit_id)
      assert.is_nil(open.id)
      assert.is_number(open.creation_time)
      local page
      s, page = http.json("POST", server.url .. "/_search",
        { size = 100, pit = { id = open.pit_id, keep_alive = "1m" }, sort = { "_doc", "_id" } })
      assert.equal(200, s)
      assert.equal(30, #page.hits.hits)
      -- no implicit _shard_doc tiebreaker: the sort values are the two asked for
      assert.equal(2, #page.hits.hits[1].sort)
      local closed
      s, closed = http.json("DELETE", server.url .. "/_search/point_in_time", { pit_id = { open.pit_id } })
      assert.equal(200, s)
      assert.same({ { successful = true, pit_id = open.pit_id } }, closed.pits)
      s = http.json("DELETE", server.url .. "/_search/point_in_time", { pit_id = { open.pit_id } })
      assert.equal(404, s)
    end)

    it("has no _shard_doc to sort on", function()
      local s, body = http.json("POST", server.url .. "/f/_search", { sort = { "_shard_doc" } })
      assert.equal(400, s)
      assert.matches("No mapping found for %[_shard_doc%] in order to sort on", body.error.reason)
    end)
  end)

  describe("es-6.8", function()
    local server
    setup(function() server = start("es-6.8") fill(server.url, true) end)
    teardown(function() if server then server.stop() end end)

    it("answers as 6.8, with exact integer totals and no point in time", function()
      local s, root = http.json("GET", server.url .. "/")
      assert.equal(200, s)
      assert.equal("6.8.23", root.version.number)
      assert.is_nil(root.version.distribution)
      local page
      s, page = http.json("POST", server.url .. "/f/_search", { size = 1 })
      assert.equal(200, s)
      assert.equal(30, page.hits.total)
      s = http.json("POST", server.url .. "/f/_pit?keep_alive=1m")
      assert.equal(400, s)
      s = http.json("POST", server.url .. "/f/_search/point_in_time?keep_alive=1m")
      assert.equal(400, s)
    end)
  end)

  describe("default (es-8.15)", function()
    local server
    setup(function() server = devserver.start { nodes = 2 } fill(server.url) end)
    teardown(function() if server then server.stop() end end)

    it("keeps Elasticsearch 8's PIT, object totals and implicit _shard_doc tiebreaker", function()
      local s, open = http.json("POST", server.url .. "/f/_pit?keep_alive=1m")
      assert.equal(200, s)
      assert.is_string(open.id)
      local page
      s, page = http.json("POST", server.url .. "/_search",
        { size = 5, pit = { id = open.id }, sort = { "_doc" } })
      assert.equal(200, s)
      assert.same({ value = 30, relation = "eq" }, page.hits.total)
      assert.equal(2, #page.hits.hits[1].sort) -- _doc, then the implicit _shard_doc
      s = http.json("POST", server.url .. "/f/_search/point_in_time?keep_alive=1m")
      assert.equal(400, s)
    end)

    it("refuses to sort on _id, as 8.x does with fielddata on _id off", function()
      local s, body = http.json("POST", server.url .. "/f/_search", { sort = { "_id" } })
      assert.equal(400, s)
      assert.matches("Fielddata access on the _id field is disallowed", body.error.reason)
    end)
  end)

  it("refuses an unknown flavour before starting", function()
    local p = io.popen(devserver.root .. "/bin/espipe serve --flavor es-5 --port 1 2>&1; echo rc=$?")
    local out = p:read("*a")
    p:close()
    assert.matches("%-%-flavor: unknown flavor 'es%-5'", out)
    assert.matches("rc=2", out)
  end)
end)
