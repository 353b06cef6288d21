-- espipe load --workers against the dev server: a plain file loaded by
-- worker processes, one range each (gzip input and stdin: handed over in
-- chunks of lines); the summary is exact over them, their dead letters
-- merged; a worker killed with -9 fails the job naming it, and the rerun
-- resumes every range, or every chunk, exactly (nothing done is sent again).
local S = require "pipeline.support"
local J = require "pipeline.jobs"
local SJ = require "pipeline.signal_jobs"
local json = require "espipe.json"
local checkpoint = require "espipe.pipeline.checkpoint"

describe("espipe load --workers #server", function()
  local env = require("pipeline.load_env").new()
  setup(env.start) teardown(env.stop) before_each(env.fresh)

  local N = 4000

  local versions = env.versions

  -- the pids of the parent's worker processes, oldest first
  local function children(parent)
    local p = io.popen("pgrep -P " .. parent)
    local out = {}
    for pid in p:lines() do out[#out + 1] = tonumber(pid) end
    p:close()
    table.sort(out)
    return out
  end

  local function args(path, index, extra)
    return "load " .. S.q(path) .. " --index " .. index .. " --id-field id --workers 2 --batch-docs 100 "
      .. (extra or "") .. " --url " .. env.server.url .. " --dead-letter " .. S.q(env.dir .. "/dl")
  end

  it("loads every line once, sums the workers exactly and merges their dead letters", function()
    local path = env.dir .. "/in.ndjson"
    J.write_docs(path, N)
    local f = assert(io.open(path, "ab"))
    f:write("not json\n")
    f:close()
    f = assert(io.open(path, "rb"))
    local text = f:read("*a")
    f:close()
    S.write(path, "[1]\n" .. text) -- one bad line in each half
    local code, out, err = J.espipe(args(path, "all", "--on-bad-line skip --json"))
    assert.equal(1, code, err) -- the bad lines
    local s = json.decode(out)
    assert.equal(2, s.workers)
    assert.equal(N, s.ok)
    assert.equal(N, s.added)
    assert.equal(s.added, s.ok + s.failed)
    assert.equal(2, s.bad_lines)
    assert.equal(N, s.per_index.all)
    local _, n = versions("all")
    assert.equal(N, n)
    local bad = S.read(env.dir .. "/dl.input")
    assert.equal(2, select(2, bad:gsub("\n", "")))
    assert.is_nil(io.open(env.dir .. "/dl.w1.input"))
    assert.is_nil(io.open(env.dir .. "/dl.w2.input"))
  end)

  it("fails naming a worker killed with -9, and the rerun resumes every range exactly", function()
    local path, ck = env.dir .. "/in.ndjson", env.dir .. "/ck.json"
    J.write_docs(path, N)
    local parent = J.spawn(args(path, "k", "--checkpoint " .. S.q(ck) .. " --rate 1500 --quiet"), env.dir .. "/log1")
    J.wait_for(function()
      local a, b = checkpoint.load(ck .. ".w1"), checkpoint.load(ck .. ".w2")
      return a and b and a.counts.ok >= 300 and b.counts.ok >= 300
    end, 60, "both workers' checkpoints to show progress")
    local kids = children(parent)
    assert.equal(2, #kids)
    J.exec("kill -9 " .. kids[1])
    J.wait_for(function() return not J.alive(parent) end, 60, "the parent to end")
    assert.matches("(pid " .. kids[1] .. ") was killed by SIGKILL", S.read(env.dir .. "/log1"), 1, true)
    local mid = { checkpoint.load(ck .. ".w1"), checkpoint.load(ck .. ".w2") }
    assert.is_nil(mid[1].done) -- the killed worker's range was not finished
    local code, out, err = J.espipe(args(path, "k", "--checkpoint " .. S.q(ck) .. " --json"))
    assert.equal(0, code, err)
    local s = json.decode(out)
    assert.is_true(s.resumed)
    assert.equal(N, s.job.ok)
    assert.equal(N - mid[1].counts.ok - (mid[2].counts.ok), s.ok)
    local docs, n = versions("k")
    assert.equal(N, n)
    -- the first range holds its lines from the file's start: those before its position were not re-sent
    for i = 1, mid[1].line do assert.equal(1, docs["doc-" .. i].version, "doc-" .. i .. " re-sent") end
    for _, w in ipairs { ".w1", ".w2" } do assert.is_true(checkpoint.load(ck .. w).done) end
  end)

  for _, case in ipairs { { "gzip input", "gz" }, { "stdin", "stdin" } } do
    it("hands " .. case[1] .. " to the workers in chunks of lines: every line once, exact counts", function()
      local path = env.dir .. "/in.ndjson"
      J.write_docs(path, N)
      local input = path
      if case[2] == "gz" then
        assert.equal(0, J.exec("gzip -f " .. S.q(path)))
        input = path .. ".gz"
      end
      local cmd = args(case[2] == "stdin" and "-" or input, case[2], "--json")
      if case[2] == "stdin" then cmd = cmd .. " <" .. S.q(path) end
      local code, out, err = J.espipe(cmd)
      assert.equal(0, code, err)
      local s = json.decode(out)
      assert.equal(N, s.ok)
      assert.equal(N, s.read)
      assert.equal(s.added, s.ok + s.failed)
      local docs, n = versions(case[2])
      assert.equal(N, n)
      for i = 1, N do assert.equal(1, docs["doc-" .. i].version, "doc-" .. i) end
    end)
  end

  it("refuses CSV and bulk-format input, whose records a cut at a line could part", function()
    local path = env.dir .. "/in.csv"
    S.write(path, "id,n\na,1\n")
    for _, format in ipairs { "csv", "bulk" } do
      local code, _, err = J.espipe(args(path, "f", "--format " .. format))
      assert.equal(2, code)
      assert.matches("--workers takes NDJSON or a dead letter, not --format " .. format, err, 1, true)
    end
  end)

  it("on SIGTERM saves the parts of chunked input done (exit 143), and the rerun loads the rest", function()
    local path, ck = env.dir .. "/in.ndjson", env.dir .. "/ck.json"
    J.write_docs(path, N)
    assert.equal(0, J.exec("gzip -f " .. S.q(path)))
    local gz = path .. ".gz"
    local code, out, err = SJ.signalled(env.dir, args(gz, "tc", "--checkpoint " .. S.q(ck) .. " --rate 1500 --json"),
      "TERM", function()
        local st = checkpoint.load(ck)
        return st and st.counts.ok >= 500
      end)
    assert.equal(143, code, err)
    local s = json.decode(out)
    local mid = checkpoint.load(ck)
    assert.is_nil(mid.done)
    assert.equal(s.ok, mid.counts.ok) -- everything the workers took is flushed and in the checkpoint
    code, out, err = J.espipe(args(gz, "tc", "--checkpoint " .. S.q(ck) .. " --json"))
    assert.equal(0, code, err)
    s = json.decode(out)
    assert.equal(N - mid.counts.ok, s.ok)
    assert.equal(N, s.job.ok)
    local _, n = versions("tc")
    assert.equal(N, n)
  end)

  it("resumes gzip input handed over in chunks exactly after a worker is killed with -9", function()
    local path, ck = env.dir .. "/in.ndjson", env.dir .. "/ck.json"
    J.write_docs(path, N)
    local starts, at = {}, 0 -- each line's byte offset in the decompressed input
    for line in S.read(path):gmatch("[^\n]*\n") do
      starts[#starts + 1] = at
      at = at + #line
    end
    assert.equal(0, J.exec("gzip -f " .. S.q(path)))
    local gz = path .. ".gz"
    local parent = J.spawn(args(gz, "kc", "--checkpoint " .. S.q(ck) .. " --rate 1500 --quiet"), env.dir .. "/log1")
    J.wait_for(function()
      local st = checkpoint.load(ck)
      return st and st.counts.ok >= 600
    end, 60, "the checkpoint to show progress")
    local kids = children(parent)
    assert.equal(2, #kids)
    J.exec("kill -9 " .. kids[1])
    J.wait_for(function() return not J.alive(parent) end, 60, "the parent to end")
    assert.matches("(pid " .. kids[1] .. ") was killed by SIGKILL", S.read(env.dir .. "/log1"), 1, true)
    local mid = checkpoint.load(ck)
    assert.is_nil(mid.done)
    local function done_before(offset)
      if offset < mid.offset then return true end
      for _, r in ipairs(mid.ranges) do if offset >= r[1] and offset < r[2] then return true end end
      return false
    end
    local done_lines = 0
    for i = 1, N do if done_before(starts[i]) then done_lines = done_lines + 1 end end
    assert.equal(done_lines, mid.counts.ok) -- the counts are those of the parts done
    assert.is_true(done_lines < N, "killed mid-way")
    local code, out, err = J.espipe(args(gz, "kc", "--checkpoint " .. S.q(ck) .. " --json"))
    assert.equal(0, code, err)
    local s = json.decode(out)
    assert.is_true(s.resumed)
    assert.equal(N - done_lines, s.ok)
    assert.equal(N, s.job.ok)
    local docs, n = versions("kc")
    assert.equal(N, n)
    for i = 1, N do
      if done_before(starts[i]) then assert.equal(1, docs["doc-" .. i].version, "doc-" .. i .. " re-sent") end
    end
    assert.is_true(checkpoint.load(ck).done)
  end)
end)
