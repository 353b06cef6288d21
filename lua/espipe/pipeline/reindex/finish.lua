-- Stage 3 of a reindex, on every exit path of the copy: what was accepted is
-- sent and accounted, the checkpoint written, what was written refreshed
-- (also when a signal or the error budget stopped the job), the tuning
-- restored and, on success, the alias swapped.
--
--   finish.run(job, copy) -> summary | nil, err, summary
--   finish.after_workers(job, summary, failure) -> the same, for a copy that
--     workers made (summary: their sum; failure: the first of theirs)
local tune = require "espipe.pipeline.tune"
local interrupt = require "espipe.pipeline.interrupt"

local M = {}

-- Stops after which the destination still takes a refresh.
local ENDS_WRITABLE = { interrupted = true, error_budget = true }

local function note_restarts(job, scan)
  local summary = job.summary
  if job.state.pit_id then summary.pit_reused = not scan.restarted end
  if scan.restarted then
    summary.restarted_slices = table.concat(scan.restarted, ",")
    summary.note = "the saved point in time was gone: slice(s) " .. summary.restarted_slices
      .. " started again from their beginning (documents keep their ids)"
  end
end

-- Flushes the windows and closes scan, indexer and dead letters.
local function close(job, copy)
  copy:hand_all()
  copy.scan:close()
  local stats, ierr = copy.ix:close()
  if ierr then job:fail(ierr) end -- systemic, stalled, error budget spent
  copy.transform_dl:close()
  copy.dead:close()
  return stats or {}
end

local function account(job, copy, stats)
  local summary, opts = job.summary, job.opts
  for k, v in pairs(stats) do if summary[k] == nil or type(v) == "number" then summary[k] = v end end
  local conflicts_done = copy.dead.conflicts_done
  summary.conflicts_done = conflicts_done
  summary.ok = (summary.ok or 0) + conflicts_done
  summary.failed = (summary.failed or 0) - conflicts_done
  if copy.dead.count > 0 then summary.dead_letter = opts.dead_letter end
  if copy.transform_dl.count > 0 then summary.transform_dead_letter = copy.transform_dl.path end
  if opts.transform and summary.scanned > 0 and summary.sent == 0 and summary.dropped == summary.scanned then
    summary.warning = "the transform dropped every document: nothing was written"
  end
end

local function interrupted(job, sig)
  if not sig then return end
  job.summary.interrupted = sig
  if job.failure then return end
  local ck = job.opts.checkpoint
  job:fail(interrupt.error(sig, job.summary.ok, "documents", ck
    and ("checkpoint saved to " .. ck .. " (rerun the same command to resume)")
    or "what was copied is flushed; without --checkpoint a rerun starts over"))
end

-- What was written is searchable when the job ends (dest.refresh = false to skip).
local function refresh(job, written)
  if job.dst.refresh == false or (job.failure and not ENDS_WRITABLE[job.failure.kind]) then return end
  table.sort(written)
  local rok, rerr = job.dst_setup:refresh(written)
  if not rok then job:fail(rerr) else job.summary.refreshed = true end
end

local function restore_tuning(job)
  if not job.tune_path then return end
  local rok, rerr = tune.restore(job.dst.client, job.tune_path)
  if not rok then job:fail(rerr) end
end

-- The alias points at the destination only: every other index loses it.
local function swap_alias(job)
  local alias, dst = job.opts.swap_alias, job.dst
  if job.failure or not alias then return end
  local cur = dst.client.indices:get_alias { name = alias }
  local actions = {}
  for index in pairs(cur or {}) do
    if index ~= dst.index then actions[#actions + 1] = { remove = { index = index, alias = alias } } end
  end
  actions[#actions + 1] = { add = { index = dst.index, alias = alias } }
  local aok, aerr = dst.client.indices:update_aliases { actions = actions }
  if not aok then job:fail(aerr) end
end

function M.run(job, copy)
  note_restarts(job, copy.scan)
  account(job, copy, close(job, copy))
  interrupted(job, copy.interrupted)
  if copy.positions then copy.positions:save(not job.failure) end
  refresh(job, copy.written)
  restore_tuning(job)
  swap_alias(job)
  if job.failure then return nil, job.failure, job.summary end
  return job.summary
end

function M.after_workers(job, summary, failure, written)
  for k, v in pairs(summary) do job.summary[k] = v end
  if failure then job:fail(failure) end
  interrupted(job, summary.interrupted)
  refresh(job, written)
  restore_tuning(job)
  swap_alias(job)
  if job.failure then return nil, job.failure, job.summary end
  return job.summary
end

return M
