-- espipe reindex stopped by a real SIGINT/SIGTERM, and a transform that
-- raises: what was taken is flushed and accounted before the exit, the
-- checkpoint lets a rerun complete the destination exactly; counts read from
-- the dev server directly.
local devserver = require "support.devserver"
local json = require "espipe.json"
local checkpoint = require "espipe.pipeline.checkpoint"
local S = require "pipeline.support"
local J = require "pipeline.jobs"
local SJ = require "pipeline.signal_jobs"

describe("espipe reindex, signals and raising transforms #server", function()
  local env = devserver.env { nodes = 1 }
  setup(env.start) teardown(env.stop) before_each(env.fresh)

  -- the server's own count, no refresh: what the job made searchable
  local function count(index) return env.client:count { index = index }.count end

  local function ids(index)
    local set = {}
    for id in pairs((J.dump(env.client, index))) do set[id] = true end
    return set
  end

  local function lines_of(path)
    local f = io.open(path, "rb")
    if not f then return 0 end
    local n = 0
    for _ in f:lines() do n = n + 1 end
    f:close()
    return n
  end

  for _, case in ipairs { { "INT", 130 }, { "TERM", 143 } } do
    local sig = "SIG" .. case[1]
    it("on " .. sig .. " mid-reindex flushes what it took (server count == ok), exits " .. case[2]
      .. ", and a rerun with the checkpoint completes the destination exactly", function()
      local src, dst = "sig-src-" .. case[1]:lower(), "sig-dst-" .. case[1]:lower()
      J.seed(env.client, src, 6000)
      local ck = env.dir .. "/ck.json"
      local args = "reindex " .. src .. " " .. dst .. " --slices 2 --size 200 --batch-docs 200 --checkpoint "
        .. S.q(ck) .. " --json --source-url " .. env.server.url .. " --dead-letter " .. S.q(env.dir .. "/dl")
      local rc, out, err = SJ.signalled(env.dir, args .. " --rate 1500", case[1], function()
        local st = checkpoint.load(ck)
        return st and (st.counts.sent or 0) >= 1000
      end)
      assert.equal(case[2], rc, err)
      local summary = json.decode(out)
      assert.is_table(summary, out .. err)
      assert.equal(sig, summary.interrupted)
      assert.is_true(summary.ok < 6000, "the signal came too late to test anything")
      assert.equal(summary.added, summary.ok + summary.failed)
      assert.equal(summary.sent, summary.added)
      assert.equal(summary.ok, count(dst))
      assert.matches("interrupted by " .. sig .. " after " .. summary.ok .. " documents; checkpoint saved to "
        .. ck .. " (rerun the same command to resume)", err, 1, true)
      local saved = checkpoint.load(ck)
      assert.is_nil(saved.done)

      local code, out2, err2 = J.espipe(args)
      assert.equal(0, code, err2)
      assert.is_true(json.decode(out2).resumed)
      assert.equal(6000, count(dst))
      assert.same(ids(src), ids(dst))
    end)
  end

  local function open_pits()
    return env.client:json_request { method = "GET", path = "/_espipe/stats" }.search.open_pits
  end

  it("ends a long --rate wait on SIGTERM and flushes the page it took", function()
    J.seed(env.client, "slow-src", 3000)
    local pits = open_pits()
    -- 1000 documents at 10 a second: a 100 s wait after the first page
    local rc, out, err = SJ.signalled(env.dir, "reindex slow-src slow-dst --workers 1 --size 1000 --batch-docs 100 --rate 10 --json"
      .. " --source-url " .. env.server.url, "TERM", function() return open_pits() > pits end, 15)
    assert.equal(143, rc, err)
    local summary = json.decode(out)
    assert.equal("SIGTERM", summary.interrupted)
    assert.equal(1000, summary.ok)
    assert.equal(1000, count("slow-dst"))
    assert.matches("without --checkpoint a rerun starts over", err, 1, true)
  end)

  it("stops at once on a second signal, while the first one's flush waits on a stalled destination", function()
    local proxy = require("support.fault_proxy").start { upstream = env.server.url, rules = {}, max_seconds = 120 }
    J.seed(env.client, "twice-src", 6000)
    local ck = env.dir .. "/ck.json"
    local args = "reindex twice-src twice-dst --size 200 --batch-docs 200 --timeout 60 --checkpoint " .. S.q(ck)
      .. " --json --source-url " .. env.server.url .. " --dest-url " .. proxy.url .. " --rate 1500"
    local ok, rc, out, err = pcall(SJ.signalled, env.dir, args, { "INT", "TERM" }, function()
      local st = checkpoint.load(ck)
      if not (st and (st.counts.sent or 0) >= 1000) then return false end
      -- from now on every _bulk request hangs: the flush cannot end for 60 s
      if not proxy.stalling then proxy:set_rules { { match = "_bulk", action = "stall" } } end
      proxy.stalling = true
      return (proxy:stats().stalls or 0) >= 1
    end, 20)
    proxy:stop()
    assert(ok, rc)
    assert.equal(143, rc, err) -- 128 + SIGTERM: killed by the signal, not an exit of its own
    assert.equal("", out)
    assert.is_nil(err:find("interrupted by", 1, true))
  end)

  -- Reindexes n documents of src through a transform of that Lua text; exit
  -- status, summary, stderr and the transform dead letter's length.
  local function transformed(src, n, body, flags)
    J.seed(env.client, src, n)
    local t, dl = env.dir .. "/t.lua", env.dir .. "/dl"
    S.write(t, body)
    -- one process, one error budget (workers each have their share of it)
    local code, out, err = J.espipe("reindex " .. src .. " " .. src .. "-dst --workers 1 --transform " .. S.q(t) .. " " .. flags
      .. " --json --source-url " .. env.server.url .. " --dead-letter " .. S.q(dl))
    return code, json.decode(out), err, lines_of(dl .. ".transform")
  end

  it("stops a transform that raises on every document early, naming the first document", function()
    local code, summary, err, dead = transformed("raise", 5000,
      'return function(doc, hit) error("no good: " .. hit._id) end', "--size 200")
    assert.equal(1, code, err)
    assert.matches("stopped: all of the first 1000 documents failed", err, 1, true)
    assert.matches("first: document _id raise%-%d+, index raise: transform: .*no good: raise%-%d+", err)
    assert.is_true(summary.scanned <= 1000, "scanned " .. summary.scanned)
    assert.equal(summary.scanned, summary.transform_errors)
    assert.equal(summary.transform_errors, dead)
    assert.equal(summary.added, summary.ok + summary.failed)
    assert.equal(0, count("raise-dst"))
  end)

  it("counts a transform's errors against --max-errors and flushes what it accepted before the stop", function()
    local code, summary, err, dead = transformed("half", 5000,
      'return function(doc) if doc.n % 2 == 1 then error("odd") end return doc end',
      "--max-errors 300 --size 100 --batch-docs 100")
    assert.equal(1, code, err)
    assert.matches("stopped: more than 300 documents failed", err, 1, true)
    assert.equal(301, summary.transform_errors)
    assert.equal(301, dead)
    assert.is_true(summary.scanned < 5000)
    assert.is_true(summary.ok > 0)
    assert.equal(summary.added, summary.ok + summary.failed)
    assert.equal(summary.sent, summary.added)
    assert.equal(summary.ok, count("half-dst"))
  end)
end)
