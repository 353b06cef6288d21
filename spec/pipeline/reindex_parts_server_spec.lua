-- espipe reindex --part I/N with --checkpoint es:INDEX/JOB: three parts run
-- as three processes in three working directories that share nothing but
-- the dev server; one is killed with -9 and restarted in a fourth
-- directory; the destination then equals the source, read back from the
-- dev server. Two copies of one part cannot both advance its checkpoint.
local devserver = require "support.devserver"
local json = require "espipe.json"
local es_checkpoint = require "espipe.pipeline.es_checkpoint"
local S = require "pipeline.support"
local J = require "pipeline.jobs"

local N = 3000

describe("espipe reindex --part with an es: checkpoint #server", function()
  local env = devserver.env { nodes = 1 }
  setup(env.start) teardown(env.stop) before_each(env.fresh)

  local bin = S.sh("pwd"):gsub("%s+$", "") .. "/bin/espipe"

  -- the part's checkpoint document, read from the dev server
  local function part_doc(job, i)
    local resp = env.client:mget { index = "espipe-jobs", ids = { job .. ".part-" .. i } }
    local d = resp and resp.docs and resp.docs[1]
    return d and d.found and d._source or nil
  end

  -- Starts part i of 3 in dir, in the background; its pid (the espipe process).
  local function start_part(dir, i, job, more)
    assert(os.execute("mkdir -p " .. S.q(dir)))
    J.exec("cd " .. S.q(dir) .. " && (" .. bin .. " reindex p-src p-dst --part " .. i .. "/3 --workers 1"
      .. " --checkpoint es:espipe-jobs/" .. job .. " --source-url " .. env.server.url .. " --size 100 --batch-docs 100"
      .. " --json " .. (more or "") .. " >out.json 2>err.txt & echo $! >pid; wait $!; echo $? >rc) 2>/dev/null &")
    return J.wait_for(function() return tonumber(S.read_if(dir .. "/pid") or "") end, 30, "part " .. i .. " to start")
  end

  local function exit_of(dir)
    return J.wait_for(function() return tonumber(S.read_if(dir .. "/rc") or "") end, 60, "a part to exit")
  end

  it("3 parts in 3 directories, one killed -9 and restarted in a 4th: the destination equals the source", function()
    J.seed(env.client, "p-src", N)
    local dirs = { env.dir .. "/a", env.dir .. "/b", env.dir .. "/c", env.dir .. "/d" }
    start_part(dirs[1], 1, "j1")
    local victim = start_part(dirs[2], 2, "j1", "--rate 500")
    start_part(dirs[3], 3, "j1")
    J.wait_for(function()
      local d = part_doc("j1", 2)
      return d and (d.counts.sent or 0) >= 200
    end, 60, "part 2 to checkpoint progress")
    assert.equal(0, J.exec("kill -9 " .. victim))
    assert.equal(0, exit_of(dirs[1]), S.read_if(dirs[1] .. "/err.txt"))
    assert.equal(0, exit_of(dirs[3]), S.read_if(dirs[3] .. "/err.txt"))
    assert.equal(137, exit_of(dirs[2]))
    assert.is_false(part_doc("j1", 2).done)

    -- part 2 again, elsewhere: only the dev server knows where it stood
    start_part(dirs[4], 2, "j1")
    assert.equal(0, exit_of(dirs[4]), S.read_if(dirs[4] .. "/err.txt"))
    assert.is_true(json.decode(S.read(dirs[4] .. "/out.json")).resumed)
    for i = 1, 3 do assert.is_true(part_doc("j1", i).done) end

    local a, na = J.dump(env.client, "p-src")
    local b, nb = J.dump(env.client, "p-dst")
    assert.equal(N, na)
    assert.equal(na, nb)
    assert.same(a, b)

    local code, out, err = J.espipe("job status es:espipe-jobs/j1 --url " .. env.server.url)
    assert.equal(0, code, err)
    assert.matches("3 of 3 parts done", out, 1, true)
    assert.matches("part 2/3  done", out, 1, true)
  end)

  it("refuses a second copy of a part: only one can advance its checkpoint", function()
    local policy = require("espipe.client.retry").new { retry_for = 5 }
    local function store()
      return es_checkpoint.store { client = env.client, policy = policy, index = "espipe-jobs2", job = "twice",
        part = 1, parts = 2, slices = { 0, 2 } }
    end
    local first, second = store(), store()
    assert.is_nil(first.load())
    assert.is_nil(second.load())
    local state = { slices = { ["0"] = { search_after = { 5 } }, ["2"] = { search_after = { 7 } } }, counts = { sent = 10 } }
    assert.is_true(first.save(state))
    local ok, err = second.save(state)
    assert.is_nil(ok)
    assert.matches("advanced by another copy of part 1", tostring(err))
    -- the first copy goes on advancing; a later load sees its positions
    state.slices["0"] = { search_after = { 9 }, done = true }
    assert.is_true(first.save(state))
    local seen = store().load()
    assert.same({ 9 }, seen.slices["0"].search_after)
    assert.is_true(seen.slices["0"].done)
  end)

  it("deals the slices by part and worker the same way in every copy", function()
    local slices = require "espipe.pipeline.slices"
    assert.same({ 0, 3 }, slices.of(6, 3, 1, 1, 1))
    assert.same({ 1 }, slices.of(6, 3, 2, 2, 1))
    assert.same({ 4 }, slices.of(6, 3, 2, 2, 2))
    local code, _, err = J.espipe("reindex a b --part 4/3")
    assert.equal(2, code)
    assert.matches("--part must be I/N", err, 1, true)
  end)
end)
