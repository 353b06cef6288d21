-- Several nodes as one cluster, shard routing (against ES's published
-- values and espipe's C routing), /_espipe/stats, --chaos and --blackhole.
local devserver = require("spec.support.devserver")
local http = require("spec.support.http")

local function floor_mod(a, n) return a - math.floor(a / n) * n end

describe("espipe serve #server: routing", function()
  local server, url
  setup(function()
    server = devserver.start()
    url = server.url
  end)
  teardown(function() server.stop() end)

  local function routed_shard(index, value)
    local status, body = http.json("GET", url .. "/" .. index .. "/_search_shards?routing=" .. value)
    assert.equal(200, status)
    assert.equal(1, #body.shards)
    return body.shards[1][1].shard
  end

  it("places ES's known hashes as the legacy function does", function()
    -- Murmur3HashFunction: "hell" -> 0x5a0cb7c3, "hello" -> 0xd7c31989 (ES's own tests)
    http.json("PUT", url .. "/r5", { settings = { number_of_shards = 5 } })
    for value, h in pairs({ hell = 1510782915, hello = -675079799 }) do
      local expected = math.floor(floor_mod(h, 640) / (640 / 5))
      assert.equal(expected, routed_shard("r5", value))
    end
  end)

  it("uses the modulo function for ES 9.x indices (IndexRoutingTests: _id 1, 2 shards)", function()
    http.json("PUT", url .. "/legacy2", { settings = { number_of_shards = 2 } })
    http.json("PUT", url .. "/mod2", { settings = { number_of_shards = 2, ["index.version.created"] = 9064000 } })
    http.json("PUT", url .. "/modf", { settings = { number_of_shards = 2, ["index.routing.function"] = "modulo" } })
    assert.equal(0, routed_shard("legacy2", "1"))
    assert.equal(1, routed_shard("mod2", "1"))
    assert.equal(1, routed_shard("modf", "1"))
  end)

  it("agrees with espipe.core's routing, document by document", function()
    local ok, core = pcall(require, "espipe.core")
    if not ok or not core.routing_shard then
      pending("espipe.core is not built")
      return
    end
    http.json("PUT", url .. "/agree", { settings = { number_of_shards = 7, number_of_replicas = 0 } })
    local lines, expected = {}, {}
    for i = 1, 300 do
      local id = "doc-" .. i .. (i % 3 == 0 and "-é✓" or "")
      lines[#lines + 1] = { index = { _index = "agree", _id = id } }
      lines[#lines + 1] = { i = i }
      local sh = core.routing_shard { id = id, shards = 7 }
      expected[sh] = (expected[sh] or 0) + 1
    end
    http.bulk(url, lines, "?refresh=true")
    local _, rows = http.json("GET", url .. "/_cat/shards/agree?format=json")
    local got = {}
    for _, r in ipairs(rows) do got[tonumber(r.shard)] = tonumber(r.docs) end
    for sh = 0, 6 do assert.equal(expected[sh] or 0, got[sh], "shard " .. sh) end
    for _, v in ipairs({ "a", "user-17", "ü" }) do
      assert.equal(core.routing_shard { id = v, shards = 7 }, routed_shard("agree", v))
    end
  end)

  it("routes partitioned indices within the routing value's partition", function()
    http.json("PUT", url .. "/part", { settings = { number_of_shards = 6, routing_partition_size = 3 },
      mappings = { _routing = { required = true } } })
    local status, body = http.json("GET", url .. "/part/_search_shards?routing=u1")
    assert.equal(200, status)
    -- ES searches shard(hash(routing) + i) for i < partition size: up to 3 shards
    assert.is_true(#body.shards >= 1 and #body.shards <= 3)
    local allowed = {}
    for _, g in ipairs(body.shards) do allowed[g[1].shard] = true end
    for i = 1, 20 do
      local _, b = http.json("PUT", url .. "/part/_doc/" .. i .. "?routing=u1&refresh=true", { i = i })
      assert.equal("created", b.result)
    end
    local _, rows = http.json("GET", url .. "/_cat/shards/part?format=json")
    for _, r in ipairs(rows) do
      if r.prirep == "p" and not allowed[tonumber(r.shard)] then assert.equal("0", r.docs) end
    end
    status, body = http.json("PUT", url .. "/part/_doc/x", { a = 1 })
    assert.equal(400, status)
    assert.equal("routing_missing_exception", body.error.type)
  end)
end)

describe("espipe serve #server: several nodes", function()
  local server
  setup(function() server = devserver.start { nodes = 3 } end)
  teardown(function() server.stop() end)

  it("answers on consecutive ports as one cluster", function()
    local _, body = http.json("GET", "http://127.0.0.1:" .. (server.port + 2) .. "/")
    assert.equal("espipe-2", body.name)
    http.json("PUT", server.url .. "/one")
    local status = http.json("GET", "http://127.0.0.1:" .. (server.port + 1) .. "/one")
    assert.equal(200, status)
    local _, nodes = http.json("GET", server.url .. "/_nodes/http")
    local addrs = {}
    for _, n in pairs(nodes.nodes) do addrs[#addrs + 1] = n.http.publish_address end
    table.sort(addrs)
    assert.same({ "127.0.0.1:" .. server.port, "127.0.0.1:" .. (server.port + 1), "127.0.0.1:" .. (server.port + 2) }, addrs)
  end)

  it("spreads shards over the nodes and counts documents received for other nodes' shards", function()
    local url = server.url
    http.json("PUT", url .. "/spread", { settings = { number_of_shards = 3, number_of_replicas = 0 } })
    local _, rows = http.json("GET", url .. "/_cat/shards/spread?format=json&h=shard,node")
    local node_of, nodes_used = {}, {}
    for _, r in ipairs(rows) do
      node_of[tonumber(r.shard)] = r.node
      nodes_used[r.node] = true
    end
    local n = 0
    for _ in pairs(nodes_used) do n = n + 1 end
    assert.equal(3, n)
    local _, ss = http.json("GET", url .. "/spread/_search_shards")
    assert.equal(3, #ss.shards)
    http.json("POST", url .. "/_espipe/stats/reset")
    local lines = {}
    for i = 1, 60 do
      lines[#lines + 1] = { index = { _index = "spread", _id = tostring(i) } }
      lines[#lines + 1] = { i = i }
    end
    http.bulk(url, lines, "?refresh=true")
    local foreign = 0
    for i = 1, 60 do
      local _, b = http.json("GET", url .. "/spread/_search_shards?routing=" .. i)
      if node_of[b.shards[1][1].shard] ~= "espipe-0" then foreign = foreign + 1 end
    end
    local _, stats = http.json("GET", url .. "/_espipe/stats")
    assert.equal(60, stats.nodes["node-0"].docs)
    assert.equal(foreign, stats.nodes["node-0"].forwarded)
    assert.equal(0, stats.nodes["node-1"].docs)
    assert.equal(1, stats.bulk.requests)
    assert.equal(60, stats.bulk.items)
    assert.equal(3, stats.bulk.shard_batches)
    assert.equal(20, stats.bulk.docs_per_shard_batch)
  end)
end)

-- a fixed sequence of bulk requests; returns what each request saw
local function chaos_run(url)
  local outcomes, stored, item_429 = {}, 0, 0
  for r = 1, 30 do
    local lines = {}
    for i = 1, 10 do
      lines[#lines + 1] = { index = { _index = "c", _id = r .. "-" .. i } }
      lines[#lines + 1] = { r = r }
    end
    local res = http.request { method = "POST", url = url .. "/_bulk", body = http.ndjson(lines),
      headers = { ["Content-Type"] = "application/x-ndjson" } }
    if res.status == 0 then
      outcomes[r] = "reset"
    elseif res.status ~= 200 then
      outcomes[r] = tostring(res.status)
    else
      local body = require("espipe.server.json").decode(res.body)
      local marks = {}
      for i, item in ipairs(body.items) do
        if item.index.status == 429 then
          item_429 = item_429 + 1
          marks[i] = "x"
          assert.equal("es_rejected_execution_exception", item.index.error.type)
        else
          stored = stored + 1
          marks[i] = "."
        end
      end
      outcomes[r] = table.concat(marks)
    end
  end
  return outcomes, stored, item_429
end

describe("espipe serve #server: chaos", function()
  it("injects reproducible faults, counts them and never half-applies a request", function()
    local spec = "bulk_429=0.15,item_429=0.2,503=0.2,reset=0.1,latency=0.1:10ms"
    local a = devserver.start { chaos = spec, seed = 11 }
    local ok, err = pcall(function()
      local outcomes, stored, item_429 = chaos_run(a.url)
      local _, stats = http.json("GET", a.url .. "/_espipe/stats")
      local whole = { reset = 0, ["429"] = 0, ["503"] = 0 }
      for _, o in ipairs(outcomes) do if whole[o] then whole[o] = whole[o] + 1 end end
      assert.is_true(whole.reset > 0 and whole["429"] > 0 and whole["503"] > 0 and item_429 > 0,
        "every kind of fault should occur: " .. table.concat(outcomes, " "))
      assert.equal(whole.reset, stats.chaos.reset)
      assert.equal(whole["429"], stats.chaos.bulk_429)
      assert.equal(whole["503"], stats.chaos["503"])
      assert.equal(item_429, stats.chaos.item_429)
      http.json("POST", a.url .. "/c/_refresh")
      local _, count = http.json("GET", a.url .. "/c/_count")
      assert.equal(stored, count.count)
      -- a 429/503/reset request stored nothing of its items
      local _, rejected = http.json("GET", a.url .. "/c/_doc/" .. (function()
        for r, o in ipairs(outcomes) do if o == "reset" or o == "429" then return r .. "-1" end end
      end)())
      assert.is_false(rejected.found)
      -- the same seed and requests give the same faults
      local b = devserver.start { chaos = spec, seed = 11 }
      local ok2, err2 = pcall(function()
        local again = chaos_run(b.url)
        assert.same(outcomes, again)
      end)
      b.stop()
      assert(ok2, err2)
    end)
    a.stop()
    assert(ok, err)
  end)
end)

describe("espipe serve #server: blackhole", function()
  it("acknowledges bulk items without storing them", function()
    local server = devserver.start { blackhole = true }
    local ok, err = pcall(function()
      local status, body = http.bulk(server.url, {
        { index = { _index = "bh", _id = "a" } }, { x = 1 },
        { create = { _index = "bh" } }, { x = 2 },
        { delete = { _index = "bh", _id = "b" } },
      })
      assert.equal(200, status)
      assert.is_false(body.errors)
      assert.same({ "a", 201, "created" }, { body.items[1].index._id, body.items[1].index.status, body.items[1].index.result })
      assert.equal(201, body.items[2].create.status)
      assert.is_string(body.items[2].create._id)
      assert.equal(200, body.items[3].delete.status)
      assert.equal(404, (http.json("GET", server.url .. "/bh/_doc/a")))
      -- ids as sent, escaped where JSON needs it, with and without filter_path
      local lines = '{"index":{"_index":"bh","_id":"x1"}}\n{}\n{"index":{"_index":"bh","_id":"x2"}}\n{}\n'
        .. '{"index":{"_index":"bh","_id":"q\\"uote"}}\n{}\n{"create":{"_index":"bh","_id":"x3"}}\n{}\n'
      local NDJSON = { ["Content-Type"] = "application/x-ndjson" }
      for _, query in ipairs({ "", "?filter_path=items.*._id,items.*.status" }) do
        status, body = http.json("POST", server.url .. "/_bulk" .. query, lines, NDJSON)
        assert.equal(200, status)
        local got = {}
        for i, item in ipairs(body.items) do
          local op, r = next(item)
          got[i] = op .. " " .. r._id .. " " .. r.status
        end
        assert.same({ "index x1 201", "index x2 201", 'index q"uote 201', "create x3 201" }, got)
      end
    end)
    server.stop()
    assert(ok, err)
  end)
end)
