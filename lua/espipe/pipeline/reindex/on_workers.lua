-- A reindex copied by worker processes (opts.workers): this process does
-- what happens once per job (source refresh, destination created and tuned,
-- count), the workers copy their slices, each with its own checkpoint and
-- dead letter, and this process sums their summaries, merges their dead
-- letters, then refreshes, restores the tuning and swaps the alias.
--
--   on_workers.run(opts, src, dst, op) -> summary | nil, err, summary
--     opts.workers = { count = N, job = function(i) -> what worker i is sent }
--   Each worker's final record: { type = "summary", this = <its summary of this run>,
--     whole = <of the whole job, when resumed> | nil, error =, kind =, written = { indices } }
local prepare = require "espipe.pipeline.reindex.prepare"
local finish = require "espipe.pipeline.reindex.finish"
local worker_job = require "espipe.pipeline.worker_job"
local deadletter = require "espipe.pipeline.deadletter"
local errors = require "espipe.client.errors"

local M = {}

-- The once-per-job steps run here; the workers keep the checkpoints (the
-- path given plus ".w<i>"): nothing writes the one at the path itself, so
-- prepare finds none, and the tuning state lives beside it.
local function parent_opts(opts)
  local p = {}
  for k, v in pairs(opts) do p[k] = v end
  p.presort = nil
  return p
end

local function merge_dead_letters(opts, recs, summary)
  local dead, transform = {}, {}
  for _, r in ipairs(recs) do
    dead[#dead + 1] = r.this.dead_letter
    transform[#transform + 1] = r.this.transform_dead_letter
  end
  local path = opts.dead_letter or "espipe-deadletter.ndjson"
  local n, err = deadletter.merge(path, dead)
  if not n then return nil, err end
  summary.dead_letter = n > 0 and path or nil
  n, err = deadletter.merge(path .. ".transform", transform)
  if not n then return nil, err end
  summary.transform_dead_letter = n > 0 and (path .. ".transform") or nil
  return true
end

local function first_error(recs, res)
  if res.failure then
    return errors.new { kind = "workers", message = res.failure
      .. "; what the other workers copied is checkpointed: rerun the same command (with --checkpoint) to resume" }
  end
  for _, r in ipairs(recs) do
    if r.error and r.kind ~= "interrupted" then return errors.new { kind = r.kind or "workers", message = r.error } end
  end
end

local function indices_written(recs, dest)
  local seen, out = { [dest] = true }, { dest }
  for _, r in ipairs(recs) do
    for _, ix in ipairs(r.written or {}) do
      if not seen[ix] then seen[ix] = true; out[#out + 1] = ix end
    end
  end
  return out
end

function M.run(opts, src, dst, op)
  local job, err, summary = prepare.run(parent_opts(opts), src, dst, op)
  if not job then return nil, err, summary end
  local res, werr = worker_job.run { count = opts.workers.count, job = opts.workers.job, progress = opts.progress }
  if not res then return nil, werr, job.summary end
  local recs, this, whole, resumed = {}, {}, {}, false
  for i = 1, opts.workers.count do
    local r = res.summaries[i]
    if r then
      recs[#recs + 1] = r
      this[#this + 1] = r.this
      whole[#whole + 1] = r.whole or r.this
      resumed = resumed or r.whole ~= nil
    end
  end
  local total = worker_job.sum(this)
  -- the job's elapsed time is this process's, not the workers' added
  total.resumed, total.workers, total.elapsed = resumed, opts.workers.count, nil
  total.interrupted = res.interrupted or total.interrupted
  if resumed then total.job = worker_job.sum(whole) end
  local failure = first_error(recs, res)
  local mok, merr = merge_dead_letters(opts, recs, total)
  if not mok then failure = failure or merr end
  return finish.after_workers(job, total, failure, indices_written(recs, dst.index))
end

return M
