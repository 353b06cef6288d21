-- Stage 1 of a reindex: everything before the first page is read. Loads the
-- checkpoint, refreshes the source, creates a missing destination, tunes it,
-- reads its pre-sort parameters and counts the documents to copy.
--
--   prepare.run(opts, src, dst, op) -> job | nil, err, summary
--     job: { opts, src, dst, op, policy, src_setup, dst_setup, summary, state,
--            already_done, tune_path, sorter, window, failure }
--     job:fail(err) keeps the first failure of the later stages.
local checkpoint = require "espipe.pipeline.checkpoint"
local presort_mod = require "espipe.pipeline.presort"
local tune = require "espipe.pipeline.tune"
local setup_mod = require "espipe.pipeline.setup"

local M = {}

-- A worker's scan asks only for its slices (source.own_slices): the others are done.
local function only_mine(job)
  local ids = job.src.own_slices
  if ids then job.state.slices = require("espipe.pipeline.slices").only(job.state.slices, ids, job.src.slices or 1) end
  return true
end

local function load_state(job)
  local opts, summary = job.opts, job.summary
  job.state = { slices = {}, counts = summary }
  if not opts.checkpoint then return only_mine(job) end
  local saved, lerr = job.store.load()
  if lerr then return nil, lerr end
  if not saved then return only_mine(job) end
  for k, v in pairs(saved.counts or {}) do if type(v) == "number" then summary[k] = v end end
  if saved.done then
    summary.already_done, job.already_done = true, true
    return true
  end
  job.state.slices, job.state.pit_id = saved.slices or {}, saved.pit_id
  job.state.pits, job.state.workers = saved.pits, saved.workers -- a job that workers copied
  summary.resumed = true
  return only_mine(job)
end

-- Documents acknowledged before the job started must be copied, but a
-- point in time sees only refreshed ones: refresh the source first
-- (source.refresh = false to skip). A refresh that fails for good stops
-- the job: a copy that may miss documents is not a success.
local function refresh_source(job)
  if job.src.refresh == false or job.summary.resumed then return true end
  return job.src_setup:refresh(job.src.index)
end

-- A missing destination is created with dest.shards (default: the source's
-- shard count), so that tuning and pre-sort have an index to work on.
local function ensure_dest(job)
  local src, dst = job.src, job.dst
  local exists, eerr = job.dst_setup:exists(dst.index)
  if exists == nil then return nil, eerr end
  if exists then return true end
  local shards = dst.shards
  if not shards then
    local sresp, serr = job.src_setup:get(src.index, "_settings")
    if not sresp then return nil, serr end
    local _, entry = next(sresp)
    shards = entry and entry.settings and entry.settings.index and tonumber(entry.settings.index.number_of_shards)
  end
  return job.dst_setup:create(dst.index, shards and { settings = { number_of_shards = shards } } or nil)
end

-- Tuning comes before anything that can fail later, so such a failure
-- still finds the state file to restore from.
local function tune_dest(job)
  local opts = job.opts
  if not opts.tune_dest then return true end
  -- os.tmpname() creates the file: it becomes the state file itself
  -- (empty until written), so nothing is left behind once restored
  job.tune_path = opts.tune_state or (opts.checkpoint and (opts.checkpoint .. ".tune")) or os.tmpname()
  local ok, terr = tune.apply(job.dst.client, job.dst.index, job.tune_path, job.dst.url)
  if not ok then return nil, terr end
  if opts.on_tuned then opts.on_tuned(job.tune_path) end
  return true
end

-- Documents are handed to the indexer in windows: with presort a window
-- holds presort_window documents of one slice (default shards x batch_docs),
-- sorted by shard, so the indexer cuts it into batches of one or two shards
-- each. Memory: slices x window documents.
local function presorter(job)
  local opts = job.opts
  local batch_docs = opts.batch_docs or 1000
  job.window = batch_docs
  if not opts.presort then return true end
  local resp, serr = job.dst_setup:get(job.dst.index, "_settings")
  local params, why = presort_mod.params_from_settings(resp, job.dst.index)
  if not params then
    return nil, serr or require("espipe.client.errors").new { kind = "config", message = "presort: " .. tostring(why) }
  end
  job.sorter = presort_mod.new(params)
  job.window = opts.presort_window or job.sorter.shards * batch_docs
  return true
end

local function count(job)
  local total, cerr = job.src_setup:count(job.src.index, job.src.query)
  if not total then return nil, cerr end
  if job.opts.progress then job.opts.progress.total = total end
  return true
end

local Job = {}
Job.__index = Job

function Job:fail(err)
  if not self.failure then self.failure = err end
end

local STEPS = { refresh_source, ensure_dest, tune_dest, presorter, count }

function M.run(opts, src, dst, op)
  local policy = require("espipe.client.retry").new({ retry_for = opts.retry_for }, 2)
  local job = setmetatable({ opts = opts, src = src, dst = dst, op = op, policy = policy,
    src_setup = setup_mod.new(src.client, policy), dst_setup = setup_mod.new(dst.client, policy),
    summary = { scanned = 0, sent = 0, dropped = 0, fanned_out = 0, transform_errors = 0, resumed = false } }, Job)
  job.store = opts.checkpoint_store or (opts.checkpoint and checkpoint.file_store(opts.checkpoint))
  local ok, err = load_state(job)
  if not ok or job.already_done then return ok and job, err, job.summary end
  for _, step in ipairs(STEPS) do
    ok, err = step(job)
    if not ok then return nil, err, job.summary end
  end
  return job
end

return M
