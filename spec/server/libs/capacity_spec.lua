-- The dev server's capacity model on its own: parsing, and the times and
-- rejections it gives for scripted requests (time passed in, no server).
local capacity = require("espipe.server.capacity")

local function shards_on(nodes, per_node)
  local list = {}
  for n = 0, nodes - 1 do
    for _ = 1, per_node do list[#list + 1] = { node = n } end
  end
  return list
end

-- a request of `docs` documents spread evenly over `shards`, arriving at coord at t
local function request(model, coord, t, shards, docs)
  local plan = model:begin(coord, t)
  local per_shard, accepted = {}, 0
  for i = 1, docs do
    local s = shards[(i - 1) % #shards + 1]
    if plan:admit(s) then
      per_shard[s] = (per_shard[s] or 0) + 1
      accepted = accepted + 1
    end
  end
  return plan:finish(per_shard), accepted, plan.rejected
end

describe("espipe.server.capacity parse", function()
  it("fills in defaults and reads every key", function()
    local c = assert(capacity.parse("docs_per_s=1000,per_request_ms=2,per_shard_ms=0.5,queue=10,nodes=3,hop_ms=0,"
      .. "change_after_s=30,change_factor=0.5"))
    assert.same({ docs_per_s = 1000, per_request_ms = 2, per_shard_ms = 0.5, queue = 10, nodes = 3, hop_ms = 0,
                  change_after_s = 30, change_factor = 0.5 }, c)
    local d = assert(capacity.parse("queue=5"))
    assert.equal(40000, d.docs_per_s)
    assert.equal(1, d.change_factor)
  end)

  it("names the bad key or value", function()
    local _, err = capacity.parse("docs_per_sec=5")
    assert.matches("^unknown key 'docs_per_sec' %(known: change_after_s, ", err)
    _, err = capacity.parse("queue=1.5")
    assert.equal("queue must be an integer >= 1, got '1.5'", err)
    _, err = capacity.parse("docs_per_s=0")
    assert.equal("docs_per_s must be a number > 0, got '0'", err)
    _, err = capacity.parse("per_shard_ms")
    assert.equal("expected key=value, got 'per_shard_ms'", err)
  end)
end)

describe("espipe.server.capacity model", function()
  local cfg = assert(capacity.parse("docs_per_s=1000,per_request_ms=10,per_shard_ms=5,hop_ms=2,queue=4,nodes=1"))

  it("charges a request per request, per shard and per document", function()
    local m = capacity.new(cfg, 1)
    local due = request(m, 0, 100, shards_on(1, 2), 500)
    -- 10 ms + 2 shards x 5 ms + 500 docs / 1000 per s
    assert.near(100 + 0.010 + 0.010 + 0.5, due, 1e-9)
  end)

  it("queues requests behind each other, so latency grows with concurrency", function()
    local m = capacity.new(cfg, 1)
    local shards = shards_on(1, 1)
    local first = request(m, 0, 0, shards, 100)
    local second = request(m, 0, 0, shards, 100)
    local third = request(m, 0, 0, shards, 100)
    assert.near(0.115, first, 1e-9)
    assert.near(0.230, second, 1e-9)
    assert.near(0.345, third, 1e-9)
    -- an idle node answers in one service time again
    assert.near(10.115, (request(m, 0, 10, shards, 100)), 1e-9)
  end)

  it("rejects the items of shard tasks beyond the queue, as 429s", function()
    local m = capacity.new(cfg, 1)
    local shards = shards_on(1, 2)
    local _, a1, r1 = request(m, 0, 0, shards, 10)
    local _, a2, r2 = request(m, 0, 0, shards, 10)
    assert.same({ 10, 0, 10, 0 }, { a1, r1, a2, r2 })
    local _, a3, r3 = request(m, 0, 0, shards, 10)
    assert.same({ 0, 10 }, { a3, r3 })
    local st = m:node_stats(0, 0).thread_pool.write
    assert.equal(4, st.queue)
    assert.equal(2, st.rejected)
    assert.equal(0, st.completed)
    -- once the work is done the queue drains and the tasks count as completed
    local later = m:node_stats(0, 100)
    assert.equal(0, later.thread_pool.write.queue)
    assert.equal(4, later.thread_pool.write.completed)
    assert.equal(20, later.indices.indexing.index_total)
  end)

  it("makes a request touching fewer shards faster (what pre-sorting saves)", function()
    local c3 = assert(capacity.parse("docs_per_s=10000,per_request_ms=3,per_shard_ms=1.5,queue=100,nodes=3"))
    -- the same 3000 documents as three requests: each over all 6 shards, or each for one shard
    local all, m = shards_on(3, 2), capacity.new(c3, 3)
    local spread = 0
    for coord = 0, 2 do spread = math.max(spread, (request(m, coord, 0, all, 1000))) end
    m = capacity.new(c3, 3)
    local sorted = 0
    for coord = 0, 2 do sorted = math.max(sorted, (request(m, coord, 0, { all[coord * 2 + 1] }, 1000))) end
    assert.is_true(sorted < spread, sorted .. " < " .. spread)
  end)

  it("forwards items for other nodes with a hop and work on those nodes", function()
    local m = capacity.new(cfg, 2)
    local due = request(m, 0, 0, { { node = 1 } }, 100)
    -- coordinating 10 ms on node 0 meanwhile; node 1: hop, 10 + 5 ms + 0.1 s, hop back
    assert.near(0.002 + 0.115 + 0.002, due, 1e-9)
    assert.equal(100, m:node_stats(1, 1).indices.indexing.index_total)
    assert.equal(0, m:node_stats(0, 1).indices.indexing.index_total)
  end)

  it("changes capacity after change_after_s", function()
    local c = assert(capacity.parse("docs_per_s=1000,per_request_ms=0,per_shard_ms=0,change_after_s=30,change_factor=0.5"))
    local m = capacity.new(c, 1)
    local shards = shards_on(1, 1)
    assert.near(1, request(m, 0, 0, shards, 1000), 1e-9)
    assert.near(30 + 2, request(m, 0, 30, shards, 1000), 1e-9)
  end)
end)
