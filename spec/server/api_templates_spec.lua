-- Index templates on the dev server: composable and component templates and
-- legacy ones, applied to created and auto-created indices; GET/HEAD/DELETE.
local devserver = require("spec.support.devserver")
local http = require("spec.support.http")

describe("espipe serve #server: index templates", function()
  local server, url
  setup(function()
    server = devserver.start()
    url = server.url
  end)
  teardown(function() server.stop() end)

  it("applies a composable template with components to an auto-created index", function()
    assert.equal(200, (http.json("PUT", url .. "/_component_template/shards", { template = {
      settings = { number_of_shards = 3 } } })))
    assert.equal(200, (http.json("PUT", url .. "/_index_template/logs", { index_patterns = { "logs-*" },
      priority = 10, composed_of = { "shards" }, template = {
        mappings = { properties = { level = { type = "keyword" } } }, aliases = { ["all-logs"] = {} } } })))
    assert.equal(201, (http.json("PUT", url .. "/logs-1/_doc/1?refresh=true", { level = "warn" })))
    local _, body = http.json("GET", url .. "/logs-1")
    local idx = body["logs-1"]
    assert.equal("3", idx.settings.index.number_of_shards)
    assert.same({ type = "keyword" }, idx.mappings.properties.level)
    assert.is_table(idx.aliases["all-logs"])
    local status, res = http.json("GET", url .. "/all-logs/_search")
    assert.equal(200, status)
    assert.equal(1, res.hits.total.value)
  end)

  it("lets an explicit creation's own settings win over the template's", function()
    assert.equal(200, (http.json("PUT", url .. "/metrics-1", { settings = { number_of_shards = 1 } })))
    local _, body = http.json("GET", url .. "/_index_template/logs")
    assert.equal("logs", body.index_templates[1].name)
    assert.same({ "logs-*" }, body.index_templates[1].index_template.index_patterns)
    assert.equal(200, (http.json("PUT", url .. "/logs-2", { settings = { number_of_shards = 1 } })))
    _, body = http.json("GET", url .. "/logs-2/_settings")
    assert.equal("1", body["logs-2"].settings.index.number_of_shards)
  end)

  it("applies legacy templates when no composable one matches", function()
    assert.equal(200, (http.json("PUT", url .. "/_template/old", { index_patterns = { "old-*" }, order = 1,
      settings = { number_of_shards = 2 }, mappings = { properties = { n = { type = "long" } } } })))
    assert.equal(201, (http.json("PUT", url .. "/old-1/_doc/1", { n = 1 })))
    local _, body = http.json("GET", url .. "/old-1")
    assert.equal("2", body["old-1"].settings.index.number_of_shards)
    _, body = http.json("GET", url .. "/_template/old")
    assert.same({ "old-*" }, body.old.index_patterns)
    assert.equal("2", body.old.settings.index.number_of_shards)
  end)

  it("keeps templates and stored scripts in --data across kill -9, deletions included", function()
    local first = devserver.start { data = true }
    local second
    local ok, err = pcall(function()
      local u = first.url
      assert.equal(200, (http.json("PUT", u .. "/_component_template/c", { template = { settings = {
        number_of_shards = 2 } } })))
      assert.equal(200, (http.json("PUT", u .. "/_index_template/t", { index_patterns = { "t-*" },
        composed_of = { "c" } })))
      assert.equal(200, (http.json("PUT", u .. "/_template/gone", { index_patterns = { "g-*" } })))
      assert.equal(200, (http.json("DELETE", u .. "/_template/gone")))
      assert.equal(200, (http.json("PUT", u .. "/_scripts/s", { script = { lang = "painless", source = "1" } })))
      first.kill9()
      second = devserver.start { data = first.data }
      u = second.url
      assert.equal(201, (http.json("PUT", u .. "/t-1/_doc/1", { a = 1 })))
      local _, body = http.json("GET", u .. "/t-1/_settings")
      assert.equal("2", body["t-1"].settings.index.number_of_shards)
      assert.equal(404, http.request { method = "HEAD", url = u .. "/_template/gone" }.status)
      assert.equal(200, (http.json("GET", u .. "/_scripts/s")))
    end)
    if second then second.stop() end
    first.stop()
    assert(ok, err)
  end)

  it("answers HEAD and DELETE, refuses removing a component in use", function()
    assert.equal(200, http.request { method = "HEAD", url = url .. "/_index_template/logs" }.status)
    assert.equal(404, http.request { method = "HEAD", url = url .. "/_index_template/nope" }.status)
    assert.equal(200, http.request { method = "HEAD", url = url .. "/_template/old" }.status)
    local status, body = http.json("DELETE", url .. "/_component_template/shards")
    assert.equal(400, status)
    assert.matches("still in use by index templates %[logs%]", body.error.reason)
    assert.equal(200, (http.json("DELETE", url .. "/_index_template/logs")))
    assert.equal(200, (http.json("DELETE", url .. "/_component_template/shards")))
    assert.equal(404, (http.json("GET", url .. "/_index_template/logs")))
    assert.equal(200, (http.json("DELETE", url .. "/_template/old")))
    status, body = http.json("DELETE", url .. "/_template/old")
    assert.same({ 404, "index_template_missing_exception" }, { status, body.error.type })
    assert.equal(201, (http.json("PUT", url .. "/logs-3/_doc/1", { level = "x" })))
    status, body = http.json("GET", url .. "/logs-3")
    assert.equal(200, status)
    assert.equal("1", body["logs-3"].settings.index.number_of_shards)
  end)
end)
