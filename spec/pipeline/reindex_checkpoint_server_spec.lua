-- Reindex checkpoints and the end of a job, against the dev server: a resume
-- keeps its point in time (or restarts the slices when it is gone), positions
-- come from acknowledged batches without draining the indexer, the
-- destination is refreshed once at the end, a transform that forgets to
-- return is an error, unknown options raise.
local devserver = require "support.devserver"
local json = require "espipe.json"
local checkpoint = require "espipe.pipeline.checkpoint"
local reindex = require "espipe.pipeline.reindex"
local S = require "pipeline.support"
local J = require "pipeline.jobs"

describe("reindex checkpoints #server", function()
  local env = devserver.env { nodes = 1 }
  setup(env.start) teardown(env.stop) before_each(env.fresh)

  local function open_pits()
    return env.client:json_request { method = "GET", path = "/_espipe/stats" }.search.open_pits
  end

  -- Starts a checkpointed reindex, kills it with -9 once its checkpoint has
  -- recorded progress; returns the args to rerun it and the checkpoint.
  local function killed_job(src, dst)
    J.seed(env.client, src, 6000)
    local ck = env.dir .. "/ck.json"
    -- one process: its checkpoint names the one PIT (--workers: reindex_workers_server_spec)
    local args = src .. " " .. dst .. " --slices 2 --workers 1 --checkpoint " .. S.q(ck)
      .. " --batch-docs 200 --quiet --source-url " .. env.server.url
    local pid = J.spawn("reindex " .. args .. " --rate 1500", env.dir .. "/log1")
    J.wait_for(function()
      local st = checkpoint.load(ck)
      return st and st.slices and next(st.slices) and (st.counts.sent or 0) >= 1000
    end, 60, "the checkpoint to show progress")
    J.exec("kill -9 " .. pid)
    J.wait_for(function() return not J.alive(pid) end, 10, "the job to die")
    return args, checkpoint.load(ck)
  end

  -- Reruns the killed job to its end; its summary.
  local function resumed(args)
    local code, out, err = J.espipe("reindex " .. args .. " --json")
    assert.equal(0, code, err)
    local summary = json.decode(out)
    assert.is_true(summary.resumed)
    return summary
  end

  local function assert_exact(src, dst)
    local a, na = J.dump(env.client, src)
    local b, nb = J.dump(env.client, dst)
    assert.equal(6000, na)
    assert.equal(na, nb)
    assert.same(a, b)
  end

  it("resumes on the saved point in time while it lives", function()
    local before = open_pits()
    local args, mid = killed_job("src-alive", "dst-alive")
    assert.is_string(mid.pit_id)
    assert.equal(before + 1, open_pits()) -- the killed job's PIT, still open
    local summary = resumed(args)
    assert.is_true(summary.pit_reused)
    assert.is_nil(summary.restarted_slices)
    -- no second PIT was opened: the saved one was used, and freed at the end
    assert.equal(before, open_pits())
    assert_exact("src-alive", "dst-alive")
  end)

  it("starts the unfinished slices again when the saved point in time is gone", function()
    local args, mid = killed_job("src-gone", "dst-gone")
    assert(env.client:json_request { method = "DELETE", path = "/_pit", body = json.encode { id = mid.pit_id },
      headers = { ["Content-Type"] = "application/json" } })
    local summary = resumed(args)
    assert.is_false(summary.pit_reused)
    assert.is_string(summary.restarted_slices)
    assert.matches("started again from their beginning", summary.note)
    assert_exact("src-gone", "dst-gone")
  end)

  it("records positions as batches settle, never draining the indexer", function()
    J.seed(env.client, "src-nd", 3000)
    -- count drains: flush() on the destination's indexers before their close()
    local Indexer = getmetatable(env.client:bulk_indexer { index = "x" }).__index
    local flush, close, drains, closing = Indexer.flush, Indexer.close, 0, false
    Indexer.flush = function(...)
      if not closing then drains = drains + 1 end
      return flush(...)
    end
    Indexer.close = function(...)
      closing = true
      return close(...)
    end
    local ck = env.dir .. "/ck.json"
    local summary, err = reindex.run { source = { client = env.client, index = "src-nd", slices = 2, size = 100 },
      dest = { client = env.client, index = "dst-nd" }, checkpoint = ck, batch_docs = 100 }
    Indexer.flush, Indexer.close = flush, close
    assert.is_nil(err)
    assert.equal(3000, summary.ok)
    assert.equal(0, drains)
    local st = checkpoint.load(ck)
    assert.is_true(st.done)
    assert.is_true(st.slices["0"].done)
    assert.is_true(st.slices["1"].done)
  end)

  it("refreshes the destination once at the end, unless told not to", function()
    J.seed(env.client, "src-r", 500)
    for _, name in ipairs { "dst-r", "dst-nr" } do
      assert(env.client.indices:create { index = name, settings = { refresh_interval = "-1" } })
    end
    local code, _, err = J.espipe("reindex src-r dst-r --quiet --source-url " .. env.server.url)
    assert.equal(0, code, err)
    assert.equal(500, env.client:count { index = "dst-r" }.count)
    code, _, err = J.espipe("reindex src-r dst-nr --no-refresh --quiet --source-url " .. env.server.url)
    assert.equal(0, code, err)
    assert.equal(0, env.client:count { index = "dst-nr" }.count)
  end)

  it("stops on a transform that returns no value, naming the document; return nil drops", function()
    J.seed(env.client, "src-t", 300, 1)
    local summary, err = reindex.run { source = { client = env.client, index = "src-t" },
      dest = { client = env.client, index = "dst-t" }, transform = function(doc) doc.x = 1 end }
    assert.is_nil(summary)
    assert.matches("the transform returned no value for document src%-t/src%-t%-%d+", tostring(err))
    summary, err = reindex.run { source = { client = env.client, index = "src-t" },
      dest = { client = env.client, index = "dst-t2" }, transform = function() return nil end }
    assert.is_nil(err)
    assert.equal(300, summary.dropped)
    assert.matches("dropped every document", summary.warning)
  end)

  it("rejects unknown options, naming the nearest valid one", function()
    assert.has_error(function()
      reindex.run { source = { client = env.client, index = "a" }, dest = { client = env.client, index = "b" },
        chekpoint = "x" }
    end, "espipe.reindex: unknown option 'chekpoint' (did you mean 'checkpoint'?)")
    assert.has_error(function()
      reindex.run { source = { client = env.client, index = "a", slice = 2 }, dest = { client = env.client, index = "b" } }
    end, "espipe.reindex source: unknown option 'slice' (did you mean 'slices'?)")
  end)
end)
