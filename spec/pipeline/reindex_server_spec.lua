-- espipe reindex against the dev server: passthrough, the enrichment
-- example, pre-sort, alias swap, resume after kill -9, settings restored
-- after SIGTERM.
local devserver = require "support.devserver"
local json = require "espipe.json"
local checkpoint = require "espipe.pipeline.checkpoint"
local S = require "pipeline.support"
local J = require "pipeline.jobs"

describe("espipe reindex #server", function()
  local env = devserver.env { nodes = 3 }
  setup(env.start) teardown(env.stop) before_each(env.fresh)

  local function load(index, n, shards)
    if shards then assert(env.client.indices:create { index = index, settings = { number_of_shards = shards } }) end
    J.write_docs(env.dir .. "/" .. index .. ".ndjson", n)
    local code, _, err = J.espipe("load " .. S.q(env.dir .. "/" .. index .. ".ndjson") .. " --index " .. index
      .. " --id-field id --quiet --url " .. env.server.url)
    assert.equal(0, code, err)
    env.client:refresh { index = index }
  end

  local function settings(index)
    local r = assert(env.client.indices:get_settings { index = index })
    return r[index].settings.index
  end

  it("copies every document with its id and an identical source (2 slices)", function()
    load("src-a", 3000, 2)
    local code, out, err = J.espipe("reindex src-a dst-a --slices 2 --json --quiet --source-url " .. env.server.url)
    assert.equal(0, code, err)
    local summary = json.decode(out)
    assert.equal(3000, summary.scanned)
    assert.equal(3000, summary.ok)
    assert.equal(0, summary.failed)
    local a, na = J.dump(env.client, "src-a")
    local b, nb = J.dump(env.client, "dst-a")
    assert.equal(na, nb)
    assert.same(a, b)
  end)

  it("runs the enrichment example: lookup, rename, drop, fan-out, dead-lettered errors", function()
    local code, _, err = J.exec("ES_URL=" .. env.server.url .. " LUA=lua5.4 ESPIPE_FLAGS=--quiet examples/month_load.sh 600")
    assert.equal(0, code, err)
    env.client:refresh { index = "logs-2024.*" }
    local src = J.dump(env.client, "logs-2024.*")
    local dl = env.dir .. "/dl.ndjson"
    local out
    code, out, err = J.espipe("reindex 'logs-2024.*' enriched --transform examples/enrich.lua --json --quiet --dead-letter "
      .. S.q(dl) .. " --source-url " .. env.server.url)
    assert.equal(1, code) -- unknown country codes were dead-lettered
    assert.matches(dl .. ".transform", err, 1, true)
    local summary = json.decode(out)
    local dst = J.dump(env.client, "enriched")
    local incidents = J.dump(env.client, "incidents")
    local want_kept, want_dropped, want_failed, want_incidents = 0, 0, 0, 0
    for id, doc in pairs(src) do
      if doc.path == "/health" then
        want_dropped = want_dropped + 1
        assert.is_nil(dst[id])
      elseif doc.country == "XX" then
        want_failed = want_failed + 1
        assert.is_nil(dst[id])
      else
        want_kept = want_kept + 1
        local d = assert(dst[id], id)
        assert.equal(doc.bytes, d.response_bytes)
        assert.is_nil(d.bytes)
        assert.equal(doc.country, d.country.code)
        assert.is_string(d.country.region)
        if doc.status >= 500 then
          want_incidents = want_incidents + 1
          assert.equal(doc.request_id, incidents["incident-" .. id].request_id)
        end
      end
    end
    assert.is_true(want_dropped > 0 and want_failed > 0 and want_incidents > 0)
    assert.equal(want_dropped, summary.dropped)
    assert.equal(want_failed, summary.transform_errors)
    assert.equal(want_kept + want_incidents, summary.ok)
    local n = 0
    for l in S.read(dl .. ".transform"):gmatch("[^\n]+") do
      local rec = json.decode(l)
      assert.matches("unknown country code XX", rec.error)
      assert.equal("XX", src[rec._id].country)
      n = n + 1
    end
    assert.equal(want_failed, n)
  end)

  it("pre-sorts by destination shard: fewer shards per bulk request, same documents", function()
    load("src-p", 4000, 1)
    assert(env.client.indices:create { index = "dst-plain", settings = { number_of_shards = 4 } })
    assert(env.client.indices:create { index = "dst-sorted", settings = { number_of_shards = 4 } })
    local function docs_per_shard_batch(args)
      local before = env.client:json_request { method = "GET", path = "/_espipe/stats" }.bulk
      local code, _, err = J.espipe("reindex src-p " .. args .. " --batch-docs 500 --quiet --source-url " .. env.server.url)
      assert.equal(0, code, err)
      local after = env.client:json_request { method = "GET", path = "/_espipe/stats" }.bulk
      return (after.items - before.items) / (after.shard_batches - before.shard_batches),
             (after.shard_batches - before.shard_batches) / (after.requests - before.requests)
    end
    local plain, plain_shards = docs_per_shard_batch("dst-plain")
    local sorted, sorted_shards = docs_per_shard_batch("dst-sorted --presort")
    -- 500-doc requests over 4 shards: ~125 docs per shard unsorted; sorted
    -- windows are cut where the shard changes: one shard per request
    assert.is_true(sorted >= 2 * plain, "presorted " .. sorted .. " vs plain " .. plain)
    assert.is_true(plain_shards > 3, "plain requests touch " .. plain_shards .. " shards")
    assert.equal(1, sorted_shards)
    assert.same(J.dump(env.client, "dst-plain"), J.dump(env.client, "dst-sorted"))
  end)

  it("swaps an alias atomically at the end", function()
    load("src-s", 50)
    assert(env.client.indices:create { index = "old-s" })
    assert(env.client.indices:update_aliases { actions = { { add = { index = "old-s", alias = "current" } } } })
    local code, _, err = J.espipe("reindex src-s new-s --swap-alias current --quiet --source-url " .. env.server.url)
    assert.equal(0, code, err)
    local aliases = assert(env.client.indices:get_alias { name = "current" })
    assert.is_not_nil(aliases["new-s"])
    assert.is_nil(aliases["old-s"])
  end)

  it("resumes after kill -9 and ends with exactly the source's documents", function()
    load("src-k", 6000, 2)
    local ck = env.dir .. "/ck.json"
    local args = "src-k dst-k --slices 2 --op create --checkpoint " .. S.q(ck) .. " --batch-docs 200 --rate 1500 --quiet --source-url " .. env.server.url
    local pid = J.spawn("reindex " .. args, env.dir .. "/log1")
    J.wait_for(function()
      local st = checkpoint.load(ck)
      return st and st.counts and (st.counts.sent or 0) >= 1000
    end, 60, "the checkpoint to show progress")
    J.exec("kill -9 " .. pid)
    J.wait_for(function() return not J.alive(pid) end, 10, "the job to die")
    local mid = checkpoint.load(ck)
    assert.is_nil(mid.done)
    local code, out, err = J.espipe("reindex " .. args:gsub("%-%-rate 1500", "") .. " --json")
    assert.equal(0, code, err)
    local summary = json.decode(out)
    assert.is_true(summary.resumed)
    assert.equal(0, summary.failed)
    local a, na = J.dump(env.client, "src-k")
    local b, nb = J.dump(env.client, "dst-k")
    assert.equal(6000, na)
    assert.equal(na, nb)
    assert.same(a, b)
    assert.is_true(checkpoint.load(ck).done)
    -- a third run finds the job done and sends nothing
    code, out = J.espipe("reindex " .. args .. " --json")
    assert.equal(0, code)
    assert.is_true(json.decode(out).already_done)
  end)

  it("restores refresh_interval and replicas after SIGTERM", function()
    load("src-t", 4000)
    assert(env.client.indices:create { index = "dst-t", settings = { number_of_replicas = 1, refresh_interval = "7s" } })
    local state = env.dir .. "/ck.json"
    local pid = J.spawn("reindex src-t dst-t --tune-dest --checkpoint " .. S.q(state) .. " --rate 500 --quiet --source-url " .. env.server.url,
      env.dir .. "/log")
    J.wait_for(function() return settings("dst-t").refresh_interval == "-1" end, 30, "the destination to be tuned")
    assert.equal("0", settings("dst-t").number_of_replicas)
    J.exec("kill -TERM " .. pid)
    J.wait_for(function() return not J.alive(pid) end, 10, "the job to exit")
    J.wait_for(function() return settings("dst-t").refresh_interval == "7s" end, 30, "the settings to come back")
    assert.equal("1", settings("dst-t").number_of_replicas)
    J.wait_for(function() return not io.open(state .. ".tune") end, 10, "the tune state file to go")
  end)
end)
