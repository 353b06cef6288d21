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

local M = {}

-- carried by the checkpoint across runs (as in a copy by one process)
local SCAN = { "scanned", "sent", "dropped", "fanned_out", "transform_errors" }
local SAVE_EVERY = 1
local PEERS_EVERY = 5 -- how often the other parts' progress is read (es: checkpoints)

local Positions = {}
Positions.__index = Positions

local function positions(job, w)
  local prior = {}
  for _, k in ipairs(SCAN) do prior[k] = job.summary[k] or 0 end
  return setmetatable({ job = job, w = w, latest = {}, live = {}, prior = prior, last_save = job.src.client:now() },
    Positions)
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
  -- live: documents scanned so far, ahead of the acknowledged positions (for job status)
  local live = self.prior.scanned
  for i = 1, self.w.count do live = live + (self.live[i] or 0) end
  return { workers = self.w.count, slices = slices, pits = pits, counts = counts, done = done or nil, live = live }
end

function Positions:save(force)
  local job = self.job
  if not job.store or (not force and job.src.client:now() - self.last_save < SAVE_EVERY) then return end
  local ok, err = job.store.save(self:state())
  if not ok then job:fail(err) end
  self.last_save = job.src.client:now()
end

-- "slowest part: 3 at 12%": the part furthest behind, from the checkpoint
-- documents of every part (a part not started yet is at 0%).
function Positions:peers()
  local job, w, p = self.job, self.w, self.job.opts.progress
  if not (p and job.store and job.store.status and w.parts and w.parts > 1) then return end
  local now = job.src.client:now()
  if self.peers_at and now - self.peers_at < PEERS_EVERY then return end
  self.peers_at = now
  local st = job.store.status()
  if not st then return end
  local share = (self.total or 0) / w.parts
  local low, who
  for i = 1, w.parts do
    local sent = st[i] and (tonumber(st[i].live) or tonumber((st[i].counts or {}).sent)) or 0
    if not (st[i] and st[i].done) and (not low or sent < low) then low, who = sent, i end
  end
  p.slowest_part = who and share > 0 and string.format("slowest part: %d at %.0f%%", who, math.min(100, 100 * low / share)) or nil
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
  return nil, require("espipe.client.errors").new { kind = "checkpoint", message = "the checkpoint was written by a copy with --workers "
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
  if opts.progress and opts.progress.total and w.parts and w.parts > 1 then
    -- this part's share of the documents is what its progress line counts up to
    pos.total = opts.progress.total
    opts.progress.total = math.ceil(opts.progress.total / w.parts)
  end
  local res, werr = worker_job.run { count = w.count, progress = opts.progress,
    job = function(i) return w.job(i, pos:resume_of(i)) end,
    on_record = function(i, rec)
      if rec.type == "checkpoint" then pos.latest[i] = rec
      elseif rec.type == "progress" then pos.live[i] = rec.done end
    end,
    every = function() pos:save(); pos:peers() end }
  if not res then return nil, werr, job.summary end
  local sums = worker_job.summaries(res, w.count)
  local total = total_of(job, pos, sums, w.count)
  total.interrupted = res.interrupted or total.interrupted
  local failure = worker_job.failure(res, w.count, "what the other workers copied is checkpointed")
  local mok, merr = merge_dead_letters(opts, sums, total)
  if not mok then failure = failure or merr end
  pos:save(true)
  return finish.after_workers(job, total, failure, { dst.index })
end

return M
