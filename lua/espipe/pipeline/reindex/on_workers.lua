-- A reindex copied by worker processes (opts.workers): this process does
-- what happens once per job (checkpoint loaded, source refreshed,
-- destination created and tuned, count), each worker copies its slices on
-- its own point in time, and this process keeps the job's one checkpoint
-- from the positions the workers report, sums their summaries, merges their
-- dead letters, then refreshes, restores the tuning and swaps the alias.
--
--   on_workers.run(opts, src, dst, op) -> summary | nil, err, summary
--     opts.workers = { count = N, own_slices = { [i] = { ids } },
--                      job = function(i, resume) -> what worker i is sent }
--     resume: nil, or { slices = its slices' saved positions, pit_id = its PIT }
--   A worker's records: { type = "checkpoint", slices =, pit_id =, counts =, done = } as its
--   positions move, and at the end { type = "summary", summary =, error =, kind = }.
--   The checkpoint holds { workers = N, slices = every slice's position, pits = { ["i"] = PIT },
--   counts = the scan counts of the whole job, done = }.
local prepare = require "espipe.pipeline.reindex.prepare"
local finish = require "espipe.pipeline.reindex.finish"
local worker_job = require "espipe.pipeline.worker_job"
local deadletter = require "espipe.pipeline.deadletter"
local errors = require "espipe.client.errors"

local M = {}

-- carried by the checkpoint across runs (as in a copy by one process)
local SCAN = { "scanned", "sent", "dropped", "fanned_out", "transform_errors" }
local SAVE_EVERY = 1

local Positions = {}
Positions.__index = Positions

local function positions(job, w)
  local prior = {}
  for _, k in ipairs(SCAN) do prior[k] = job.summary[k] or 0 end
  return setmetatable({ job = job, w = w, latest = {}, prior = prior, last_save = job.src.client:now() }, Positions)
end

function Positions:resume_of(i)
  local st = self.job.state
  if not self.job.summary.resumed then return nil end
  local mine = {}
  for _, id in ipairs(self.w.own_slices[i]) do mine[tostring(id)] = st.slices[tostring(id)] end
  return { slices = mine, pit_id = (st.pits or {})[tostring(i)] }
end

function Positions:state()
  local st, slices, pits, counts, done = self.job.state, {}, {}, {}, true
  for k, v in pairs(st.slices or {}) do slices[k] = v end
  for k, v in pairs(st.pits or {}) do pits[k] = v end
  for k, v in pairs(self.prior) do counts[k] = v end
  for i = 1, self.w.count do
    local rec = self.latest[i]
    done = done and rec ~= nil and rec.done == true
    if rec then
      for _, id in ipairs(self.w.own_slices[i]) do
        local key = tostring(id)
        slices[key] = (rec.slices or {})[key] or slices[key]
      end
      pits[tostring(i)] = rec.pit_id
      for _, k in ipairs(SCAN) do counts[k] = counts[k] + (tonumber((rec.counts or {})[k]) or 0) end
    end
  end
  return { workers = self.w.count, slices = slices, pits = pits, counts = counts, done = done or nil }
end

function Positions:save(force)
  local job = self.job
  if not job.store or (not force and job.src.client:now() - self.last_save < SAVE_EVERY) then return end
  local ok, err = job.store.save(self:state())
  if not ok then job:fail(err) end
  self.last_save = job.src.client:now()
end

local function merge_dead_letters(opts, sums, summary)
  local dead, transform = {}, {}
  for _, s in ipairs(sums) do
    dead[#dead + 1] = s.dead_letter
    transform[#transform + 1] = s.transform_dead_letter
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

-- The workers' summaries added up; the scan counts of the whole job, as a
-- copy by one process reports them (espipe.cli.resume tells this run's).
local function total_of(job, pos, sums, count)
  local total = worker_job.sum(sums)
  for k, v in pairs(pos.prior) do total[k] = (total[k] or 0) + v end
  total.resumed, total.workers, total.elapsed = job.summary.resumed, count, nil
  return total
end

local function same_workers(job, count)
  local was = job.state.workers
  if not job.summary.resumed or was == count then return true end
  return nil, errors.new { kind = "checkpoint", message = "the checkpoint was written by a copy with --workers "
    .. tostring(was or 1) .. ": rerun it with --workers " .. tostring(was or 1) }
end

function M.run(opts, src, dst, op)
  local p = {}
  for k, v in pairs(opts) do p[k] = v end
  p.presort = nil -- the workers sort their own windows
  local job, err, summary = prepare.run(p, src, dst, op)
  if not job then return nil, err, summary end
  if job.already_done then return job.summary end
  local w = opts.workers
  local ok, serr = same_workers(job, w.count)
  if not ok then return nil, serr, job.summary end
  local pos = positions(job, w)
  local res, werr = worker_job.run { count = w.count, progress = opts.progress,
    job = function(i) return w.job(i, pos:resume_of(i)) end,
    on_record = function(i, rec) if rec.type == "checkpoint" then pos.latest[i] = rec end end,
    every = function() pos:save() end }
  if not res then return nil, werr, job.summary end
  local recs, sums = {}, {}
  for i = 1, w.count do
    local r = res.summaries[i]
    if r then recs[#recs + 1] = r; sums[#sums + 1] = r.summary end
  end
  local total = total_of(job, pos, sums, w.count)
  total.interrupted = res.interrupted or total.interrupted
  local failure = first_error(recs, res)
  local mok, merr = merge_dead_letters(opts, sums, total)
  if not mok then failure = failure or merr end
  pos:save(true)
  return finish.after_workers(job, total, failure, { dst.index })
end

return M
