-- Shard-aware bulk: routing detection per index, the node map, and sending
-- each document to the node holding its primary, checked against the dev
-- server's own answers (_search_shards, _cat/shards, and its per-node count
-- of documents received for shards the node does not hold, "forwarded").
local client_mod = require("espipe.client")
local shard_map = require("espipe.client.shard_map")
local json = require("espipe.json")
local devserver = require("spec.support.devserver")

local SHARDS = 6

local function forwarded(c)
  local st = assert(c:json_request{ method = "GET", path = "/_espipe/stats" })
  local docs, fw = 0, 0
  for _, n in pairs(st.nodes) do docs, fw = docs + n.docs, fw + n.forwarded end
  return fw, docs
end

local function reset_stats(c)
  assert(c:json_request{ method = "POST", path = "/_espipe/stats/reset" })
end

local function create(c, name, settings)
  local st = { number_of_shards = SHARDS }
  for k, v in pairs(settings or {}) do st[k] = v end
  assert(c.indices:create{ index = name, body = { settings = { index = st } } })
end

-- The cluster's answer for one routing value: the sorted list of shards.
local function cluster_shards(c, index, value)
  local r = assert(c:json_request{ method = "GET", path = "/" .. index .. "/_search_shards",
                                   query = { routing = value } })
  local out = {}
  for _, g in ipairs(r.shards) do out[#out + 1] = g[1].shard end
  table.sort(out)
  return out
end

describe("shard-aware bulk #server", function()
  local server, c, logs

  setup(function()
    server = devserver.start{ nodes = 3 }
    c = client_mod.new{ hosts = { server.url } }
    create(c, "legacy_idx")
    create(c, "modulo_idx", { ["routing.function"] = "modulo" })
    create(c, "part_idx", { routing_partition_size = 2 })
    create(c, "wide_idx", { number_of_routing_shards = 60 })
    create(c, "one_idx", { number_of_shards = 1 })
    assert(c:json_request{ method = "POST", path = "/_aliases", body = json.encode{ actions = {
      { add = { index = "legacy_idx", alias = "routed_alias", routing = "r1" } },
      { add = { index = "modulo_idx", alias = "plain_alias" } },
    } }, headers = { ["Content-Type"] = "application/json" } })
  end)

  teardown(function()
    if c then c:close() end
    if server then server.stop() end
  end)

  before_each(function() logs = {} end)

  local function new_map(opts)
    opts = opts or {}
    opts.log = function(msg) logs[#logs + 1] = msg end
    return shard_map.new(c, opts)
  end

  it("detects legacy, modulo and partitioned routing, each agreeing with _search_shards", function()
    local m = new_map()
    local want = { legacy_idx = "legacy", modulo_idx = "modulo", part_idx = "legacy", wide_idx = "legacy" }
    for index, func in pairs(want) do
      local e, why = m:route(index)
      assert.is_table(e, index .. ": " .. tostring(why))
      assert.are.equal(func, e.func, index)
      -- values other than the probes: the cluster and the map agree on each
      for i = 1, 40 do
        local v = "check-" .. i
        local mine = {}
        for p = 0, e.partition - 1 do
          -- a partitioned document lands on shard f(hash(routing) + p) for some p in 0..partition-1
          local id
          for k = 1, 1000 do
            local cand = "id" .. k
            if require("espipe.routing").hash(cand) % e.partition == p then id = cand break end
          end
          mine[m:shard(e, v, id)] = true
        end
        local list = {}
        for s in pairs(mine) do list[#list + 1] = s end
        table.sort(list)
        assert.are.same(cluster_shards(c, index, v), list, index .. " " .. v)
      end
    end
    assert.are.equal(60, (m:route("wide_idx")).routing_shards)
    assert.are.equal(2, (m:route("part_idx")).partition)
    assert.are.equal(0, #logs)
  end)

  it("routes a one-shard index and an alias without routing", function()
    local m = new_map()
    local one = assert(m:route("one_idx"))
    assert.are.equal(0, m:shard(one, "anything"))
    local alias = assert(m:route("plain_alias"))
    assert.are.equal("modulo_idx", alias.index)
    assert.are.equal("modulo", alias.func)
  end)

  it("switches off, logging the reason once, for an alias with routing and for several indices", function()
    local m = new_map()
    local e, why = m:route("routed_alias")
    assert.is_false(e)
    assert.matches("has its own routing", why)
    e, why = m:route("legacy_idx,modulo_idx")
    assert.is_false(e)
    assert.matches("resolves to 2 indices", why)
    m:route("routed_alias")
    assert.are.equal(2, #logs)
    assert.matches("off for index routed_alias", logs[1])
  end)

  it("maps each primary to the HTTP address of the node that holds it", function()
    local m = new_map()
    local e = assert(m:route("legacy_idx"))
    local rows = assert(c:json_request{ method = "GET", path = "/_cat/shards/legacy_idx", query = { format = "json" } })
    local seen = 0
    for _, row in ipairs(rows) do
      if row.prirep == "p" then
        local node = tonumber(row.node:match("(%d+)$"))
        local host = e.hosts[tonumber(row.shard)]
        assert.are.equal("http://127.0.0.1:" .. (server.port + node), c:hosts()[host])
        seen = seen + 1
      end
    end
    assert.are.equal(SHARDS, seen)
  end)

  it("sends each document to its primary's node: almost nothing forwarded, every document acknowledged", function()
    local n = 6000
    local results = {}
    for _, mode in ipairs{ "plain", "direct" } do
      reset_stats(c)
      local bi = c:bulk_indexer{ index = "legacy_idx", batch_docs = 250, shard_aware = mode == "direct" or nil,
                                 on_log = function(msg) logs[#logs + 1] = msg end }
      for i = 1, n do bi:index({ n = i }, { id = mode .. i }) end
      local st = bi:close()
      assert.are.equal(n, st.ok)
      assert.are.equal(0, st.failed)
      local fw, docs = forwarded(c)
      assert.are.equal(n, docs)
      results[mode] = { fw = fw, st = st }
    end
    -- round robin over 3 nodes: about two thirds land on a node without the shard
    assert.is_true(results.plain.fw > n / 2, "plain forwarded " .. results.plain.fw)
    assert.is_true(results.direct.fw < n / 100, "direct forwarded " .. results.direct.fw)
    assert.are.equal(n, results.direct.st.direct)
    assert.are.equal(0, #logs)
  end)

  it("groups each node's request by shard, starting at the rotation offset", function()
    for _, rotation in ipairs{ 0, 1 } do
      local c2 = client_mod.new{ hosts = { server.url } }
      local t = c2.transport
      local sent = {}
      local submit = t.submit
      t.submit = function(self, req)
        if type(req.body) == "userdata" then sent[#sent + 1] = { body = req.body:body(), host = req.host } end
        return submit(self, req)
      end
      local bi = c2:bulk_indexer{ index = "legacy_idx", batch_docs = 90,
                                  shard_aware = { rotation = rotation } }
      for i = 1, 900 do bi:index({ n = i }, { id = "g" .. rotation .. "-" .. i }) end
      assert.are.equal(900, bi:close().ok)
      local m = new_map()
      local e = assert(m:route("legacy_idx"))
      local multi = 0
      for _, req in ipairs(sent) do
        local runs, last, done = {}, nil, {}
        for id in req.body:gmatch('"_id":"([^"]+)"') do
          local shard = m:shard(e, id)
          assert.are.equal(c:hosts()[e.hosts[shard]], c2:hosts()[req.host])
          if shard ~= last then
            assert.is_nil(done[shard], "shard " .. shard .. " split within one request")
            if last then done[last] = true end
            runs[#runs + 1], last = shard, shard
          end
        end
        if #runs > 1 then
          multi = multi + 1
          local sorted = {}
          for k, v in ipairs(runs) do sorted[k] = v end
          table.sort(sorted)
          assert.are.equal(sorted[rotation % #sorted + 1], runs[1])
        end
      end
      -- 3 nodes x 2 primaries: every node's requests mix two shards
      assert.is_true(multi >= #sent / 2, multi .. " of " .. #sent)
      c2:close()
    end
  end)

  it("routes by routing value on a partitioned index and sends unroutable documents anywhere", function()
    reset_stats(c)
    local bi = c:bulk_indexer{ index = "part_idx", batch_docs = 100, shard_aware = true }
    for i = 1, 1000 do bi:index({ n = i }, { id = "p" .. i, routing = "user" .. (i % 37) }) end
    local st = bi:close()
    assert.are.equal(1000, st.ok)
    assert.are.equal(1000, st.direct)
    assert.are.equal(0, (forwarded(c)))
    -- without a routing value the client cannot place a document of a partitioned index: any node
    -- (which refuses it, as Elasticsearch does: the index requires routing)
    bi = c:bulk_indexer{ index = "part_idx", batch_docs = 100, shard_aware = true }
    for i = 1, 300 do bi:index({ n = i }, { id = "q" .. i }) end
    st = bi:close()
    assert.are.equal(0, st.direct)
    assert.are.equal(300, st.failed)
  end)

  it("routes documents by the _id the indexer gives them", function()
    reset_stats(c)
    local bi = c:bulk_indexer{ index = "legacy_idx", batch_docs = 100, shard_aware = true }
    for i = 1, 300 do bi:index({ n = i }) end
    local st = bi:close()
    assert.are.equal(300, st.ok)
    assert.are.equal(300, st.direct)
    assert.are.equal(0, (forwarded(c)))
  end)

  -- The bodies each host was sent, in order, by an indexer made on a client whose submissions are recorded.
  local function bodies_per_host(opts, feed)
    local c2 = client_mod.new{ hosts = { server.url } }
    local sent = {}
    local submit = c2._submit
    c2._submit = function(self, owner, req)
      if tostring(req.path):find("_bulk", 1, true) then
        local h = req.host or 0
        sent[h] = sent[h] or {}
        table.insert(sent[h], req.body:body())
      end
      return submit(self, owner, req)
    end
    local bi = c2:bulk_indexer(opts)
    feed(bi)
    local st = bi:close()
    c2:close()
    return sent, st
  end

  it("moves staged documents to the same node batches, in the same order, as routing each in Lua", function()
    local function feed(bi)
      for i = 1, 700 do
        -- by _id (escaped in the action line) or routing value, updates and deletes among them
        if i % 50 == 0 then
          bi:update({ doc = { n = -i } }, { id = "d" .. (i - 1) })
        elseif i % 70 == 0 then
          bi:delete{ id = "d" .. (i - 3) }
        elseif i % 9 == 0 then
          bi:index({ n = i }, { id = "d" .. i, routing = "r" .. (i % 5) })
        else
          bi:index({ n = i, s = "été" }, { id = 'd"' .. i })
        end
      end
    end
    local base = { index = "wide_idx", batch_docs = 60, shard_aware = true }
    local staged, st1 = bodies_per_host(base, feed)
    local lua_opts = { on_batch = function() end }
    for k, v in pairs(base) do lua_opts[k] = v end
    local routed, st2 = bodies_per_host(lua_opts, feed)
    assert.are.equal(700, st1.direct)
    assert.are.equal(700, st2.direct)
    local hosts = 0
    for h, list in pairs(routed) do
      hosts = hosts + 1
      assert.are.same(list, staged[h], "host " .. h)
    end
    assert.are.equal(3, hosts)
    for h in pairs(staged) do assert.is_table(routed[h], "host " .. h) end
  end)

  it("routes raw actions, filled batches and documents naming another index to their primaries", function()
    reset_stats(c)
    local bi = c:bulk_indexer{ index = "legacy_idx", batch_docs = 50, shard_aware = true }
    for i = 1, 200 do
      assert(bi:raw('{"index":{"_id":"raw' .. i .. '"}}', '{"n":' .. i .. '}'))
      assert(bi:index({ n = i }, { id = "other" .. i, index = "modulo_idx" }))
    end
    -- an appender as `espipe load` uses (C there): items added straight into the open batch
    local r = bi:fill(function(buf, _, _, count)
      for i = 1, count do buf:index({ _id = "fill" .. i }, { n = i }) end
      return true, nil, count
    end, 150)
    assert.is_true(r)
    local st = bi:close()
    assert.are.equal(550, st.ok)
    assert.are.equal(550, st.direct)
    assert.are.equal(0, (forwarded(c)))
  end)

  it("retries a failed node's batch on any node and keeps every document accounted for", function()
    reset_stats(c)
    local dead_port = server.port + 1
    local bi = c:bulk_indexer{ index = "modulo_idx", batch_docs = 200, retries = 3, backoff = { base = 0.001 },
      shard_aware = { rewrite = function(addr)
        -- node 1 is unreachable at its published address (a NAT gone wrong)
        if addr:match(":(%d+)$") == tostring(dead_port) then return "http://127.0.0.1:1" end
        return "http://" .. addr
      end } }
    for i = 1, 3000 do bi:index({ n = i }, { id = "f" .. i }) end
    local st = bi:close()
    assert.are.equal(3000, st.added)
    assert.are.equal(3000, st.ok)
    assert.are.equal(0, st.failed)
    assert.is_true(st.node_failures > 0)
    -- the failure made the map reload before the next batch
    assert.is_true((bi.router.map.generation or 0) >= 1)
    local _, docs = forwarded(c)
    assert.are.equal(3000, docs)
  end)

  it("restrict_to_hosts sends directly only to the configured hosts", function()
    local c2 = client_mod.new{ hosts = { server.url } }
    reset_stats(c2)
    local bi = c2:bulk_indexer{ index = "legacy_idx", batch_docs = 100, shard_aware = { restrict_to_hosts = true } }
    for i = 1, 1200 do bi:index({ n = i }, { id = "h" .. i }) end
    local st = bi:close()
    assert.are.equal(1200, st.ok)
    assert.are.equal(1, #c2:hosts())
    -- node 0 holds 2 of the 6 primaries: about a third go direct, none elsewhere
    assert.is_true(st.direct > 0 and st.direct < 1200, "direct " .. st.direct)
    c2:close()
  end)
end)
