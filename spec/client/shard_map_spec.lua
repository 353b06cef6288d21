-- espipe.client.shard_map without a server: a scripted cluster answers
-- _settings, _search_shards and _nodes, with shards computed here by
-- Elasticsearch's formula (an oracle independent of espipe.routing).
local client_mod = require("espipe.client")
local shard_map = require("espipe.client.shard_map")
local routing = require("espipe.routing")
local json = require("espipe.json")
local script = require("spec.client.support.script_transport")

local SHARDS, ROUTING_SHARDS, PARTITION = 6, 768, 2

-- Elasticsearch's legacy function on a partitioned index: the shards of
-- hash(routing) + 0 .. partition - 1 (32-bit wrap), through the routing shards.
local function legacy_shards(value)
  local out, seen = {}, {}
  for i = 0, PARTITION - 1 do
    local h = routing.hash(value) + i
    if h > 2147483647 then h = h - 4294967296 end
    local shard = math.floor((h % ROUTING_SHARDS) / (ROUTING_SHARDS / SHARDS))
    if not seen[shard] then seen[shard], out[#out + 1] = true, shard end
  end
  return out
end

local function partitioned_cluster(req)
  local function answer(v) return { status = 200, body = json.encode(v) } end
  if req.path == "/p/_settings" then
    return answer{ p = { settings = { index = { number_of_shards = tostring(SHARDS),
      number_of_routing_shards = tostring(ROUTING_SHARDS), routing_partition_size = tostring(PARTITION) } } } }
  end
  if req.path == "/p/_search_shards" then
    local groups = {}
    if type(req.query) == "table" and req.query.routing then
      for i, shard in ipairs(legacy_shards(req.query.routing)) do groups[i] = { { shard = shard } } end
    else
      for shard = 0, SHARDS - 1 do
        groups[#groups + 1] = { { shard = shard, primary = true, state = "STARTED", node = "n" .. shard % 2 } }
      end
    end
    return answer{ shards = groups }
  end
  if req.path == "/_nodes/http" then
    return answer{ nodes = { n0 = { http = { publish_address = "127.0.0.1:9200" } },
                             n1 = { http = { publish_address = "10.0.0.2:9200" } } } }
  end
  return { status = 404, body = '{"error":{"type":"x","reason":"unexpected ' .. req.path .. '"}}' }
end

describe("shard map without a server", function()
  it("detects a partitioned legacy index and routes as espipe.routing does", function()
    local c = client_mod.new{ transport = script.new(partitioned_cluster) }
    local m = shard_map.new(c, { log = function(msg) error("unexpected log: " .. msg) end })
    local e = assert(m:route("p"))
    assert.are.equal("legacy", e.func)
    assert.are.equal(PARTITION, e.partition)
    assert.are.equal(ROUTING_SHARDS, e.routing_shards)
    for i = 1, 50 do
      local v, id = "user" .. i, "doc" .. i
      local want = routing.shard{ routing = v, id = id, shards = SHARDS, routing_shards = ROUTING_SHARDS,
                                  partition_size = PARTITION, func = "legacy" }
      assert.are.equal(want, m:shard(e, v, id))
      local allowed = {}
      for _, s in ipairs(legacy_shards(v)) do allowed[s] = true end
      assert.is_true(allowed[want], "shard " .. want .. " of " .. v)
    end
    -- primaries on n0 go to the configured host, those on n1 to an added one
    assert.are.equal(1, e.hosts[0])
    assert.are.equal(2, e.hosts[1])
    assert.are.same({ "http://127.0.0.1:9200", "http://10.0.0.2:9200" }, c:hosts())
  end)

  it("switches off for a time-series index, logging once", function()
    local t = script.new(function(req)
      if req.path == "/metrics/_settings" then
        return { status = 200, body = '{"metrics":{"settings":{"index":{"number_of_shards":"2",'
          .. '"mode":"time_series","routing_path":["host"]}}}}' }
      end
      return { status = 404, body = '{"error":{"type":"x","reason":"unexpected ' .. req.path .. '"}}' }
    end)
    local logs = {}
    local m = shard_map.new(client_mod.new{ transport = t }, { log = function(s) logs[#logs + 1] = s end })
    local e, why = m:route("metrics")
    assert.is_false(e)
    assert.matches("routing_path", why)
    assert.is_false((m:route("metrics")))
    assert.are.equal(1, #logs)
    assert.are.equal(1, #t.sent)
  end)

  it("rejects wrong options", function()
    local c = client_mod.new{ transport = script.new(function() return { status = 200, body = "{}" } end) }
    assert.has_error(function() shard_map.new(c, { refresh = 0 }) end,
      "shard_map: refresh must be a positive number of seconds")
    assert.has_error(function() c:bulk_indexer{ shard_aware = "yes" } end,
      "bulk_indexer: shard_aware must be true or a table { rewrite =, restrict_to_hosts =, refresh =, rotation = }")
  end)
end)
