-- Shard pre-sort: batches come out grouped by destination shard, in a
-- rotated shard order per worker, and nothing is lost or duplicated. The
-- expected shard of each id comes from espipe.routing (itself checked against
-- Elasticsearch's values in spec/routing/routing_spec.lua).
local presort = require "espipe.pipeline.presort"
local routing = require "espipe.routing"

local function items(n)
  local t = {}
  for i = 1, n do t[i] = { id = "doc-" .. i, n = i } end
  return t
end

local function shard_sequence(out, shards, rs)
  local seq = {}
  for _, it in ipairs(out) do
    local s = routing.shard { id = it.id, shards = shards, routing_shards = rs }
    if seq[#seq] ~= s then seq[#seq + 1] = s end
  end
  return seq
end

describe("presort", function()
  it("groups a batch by shard, each shard once, starting at the worker's rotation", function()
    local rs = routing.default_routing_shards(5)
    local p = presort.new { shards = 5 }
    for worker = 0, 6 do
      local out = p:order(items(500), worker)
      assert.equal(500, #out)
      local seq = shard_sequence(out, 5, rs)
      assert.equal(5, #seq) -- each shard exactly one contiguous run
      assert.equal(worker % 5, seq[1])
      for k = 2, 5 do assert.equal((seq[k - 1] + 1) % 5, seq[k]) end
    end
  end)

  it("is a permutation that keeps the input order within a shard", function()
    local p = presort.new { shards = 3 }
    local out = p:order(items(300), 1)
    local seen, last = {}, {}
    for _, it in ipairs(out) do
      assert.is_nil(seen[it.n])
      seen[it.n] = true
      local s = p:shard_of(it.id)
      if last[s] then assert.is_true(it.n > last[s]) end
      last[s] = it.n
    end
    for i = 1, 300 do assert.is_true(seen[i]) end
  end)

  it("routes by the routing value when one is given and leaves id-less items at the end", function()
    local p = presort.new { shards = 4 }
    local batch = { { id = nil, n = 1 }, { id = "a", routing = "user-7", n = 2 }, { id = "b", n = 3 } }
    local out = p:order(batch, 0)
    assert.equal(1, out[3].n)
    local want = routing.shard { id = "a", routing = "user-7", shards = 4, routing_shards = routing.default_routing_shards(4) }
    assert.equal(want, p:shard_of("a", "user-7"))
  end)

  it("reads shard parameters from index settings as Elasticsearch returns them", function()
    local resp = { logs = { settings = { index = { number_of_shards = "3", version = { created = "8500003" } } } } }
    local params = assert(presort.params_from_settings(resp, "logs"))
    assert.equal(3, params.shards)
    assert.equal("legacy", params.func)
    assert.is_nil(params.routing_shards)
    resp.logs.settings.index.version.created = "9064000"
    assert.equal("modulo", presort.params_from_settings(resp, "logs").func)
    resp.logs.settings.index.number_of_routing_shards = "30"
    assert.equal(30, presort.params_from_settings(resp, "logs").routing_shards)
    assert.is_nil((presort.params_from_settings({}, "logs")))
    assert.has_error(function() presort.new { shards = 0 } end)
  end)
end)

describe("presort sort_buffer", function()
  local bulk = require "espipe.bulk"

  local function buffer(n)
    local b = bulk.new()
    for i = 1, n do b:index({ _id = "doc-" .. i }, { n = i }) end
    return b
  end

  local function first_shard(b, p)
    local a = b:item(1)
    return p:shard_of(a:match('"_id":"([^"]*)"'))
  end

  it("orders a bulk buffer by shard in place, its own turn rotating per call", function()
    local p = presort.new { shards = 4 }
    for turn = 0, 5 do
      local b = buffer(200)
      assert.is_nil(p:sort_buffer(b))
      assert.equal(turn % 4, first_shard(b, p))
      assert.equal(200, #b)
    end
    local b = buffer(200)
    p:sort_buffer(b, 2)
    assert.equal(2, first_shard(b, p))
  end)

  it("carries the tokens beside the positions along", function()
    local p = presort.new { shards = 3 }
    local b = buffer(50)
    local tokens = {}
    for i = 1, 50 do tokens[i] = "t" .. i end
    local moved = p:sort_buffer(b, 1, tokens)
    for k = 1, 50 do
      local _, src = b:item(k)
      assert.equal("t" .. src:match('"n":(%d+)'), moved[k])
    end
  end)
end)

describe("bulk indexer presort option #server", function()
  local devserver = require "spec.support.devserver"
  local client_mod = require "espipe.client"
  local server, c

  setup(function()
    server = devserver.start {}
    c = client_mod.new { hosts = { server.url } }
    assert(c.indices:create { index = "sorted", body = { settings = { index = { number_of_shards = 3 } } } })
  end)

  teardown(function()
    if c then c:close() end
    if server then server.stop() end
  end)

  it("sends each batch grouped by shard, every document once, with its on_batch token", function()
    local sent = {}
    local submit = c.transport.submit
    c.transport.submit = function(self, req)
      if type(req.body) == "userdata" then sent[#sent + 1] = req.body:body() end
      return submit(self, req)
    end
    local settled = {}
    local bi = c:bulk_indexer { index = "sorted", batch_docs = 60, presort = { shards = 3 },
      on_batch = function(b)
        for _, t in ipairs(b.tokens) do settled[#settled + 1] = t end
      end }
    for i = 1, 300 do assert(bi:index({ n = i }, { id = "p-" .. i, token = i })) end
    assert.equal(300, bi:close().ok)
    c.transport.submit = submit
    local p, seen = presort.new { shards = 3 }, {}
    for _, body in ipairs(sent) do
      local runs, done = {}, {}
      for id in body:gmatch('"_id":"([^"]+)"') do
        assert.is_nil(seen[id])
        seen[id] = true
        local s = p:shard_of(id)
        if runs[#runs] ~= s then
          assert.is_nil(done[s], "shard " .. s .. " split within one request")
          done[s] = true
          runs[#runs + 1] = s
        end
      end
    end
    local n = 0
    for _ in pairs(seen) do n = n + 1 end
    assert.equal(300, n)
    table.sort(settled)
    for i = 1, 300 do assert.equal(i, settled[i]) end
    assert(c:json_request { method = "POST", path = "/sorted/_refresh" })
    local r = assert(c:json_request { method = "GET", path = "/sorted/_count" })
    assert.equal(300, r.count)
  end)

  it("rejects presort params without a shard count", function()
    assert.has_error(function() c:bulk_indexer { index = "sorted", presort = {} } end,
      "presort.new: params.shards must be a positive number")
  end)
end)
