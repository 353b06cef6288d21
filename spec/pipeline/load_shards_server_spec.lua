-- espipe load --presort and --shard-aware against a 3-node dev server: its
-- stats count the documents per shard per bulk request, and those a node
-- received for shards it does not hold (forwarded).
local S = require "pipeline.support"
local J = require "pipeline.jobs"
local json = require "espipe.json"
local checkpoint = require "espipe.pipeline.checkpoint"

describe("espipe load --presort / --shard-aware #server", function()
  local env = require("pipeline.load_env").new { nodes = 3 }
  setup(env.start) teardown(env.stop) before_each(env.fresh)

  local N = 2000

  local function stats() return env.client:json_request { method = "GET", path = "/_espipe/stats" } end

  -- loads the file into a new 4-shard index with extra flags; what the
  -- server saw: requests, shard batches, documents forwarded between nodes
  local function load(index, extra)
    local path = env.dir .. "/in.ndjson"
    J.write_docs(path, N)
    assert(env.client.indices:create { index = index, settings = { number_of_shards = 4 } })
    local before = stats()
    local code, out, err = J.espipe("load " .. S.q(path) .. " --index " .. index .. " --id-field id --batch-docs 250 "
      .. extra .. " --json --url " .. env.server.url .. " --dead-letter " .. S.q(env.dir .. "/dl"))
    assert.equal(0, code, err)
    local after = stats()
    local forwarded = 0
    for name, n in pairs(after.nodes) do forwarded = forwarded + n.forwarded - before.nodes[name].forwarded end
    assert.equal(N, json.decode(out).ok)
    return { requests = after.bulk.requests - before.bulk.requests, forwarded = forwarded,
             shard_batches = after.bulk.shard_batches - before.bulk.shard_batches }
  end

  it("--presort sends each shard's documents in requests of their own, the same documents", function()
    local plain = load("plain", "")
    local ck = env.dir .. "/ck.json"
    local sorted = load("sorted", "--presort --checkpoint " .. S.q(ck))
    -- 250-document requests over 4 shards: each touches every shard unsorted
    assert.equal(4 * plain.requests, plain.shard_batches)
    assert.equal(sorted.requests, sorted.shard_batches) -- one shard per request
    assert.same(J.dump(env.client, "plain"), J.dump(env.client, "sorted"))
    local st = checkpoint.load(ck)
    assert.is_true(st.done)
    assert.equal(N, st.counts.ok)
    assert.equal(N, st.line)
  end)

  it("--shard-aware sends each document to the node holding its shard", function()
    local plain = load("plain-n", "")
    local aware = load("aware", "--shard-aware")
    assert.is_true(plain.forwarded > N / 3, "plain forwarded " .. plain.forwarded)
    assert.equal(0, aware.forwarded)
    assert.same(J.dump(env.client, "plain-n"), J.dump(env.client, "aware"))
  end)

  it("refuses --presort without an id field, naming what it needs", function()
    local path = env.dir .. "/in.ndjson"
    J.write_docs(path, 10)
    local code, _, err = J.espipe("load " .. S.q(path) .. " --index x --presort --url " .. env.server.url)
    assert.equal(2, code)
    assert.matches("presort needs each document's _id or routing as it is read", err, 1, true)
  end)
end)
