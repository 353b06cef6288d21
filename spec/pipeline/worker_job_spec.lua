-- The parent's side of a job run by workers, without processes: summaries
-- added exactly, the slowest worker named (the pool itself: workers_spec;
-- whole jobs: reindex_workers_server_spec).
local worker_job = require "espipe.pipeline.worker_job"

describe("espipe.pipeline.worker_job", function()
  it("adds the workers' numbers and keeps the first of anything else", function()
    local sum = worker_job.sum { { ok = 3, failed = 1, added = 4, tuning = "c=2" },
                                 { ok = 5, failed = 0, added = 5, tuning = "c=4", note = "x" } }
    assert.same({ ok = 8, failed = 1, added = 9, tuning = "c=2", note = "x" }, sum)
    assert.equal(sum.added, sum.ok + sum.failed)
  end)

  it("names the slowest worker by its share of the total, or by its count", function()
    -- 3 workers share 1200 documents: 400 each; worker 2 has done 100 of its 400
    assert.equal("slowest: worker 2 at 25%", worker_job.slowest(1200, { 400, 100, 300 }, 3))
    assert.equal("slowest: worker 1 at 0 docs", worker_job.slowest(nil, { nil, 10 }, 2))
    assert.is_nil(worker_job.slowest(1200, { 5 }, 1))
  end)
end)
