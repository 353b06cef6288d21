-- espipe export --workers N: each worker exports its slices; the files end
-- in the one directory, numbered in one sequence, with one manifest; a
-- worker really killed with -9 fails the job naming it, and a rerun with the
-- same checkpoint writes every row exactly once.
local devserver = require "support.devserver"
local json = require "espipe.json"
local S = require "pipeline.support"
local J = require "pipeline.jobs"

local N = 2000

describe("espipe export --workers #server", function()
  local env = devserver.env { nodes = 1 }
  setup(env.start) teardown(env.stop) before_each(env.fresh)

  -- n -> source of every row of the directory's part files, and the number of rows
  local function rows_of(dir)
    local out, n = {}, 0
    for _, name in ipairs(S.listdir(dir)) do
      if name:match("^part%-%d+%.ndjson$") then
        for line in io.lines(dir .. "/" .. name) do
          local doc = json.decode(line)
          n = n + 1
          out[doc.n] = doc
        end
      end
    end
    return out, n
  end

  local function assert_exact(index, dir)
    local dump, ns = J.dump(env.client, index)
    local src = {}
    for _, doc in pairs(dump) do src[doc.n] = doc end
    local rows, nr = rows_of(dir)
    assert.equal(ns, nr) -- no row twice
    assert.same(src, rows)
  end

  local function args_for(index, dir, more)
    return "export " .. index .. " --url " .. env.server.url .. " --to " .. S.q(dir) .. " --workers 2 --slices 4"
      .. " --size 100 --file-bytes 20000 --json " .. (more or "")
  end

  it("writes one directory of part files numbered in one sequence, and one manifest", function()
    J.seed(env.client, "x-src", N)
    local dir = env.dir .. "/out"
    local code, out, err = J.espipe(args_for("x-src", dir))
    assert.equal(0, code, err)
    assert.equal(N, json.decode(out).rows)
    local manifest = json.decode(S.read(dir .. "/manifest.json"))
    assert.equal(N, manifest.rows)
    assert.equal(2, manifest.workers)
    local names = {}
    for i, f in ipairs(manifest.files) do
      names[i] = f.name
      assert.equal(string.format("part-%05d.ndjson", i - 1), f.name)
    end
    assert.is_true(#names > 2)
    local listed = {}
    for _, name in ipairs(S.listdir(dir)) do listed[#listed + 1] = name end
    table.insert(names, "manifest.json")
    table.sort(names)
    assert.same(names, listed) -- the workers' own directories are gone
    assert_exact("x-src", dir)
  end)

  it("fails naming a worker killed with -9; a rerun with the checkpoint writes every row once", function()
    J.seed(env.client, "y-src", N)
    local dir, ck = env.dir .. "/out", env.dir .. "/ck.json"
    local args = args_for("y-src", dir, "--checkpoint " .. S.q(ck))
    local log, rcf, pidf = env.dir .. "/job.err", env.dir .. "/job.rc", env.dir .. "/job.pid"
    J.exec("(" .. J.bin .. " " .. args .. " --rate 1000 >/dev/null 2>" .. S.q(log) .. " & echo $! >" .. S.q(pidf)
      .. "; wait $!; echo $? >" .. S.q(rcf) .. ") 2>/dev/null &")
    local victim = J.wait_for(function()
      local parent = tonumber(S.read_if(pidf) or "")
      -- a worker's checkpoint lists a completed file: it has made progress
      local st = require("espipe.pipeline.checkpoint").load(ck .. ".w1")
      if not (parent and st and #(st.files or {}) > 0) then return nil end
      return S.sh("ps -o pid= --ppid " .. parent):match("%d+")
    end, 60, "the workers to complete a file")
    assert.equal(0, J.exec("kill -9 " .. victim))
    local rc = J.wait_for(function() return tonumber(S.read_if(rcf) or "") end, 60, "the export to exit")
    assert.equal(1, rc)
    assert.matches("worker %d %(pid " .. victim .. "%) was killed by SIGKILL", S.read(log))
    assert.is_nil(S.read_if(dir .. "/manifest.json"))
    local code, _, err = J.espipe(args)
    assert.equal(0, code, err)
    assert_exact("y-src", dir)
    -- done: a third run has nothing to do
    local code3, out3, err3 = J.espipe(args)
    assert.equal(0, code3, err3)
    assert.is_true(json.decode(out3).already_done)
  end)

  it("espipe.export{ workers = 2 } from the Lua API", function()
    J.seed(env.client, "z-src", 500)
    local dir = env.dir .. "/api"
    local manifest, err = require("espipe").export { workers = 2, client = env.client, index = "z-src",
      source_url = env.server.url .. "/z-src", to = dir, file_bytes = 5000 }
    assert.is_nil(err)
    assert.equal(500, manifest.rows)
    assert.equal(2, manifest.workers)
    assert_exact("z-src", dir)
    assert.has_error(function()
      require("espipe").export { workers = 2, client = env.client, index = "z-src", to = dir }
    end, "espipe.export: workers = N needs source_url (each worker connects by URL)")
  end)

  it("refuses several workers for one file", function()
    local code, _, err = J.espipe("export x --url " .. env.server.url .. " --to " .. S.q(env.dir .. "/one.ndjson")
      .. " --workers 2")
    assert.equal(2, code)
    assert.matches("--workers needs a directory target", err, 1, true)
  end)
end)
