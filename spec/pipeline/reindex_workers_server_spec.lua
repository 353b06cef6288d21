-- espipe reindex --workers N: worker processes copy their slices; the
-- parent's summary is their exact sum, their dead letters end in one file;
-- SIGTERM stops every worker cleanly; a worker really killed with -9 fails
-- the job naming it, and a rerun with the same checkpoint completes the
-- destination exactly (read back from the dev server).
local devserver = require "support.devserver"
local json = require "espipe.json"
local checkpoint = require "espipe.pipeline.checkpoint"
local S = require "pipeline.support"
local J = require "pipeline.jobs"
local SJ = require "pipeline.signal_jobs"

local N = 2000

describe("espipe reindex --workers #server", function()
  local env = devserver.env { nodes = 1 }
  setup(env.start) teardown(env.stop) before_each(env.fresh)

  local function assert_same_index(src, dst)
    local a, na = J.dump(env.client, src)
    local b, nb = J.dump(env.client, dst)
    assert.equal(na, nb)
    assert.same(a, b)
  end

  local function lines_of(path)
    local f = io.open(path, "rb")
    if not f then return 0 end
    local n = 0
    for _ in f:lines() do n = n + 1 end
    f:close()
    return n
  end

  local function files_like(dir, pattern)
    local out = {}
    for _, name in ipairs(S.listdir(dir)) do if name:find(pattern) then out[#out + 1] = name end end
    return out
  end

  local function args_for(src, dst, more)
    return "reindex " .. src .. " " .. dst .. " --source-url " .. env.server.url .. " --json --workers 2 --slices 4"
      .. " --size 100 --batch-docs 100 --dead-letter " .. S.q(env.dir .. "/dl") .. " " .. (more or "")
  end

  it("copies with 2 workers: the destination equals the source, the summary is the exact sum", function()
    J.seed(env.client, "w-src", N)
    -- a transform that raises on every 100th document: two workers' dead letters, one file
    local tf = env.dir .. "/t.lua"
    S.write(tf, "return function(doc) if doc.n % 100 == 0 then error('no ' .. doc.n) end return doc end")
    local code, out, err = J.espipe(args_for("w-src", "w-dst", "--transform " .. S.q(tf) .. " --max-errors 1000"))
    assert.equal(1, code, err) -- documents were dead-lettered
    local s = json.decode(out)
    assert.equal(2, s.workers)
    assert.equal(N, s.scanned)
    assert.equal(N / 100, s.transform_errors)
    assert.equal(N - N / 100, s.ok)
    assert.equal(s.added, s.ok + s.failed)
    assert.equal(N - N / 100, env.client:count { index = "w-dst" }.count)
    assert.equal(N / 100, lines_of(env.dir .. "/dl.transform"))
    assert.same({}, files_like(env.dir, "%.w%d"))
    -- every document the transform kept is the source's
    local src = J.dump(env.client, "w-src")
    local dst = J.dump(env.client, "w-dst")
    for id, doc in pairs(src) do
      if doc.n % 100 ~= 0 then assert.same(doc, dst[id]) else assert.is_nil(dst[id]) end
    end
  end)

  it("stops every worker on SIGTERM, each flushing what it took, and a rerun resumes every slice", function()
    J.seed(env.client, "t-src", 2 * N) -- 4 s at --rate 1000: time to stop it midway on a loaded machine
    local ck = env.dir .. "/ck.json"
    local args = args_for("t-src", "t-dst", "--checkpoint " .. S.q(ck))
    local rc, out, err = SJ.signalled(env.dir, args .. " --rate 1000", "TERM", function()
      local st = checkpoint.load(ck)
      return st and (st.counts.sent or 0) >= 200
    end)
    assert.equal(143, rc, err)
    local s = json.decode(out)
    assert.equal("SIGTERM", s.interrupted)
    assert.is_true(s.ok < 2 * N, "the signal came too late to test anything")
    assert.equal(s.added, s.ok + s.failed)
    assert.equal(s.ok, env.client:count { index = "t-dst" }.count)
    local code, out2, err2 = J.espipe(args)
    assert.equal(0, code, err2)
    assert.is_true(json.decode(out2).resumed)
    assert_same_index("t-src", "t-dst")
  end)

  it("fails naming a worker killed with -9; a rerun with the same checkpoint completes the copy exactly", function()
    J.seed(env.client, "k-src", 2 * N)
    local ck = env.dir .. "/ck.json"
    local args = args_for("k-src", "k-dst", "--checkpoint " .. S.q(ck))
    local log, rcf, pidf = env.dir .. "/job.err", env.dir .. "/job.rc", env.dir .. "/job.pid"
    J.exec("(" .. J.bin .. " " .. args .. " --rate 1000 >/dev/null 2>" .. S.q(log) .. " & echo $! >" .. S.q(pidf)
      .. "; wait $!; echo $? >" .. S.q(rcf) .. ") 2>/dev/null &")
    local victim = J.wait_for(function()
      local st, parent = checkpoint.load(ck), tonumber(S.read_if(pidf) or "")
      if not (parent and st and (st.counts.sent or 0) >= 200) then return nil end
      -- worker 1: a child of the espipe parent
      return S.sh("ps -o pid= --ppid " .. parent):match("%d+")
    end, 60, "the workers to make progress")
    assert.equal(0, J.exec("kill -9 " .. victim))
    local rc = J.wait_for(function() return tonumber(S.read_if(rcf) or "") end, 60, "the job to exit")
    assert.equal(1, rc)
    assert.matches("worker %d %(pid " .. victim .. "%) was killed by SIGKILL", S.read(log))
    local code, out2, err2 = J.espipe(args)
    assert.equal(0, code, err2)
    assert.is_true(json.decode(out2).resumed)
    assert_same_index("k-src", "k-dst")
  end)

  it("espipe.reindex{ workers = 2 } from the Lua API: a transform file, clusters by URL", function()
    J.seed(env.client, "a-src", 500)
    local tf = env.dir .. "/t.lua"
    S.write(tf, "return function(doc) doc.twice = doc.n * 2 return doc end")
    local reindex = require("espipe").reindex
    local summary, err = reindex { workers = 2, transform = tf, dead_letter = env.dir .. "/dl",
      source = { client = env.client, index = "a-src", url = env.server.url },
      dest = { client = env.client, index = "a-dst", url = env.server.url } }
    assert.is_nil(err)
    assert.equal(2, summary.workers)
    assert.equal(500, summary.ok)
    local dst = J.dump(env.client, "a-dst")
    for id, doc in pairs(J.dump(env.client, "a-src")) do
      doc.twice = doc.n * 2
      assert.same(doc, dst[id])
    end
    assert.has_error(function()
      reindex { workers = 2, source = { client = env.client, index = "a-src" }, dest = { client = env.client, index = "x" } }
    end, "espipe.reindex: workers = N needs source.url and dest.url (each worker connects by URL)")
    assert.has_error(function()
      reindex { workers = 2, transform = function(d) return d end,
        source = { client = env.client, index = "a-src", url = env.server.url },
        dest = { client = env.client, index = "x", url = env.server.url } }
    end, "espipe.reindex: with workers = N, transform is the path of a Lua file returning the function")
  end)

  it("with --workers 1 runs in this process as before", function()
    J.seed(env.client, "o-src", 500)
    local code, out, err = J.espipe("reindex o-src o-dst --source-url " .. env.server.url .. " --json --workers 1")
    assert.equal(0, code, err)
    assert.is_nil(json.decode(out).workers)
    assert_same_index("o-src", "o-dst")
  end)
end)
