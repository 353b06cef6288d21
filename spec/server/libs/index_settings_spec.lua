-- espipe.server.index_settings: the flat and nested forms of index settings
-- and the numbers an index runs by, with ES's messages for bad values.
local json = require("espipe.server.json")
local index_settings = require("espipe.server.index_settings")

describe("server index_settings", function()
  it("flattens every spelling to one form and nests it back", function()
    local want = { number_of_shards = "3", ["routing.function"] = "modulo" }
    for _, body in ipairs({
      '{"index":{"number_of_shards":3,"routing":{"function":"modulo"}}}',
      '{"number_of_shards":3,"routing.function":"modulo"}',
      '{"index.number_of_shards":"3","index.routing.function":"modulo"}',
    }) do
      assert.same(want, index_settings.flat_settings(json.decode(body)), body)
    end
    assert.equal('{"number_of_shards":"3","routing":{"function":"modulo"}}',
      json.encode(index_settings.nest_settings(want)))
  end)

  it("reads refresh intervals", function()
    assert.equal(1, index_settings.parse_interval(nil))
    assert.equal(-1, index_settings.parse_interval("-1"))
    assert.equal(0.5, index_settings.parse_interval("500ms"))
    assert.equal(120, index_settings.parse_interval("2m"))
    assert.is_nil(index_settings.parse_interval("2 weeks"))
  end)

  it("derives shards, routing shards, function and replicas at creation", function()
    local idx = {}
    assert.is_nil(index_settings.apply(idx, { number_of_shards = "2", number_of_replicas = "0" }, true))
    -- created as 8.15 by default: the legacy routing function
    assert.same({ 2, 0, 1, "legacy", 1 }, { idx.nshards, idx.replicas, idx.partition, idx.func, idx.refresh_s })
    assert.equal(0, idx.routing_shards % 2)
    local modulo = {}
    assert.is_nil(index_settings.apply(modulo, { ["version.created"] = "9064000" }, true))
    assert.equal("modulo", modulo.func)
  end)

  it("refuses what ES refuses, naming the setting", function()
    local function why(flat, creating)
      return index_settings.apply({}, flat, creating ~= false)
    end
    assert.matches("must be >= 1", why({ number_of_shards = "0" }))
    assert.matches("%[index.number_of_replicas%]", why({ number_of_replicas = "x" }))
    assert.matches("refresh_interval", why({ refresh_interval = "soon" }))
    assert.matches("expected legacy or modulo", why({ ["routing.function"] = "hash" }))
    assert.matches("expected legacy or modulo", why({ ["routing.function"] = "hash" }, false))
    assert.matches("soft%-deletes", why({ ["soft_deletes.enabled"] = "false" }))
    assert.matches("must be a factor of", why({ number_of_shards = "3", number_of_routing_shards = "8" }))
    assert.matches("routing partition size", why({ number_of_routing_shards = "2", routing_partition_size = "2" }))
    assert.is_nil(why({ ["soft_deletes.enabled"] = "false" }, false))
  end)
end)
