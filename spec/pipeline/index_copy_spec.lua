-- espipe.pipeline.index_copy against scripted clusters: which settings and
-- mapping parts each destination release gets, as the create request shows.
local client_mod = require "espipe.client"
local json = require "espipe.json"
local script = require "spec.client.support.script_transport"
local setup_mod = require "espipe.pipeline.setup"
local retry = require "espipe.client.retry"
local version = require "espipe.client.version"
local index_copy = require "espipe.pipeline.index_copy"

local SETTINGS = { index = { number_of_shards = "3", uuid = "u1", provided_name = "old", creation_date = "1",
  version = { created = "7100299" }, soft_deletes = { enabled = "false" }, refresh_interval = "5s",
  routing = { allocation = { include = { _tier_preference = "data_content" } } },
  lifecycle = { name = "logs" } } }
local MAPPING = { properties = { n = { type = "long" } } }

-- a 7.10 source with one index "old"
local function source()
  return script.new(function(req)
    if req.path == "/" then return { status = 200, body = '{"version":{"number":"7.10.2"}}' } end
    if req.path == "/old/_settings" then return { status = 200, body = json.encode { old = { settings = SETTINGS } } } end
    if req.path == "/old/_mapping" then return { status = 200, body = json.encode { old = { mappings = MAPPING } } } end
    error("unexpected " .. req.method .. " " .. req.path)
  end)
end

-- a destination of that release without indices; the create bodies land in created
local function destination(number, distribution, created)
  return script.new(function(req)
    if req.path == "/" then
      return { status = 200, body = json.encode { version = { number = number, distribution = distribution } } }
    end
    if req.method == "HEAD" then return { status = 404, body = "" } end
    if req.method == "PUT" then
      created[req.path] = json.decode(req.body)
      return { status = 200, body = '{"acknowledged":true}' }
    end
    error("unexpected " .. req.method .. " " .. req.path)
  end)
end

local function copy(number, distribution)
  local created = {}
  local policy = retry.new({ retry_for = 1 }, 2)
  local src = client_mod.new { transport = source() }
  local dst = client_mod.new { transport = destination(number, distribution, created) }
  assert(version.of(src, policy))
  assert(version.of(dst, policy))
  local report = assert(index_copy.run(setup_mod.new(src, policy), setup_mod.new(dst, policy), "old", "new"))
  return report, created["/new"]
end

describe("index_copy", function()
  it("gives Elasticsearch 8 neither the source's own settings nor disabled soft deletes", function()
    local report, body = copy("8.15.0")
    assert.same({ "index.creation_date", "index.provided_name", "index.soft_deletes.enabled", "index.uuid",
                  "index.version.created" }, report.dropped)
    assert.same({ index = { number_of_shards = "3", refresh_interval = "5s", lifecycle = { name = "logs" },
      routing = { allocation = { include = { _tier_preference = "data_content" } } } } }, body.settings)
    assert.same(MAPPING, body.mappings)
    assert.same({ { name = "new", from = "old" } }, report.created)
  end)

  it("keeps disabled soft deletes for 7.x, and puts the mapping under _doc for 6.x", function()
    local report, body = copy("7.17.22")
    assert.equal("false", body.settings.index.soft_deletes.enabled)
    assert.is_nil(body.settings.index.uuid)
    assert.equal(4, #report.dropped)
    local six_report, six = copy("6.8.23")
    assert.same({ _doc = MAPPING }, six.mappings)
    assert.is_nil(six.settings.index.routing) -- (no data tiers before 7.10)
    assert.truthy(table.concat(six_report.dropped, " "):find("_tier_preference", 1, true))
  end)

  it("drops disabled soft deletes, data tiers and lifecycle settings for OpenSearch 2", function()
    local _, body = copy("2.11.1", "opensearch")
    assert.same({ number_of_shards = "3", refresh_interval = "5s" }, body.settings.index)
  end)
end)
