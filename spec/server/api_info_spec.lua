-- GET /, errors for unknown endpoints, content types, cluster health,
-- _nodes, _cat, _cluster/state against one dev server.
local devserver = require("spec.support.devserver")
local http = require("spec.support.http")

describe("espipe serve #server: cluster info", function()
  local server, url
  setup(function()
    server = devserver.start()
    url = server.url
  end)
  teardown(function() server.stop() end)

  it("answers GET / like Elasticsearch 8, with the product header", function()
    local status, body, res = http.json("GET", url .. "/")
    assert.equal(200, status)
    assert.equal("Elasticsearch", res.headers["x-elastic-product"])
    assert.equal("application/json", res.headers["content-type"])
    assert.matches("^8%.", body.version.number)
    assert.equal("You Know, for Search", body.tagline)
    assert.equal("espipe", body.cluster_name)
  end)

  it("answers HEAD / with 200 and the product header", function()
    local res = http.request { method = "HEAD", url = url .. "/" }
    assert.equal(200, res.status)
    assert.equal("Elasticsearch", res.headers["x-elastic-product"])
  end)

  it("echoes the vendor media type to 8.x clients", function()
    local res = http.request { url = url .. "/",
      headers = { Accept = "application/vnd.elasticsearch+json; compatible-with=8" } }
    assert.equal("application/vnd.elasticsearch+json;compatible-with=8", res.headers["content-type"])
  end)

  it("rejects a body with an unsupported content type with 406", function()
    local status, body = http.json("POST", url .. "/_search", "{}", { ["Content-Type"] = "text/plain" })
    assert.equal(406, status)
    assert.same({ error = "Content-Type header [text/plain] is not supported", status = 406 }, body)
  end)

  it("answers an unknown endpoint with 400 and a known one with the wrong method with 405", function()
    local status, body, res = http.json("GET", url .. "/_nothing_here")
    assert.equal(400, status)
    assert.same({ error = "no handler found for uri [/_nothing_here] and method [GET]", status = 400 }, body)
    assert.equal("Elasticsearch", res.headers["x-elastic-product"])
    status, body = http.json("PATCH", url .. "/idx/_doc/1")
    assert.equal(405, status)
    assert.matches("^Incorrect HTTP method for uri %[/idx/_doc/1%] and method %[PATCH%], allowed: ", body.error)
  end)

  it("reports health green without replicas, yellow with an unassignable replica", function()
    assert.equal(200, (http.json("PUT", url .. "/h0", { settings = { number_of_replicas = 0 } })))
    local status, body = http.json("GET", url .. "/_cluster/health/h0?wait_for_status=green&timeout=1s")
    assert.equal(200, status)
    assert.equal("green", body.status)
    assert.equal(1, body.active_primary_shards)
    assert.equal(200, (http.json("PUT", url .. "/h1", { settings = { number_of_shards = 2 } })))
    status, body = http.json("GET", url .. "/_cluster/health/h1")
    assert.equal(200, status)
    assert.equal("yellow", body.status)
    assert.equal(2, body.unassigned_shards)
    status, body = http.json("GET", url .. "/_cluster/health/h1?wait_for_status=green&timeout=1ms")
    assert.equal(408, status)
    assert.is_true(body.timed_out)
    status = http.json("GET", url .. "/_cluster/health/h1?wait_for_status=yellow")
    assert.equal(200, status)
  end)

  it("publishes each node's HTTP address", function()
    local status, body = http.json("GET", url .. "/_nodes/http?filter_path=nodes.*.http.publish_address")
    assert.equal(200, status)
    local addrs = {}
    for _, n in pairs(body.nodes) do addrs[#addrs + 1] = n.http.publish_address end
    assert.same({ "127.0.0.1:" .. server.port }, addrs)
  end)

  it("lists shards and indices in _cat, as JSON and as text", function()
    http.json("PUT", url .. "/cat1", { settings = { number_of_shards = 2, number_of_replicas = 0 } })
    local status, rows = http.json("GET", url .. "/_cat/shards/cat1?format=json")
    assert.equal(200, status)
    assert.equal(2, #rows)
    assert.same({ "cat1", "0", "p", "STARTED" }, { rows[1].index, rows[1].shard, rows[1].prirep, rows[1].state })
    local res = http.request { url = url .. "/_cat/indices/cat1?v" }
    assert.matches("^health%s+status%s+index", res.body)
    assert.matches("\ngreen%s+open%s+cat1%s", res.body)
  end)

  it("exposes routing_num_shards in _cluster/state metadata", function()
    http.json("PUT", url .. "/meta5", { settings = { number_of_shards = 5 } })
    local status, body = http.json("GET", url .. "/_cluster/state/metadata/meta5")
    assert.equal(200, status)
    assert.equal(640, body.metadata.indices.meta5.routing_num_shards)
    assert.equal("5", body.metadata.indices.meta5.settings.index.number_of_shards)
  end)

  it("applies filter_path to any API", function()
    local status, body = http.json("GET", url .. "/?filter_path=version.number,-version.build_*")
    assert.equal(200, status)
    assert.same({ version = { number = body.version.number } }, body)
    assert.matches("^8%.", body.version.number)
  end)
end)
