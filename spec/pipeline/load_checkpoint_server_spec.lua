-- espipe load --checkpoint against the dev server: a load killed with -9
-- mid-way (plain, gzip, CSV and bulk-format input) and rerun indexes every
-- document exactly once, re-sends nothing before the saved position, and
-- sums its counts over the whole job; SIGTERM saves the checkpoint too;
-- another job's checkpoint, or a changed input, is refused.
local S = require "pipeline.support"
local J = require "pipeline.jobs"
local SJ = require "pipeline.signal_jobs"
local json = require "espipe.json"
local checkpoint = require "espipe.pipeline.checkpoint"

describe("espipe load --checkpoint #server", function()
  local env = require("pipeline.load_env").new()
  setup(env.start) teardown(env.stop) before_each(env.fresh)

  local N = 4000

  -- id -> { version =, n = } of every document the index holds
  local versions = env.versions

  -- kind: "plain" | "gz" NDJSON, "csv" (a header row), "bulk" (action and source lines);
  -- the input's path, and the lines a document takes
  local function input(kind)
    local path = env.dir .. "/in." .. kind
    if kind == "csv" or kind == "bulk" then
      local f = assert(io.open(path, "wb"))
      if kind == "csv" then f:write("id,n\n") end
      for i = 1, N do
        if kind == "csv" then f:write("doc-", i, ",", i, "\n")
        else f:write('{"index":{"_index":"k', kind, '","_id":"doc-', i, '"}}\n{"n":', i, "}\n") end
      end
      f:close()
      return path, kind == "bulk" and 2 or 1
    end
    J.write_docs(path, N)
    if kind == "plain" then return path, 1 end
    assert.equal(0, J.exec("gzip -f " .. S.q(path)))
    return path .. ".gz", 1
  end

  local FORMAT = { csv = " --format csv --csv-types", bulk = " --format bulk" }

  local function args(path, index, ck, kind)
    return "load " .. S.q(path) .. (kind == "bulk" and "" or (" --index " .. index .. " --id-field id"))
      .. (FORMAT[kind] or "") .. " --checkpoint " .. S.q(ck)
      .. " --batch-docs 100 --url " .. env.server.url .. " --dead-letter " .. S.q(env.dir .. "/dl")
  end

  local function killed_and_resumed(kind)
    local ck, index = env.dir .. "/ck.json", "k" .. kind
    local path, per_doc = input(kind)
    local cmd = args(path, index, ck, kind)
    local pid = J.spawn(cmd .. " --rate 2000 --quiet", env.dir .. "/log1")
    J.wait_for(function()
      local st = checkpoint.load(ck)
      return st and st.counts.ok >= 1000
    end, 60, "the checkpoint to show progress")
    J.exec("kill -9 " .. pid)
    J.wait_for(function() return not J.alive(pid) end, 10, "the load to die")
    local mid = checkpoint.load(ck)
    assert.is_nil(mid.done)
    assert.is_true(mid.counts.ok < N, "the load was killed mid-way")
    -- every document before the position acknowledged (a CSV's header is line 1)
    assert.equal(math.floor((mid.line - (kind == "csv" and 1 or 0)) / per_doc), mid.counts.ok)
    local code, out, err = J.espipe(cmd .. " --json")
    assert.equal(0, code, err)
    local s = json.decode(out)
    assert.is_true(s.resumed)
    assert.equal(N - mid.counts.ok, s.ok) -- this run: the lines after the position
    assert.equal(N, s.job.ok) -- the whole job
    assert.equal(N, s.job.read)
    assert.equal(0, s.job.failed)
    local docs, n = versions(index)
    assert.equal(N, n)
    for i = 1, N do
      local d = assert(docs["doc-" .. i], "doc-" .. i)
      assert.equal(i, d.n)
      -- a line before the saved position was never sent again
      if i <= mid.counts.ok then assert.equal(1, d.version, "doc-" .. i .. " re-sent") end
    end
    assert.is_true(checkpoint.load(ck).done)
    -- a third run finds the job done and reads nothing
    code, out, err = J.espipe(cmd .. " --json")
    assert.equal(0, code, err)
    s = json.decode(out)
    assert.is_true(s.already_done)
    assert.equal(N, s.job.ok)
    assert.matches("says this job is done", err, 1, true)
  end

  for _, kind in ipairs { "plain", "gz", "csv", "bulk" } do
    it("resumes " .. kind .. " input exactly after kill -9", function() killed_and_resumed(kind) end)
  end

  it("saves the checkpoint on SIGTERM (exit 143), and the rerun completes the job", function()
    local path, ck = input("plain"), env.dir .. "/ck.json"
    local code, out, err = SJ.signalled(env.dir, args(path, "term", ck) .. " --rate 2000 --json", "TERM", function()
      local st = checkpoint.load(ck)
      return st and st.counts.ok >= 500
    end)
    assert.equal(143, code, err)
    assert.matches("checkpoint saved to", err, 1, true)
    local s = json.decode(out)
    local mid = checkpoint.load(ck)
    -- everything read was flushed: the checkpoint is at the last line read
    assert.equal(s.ok, mid.counts.ok)
    assert.equal(s.read, mid.line)
    code, out, err = J.espipe(args(path, "term", ck) .. " --json")
    assert.equal(0, code, err)
    s = json.decode(out)
    assert.equal(N - mid.line, s.ok)
    assert.equal(N, s.job.ok)
    local _, n = versions("term")
    assert.equal(N, n)
  end)

  it("refuses the checkpoint of another job or of a changed input", function()
    local path, ck = input("plain"), env.dir .. "/ck.json"
    local code, _, err = J.espipe(args(path, "one", ck) .. " --quiet")
    assert.equal(0, code, err)
    code, _, err = J.espipe(args(path, "two", ck) .. " --quiet")
    assert.equal(2, code)
    assert.matches("is of another job: its index is one, this job's two", err, 1, true)
    local f = assert(io.open(path, "ab"))
    f:write('{"id":"extra","n":0}\n')
    f:close()
    code, _, err = J.espipe(args(path, "one", ck) .. " --quiet")
    assert.equal(2, code)
    assert.matches("changed since it was written", err, 1, true)
    code, _, err = J.espipe("load - --index one --checkpoint " .. S.q(ck) .. " --url " .. env.server.url .. " </dev/null")
    assert.equal(2, code)
    assert.matches("stdin cannot be resumed", err, 1, true)
  end)
end)
