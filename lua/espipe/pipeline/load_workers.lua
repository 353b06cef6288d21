-- A load by worker processes (load --workers N): a plain file is cut into
-- byte ranges at line boundaries (espipe.pipeline.line_ranges); compressed
-- input and stdin are read here once and handed over the workers' stdin in
-- chunks of whole lines (espipe.pipeline.load_feed). Each share is loaded
-- by its own `espipe worker` (espipe.pipeline.worker_job); this process
-- draws one progress line, sums the workers' summaries exactly (added ==
-- ok + failed over all of them), merges their dead letters into the job's,
-- and names a worker that died. With a checkpoint, each range's worker keeps
-- its own (CHECKPOINT.wI, its range part of what it compares: a rerun with
-- the same --workers resumes every range exactly); a chunked load keeps
-- one, of the parts of the input done (load_feed), whatever --workers.
--
--   load_workers.run{ input =, count =, argv = the command's arguments, chunked = (compressed / stdin),
--                     checkpoint =, identity = (load_checkpoint.identity's), dead_letter =,
--                     allow_empty =, on_bad_line =, max_line_bytes =, progress = p }
--     -> summary | nil, err, summary
--   load_workers.path(path, worker) -> a worker's own file: path .. ".wI"
local worker_job = require "espipe.pipeline.worker_job"
local interrupt = require "espipe.pipeline.interrupt"

local M = {}

-- the counts of a resumed job's whole run (espipe.pipeline.load_checkpoint's)
local WHOLE = require("espipe.pipeline.load_checkpoint").COUNTS
local errors = require "espipe.client.errors"

function M.path(path, worker)
  if not path or not worker then return path end
  return path .. ".w" .. worker.index
end

local function merge_dead_letters(dead, count, summary)
  local deadletter = require "espipe.pipeline.deadletter"
  local indexer, input, transform = {}, {}, {}
  for i = 1, count do
    local own = M.path(dead, { index = i })
    indexer[i], input[i], transform[i] = own, own .. ".input", own .. ".transform"
  end
  local n, err = deadletter.merge(dead, indexer)
  if not n then return nil, err end
  summary.dead_letter = n > 0 and dead or nil
  local bad
  bad, err = deadletter.merge(dead .. ".input", input)
  if not bad then return nil, err end
  summary.bad_lines_file = (bad > 0 or (summary.bad_lines or 0) > 0) and (dead .. ".input") or nil
  -- what a --transform failed on
  n, err = deadletter.merge(dead .. ".transform", transform)
  if not n then return nil, err end
  return true
end

-- The workers' summaries added up, per index too; a resumed job's whole
-- counts: prior (the counts before this run) + this run's, or the workers' own.
local function total_of(sums, prior)
  local total, per_index, whole, all_done = worker_job.sum(sums), {}, nil, #sums > 0
  for _, s in ipairs(sums) do
    all_done = all_done and s.already_done == true
    for name, n in pairs(s.per_index or {}) do per_index[name] = (per_index[name] or 0) + n end
    if s.resumed then total.resumed = true end
  end
  total.per_index = per_index
  if prior then
    whole, total.resumed = {}, true
    for _, k in ipairs(WHOLE) do whole[k] = (prior[k] or 0) + (tonumber(total[k]) or 0) end
  elseif total.resumed then
    whole = {}
    for _, k in ipairs(WHOLE) do
      for _, s in ipairs(sums) do whole[k] = (whole[k] or 0) + (tonumber((s.job or s)[k]) or 0) end
    end
  end
  total.job, total.already_done, total.elapsed = whole, all_done or nil, nil -- (elapsed: the parent's own)
  return total
end

local function failure_of(res, recs, opts)
  if res.failure then
    return errors.new { kind = "workers", message = res.failure .. (opts.checkpoint
      and "; what the other workers loaded is checkpointed: rerun the same command to resume" or "") }
  end
  for _, r in ipairs(recs) do
    if r.error and r.kind ~= "interrupted" then return errors.new { kind = r.kind or "workers", message = r.error } end
  end
end

local function empty(total, opts)
  local whole = total.job or total
  if (whole.ok or 0) > 0 or opts.allow_empty or (whole.unreplayable or 0) > 0 then return nil end
  return errors.new { kind = "empty", message = "indexed 0 of " .. ((whole.read or 0) + (whole.bad_lines or 0))
    .. " documents (allow_empty / --allow-empty accepts that)" }
end

-- Plain file: a byte range each (nil, err when the file cannot be cut).
local function by_ranges(opts)
  local ranges, rerr = require("espipe.pipeline.line_ranges").split(opts.input, opts.count)
  if not ranges then return nil, rerr end
  return { count = #ranges, share = function(i) return { range = ranges[i] } end }
end

-- Compressed input or stdin: read here once, handed over in chunks.
local function by_chunks(opts)
  local feed, err = require("espipe.pipeline.load_feed").new(opts)
  if not feed then return nil, err end
  if opts.progress then opts.progress.total = nil end -- (workers count decompressed bytes)
  return feed
end

local function run(opts)
  local plan, perr
  if opts.chunked then plan, perr = by_chunks(opts) else plan, perr = by_ranges(opts) end
  if not plan then return nil, perr end
  if plan.already_done then
    return { read = 0, ok = 0, failed = 0, bad_lines = 0, already_done = true, resumed = true, job = plan.prior }
  end
  local count = plan.count
  local res, werr = worker_job.run { count = count, progress = opts.progress, job = function(i)
    local w = plan.share(i)
    w.index, w.count = i, count
    return { command = "load", argv = opts.argv, worker = w }
  end, feed = plan.feed and function(pool) plan:feed(pool) end, on_record = plan.on_record,
    every = plan.every and function() plan:every() end }
  if not res then
    if plan.finish then plan:finish(false) end
    return nil, werr
  end
  local recs, sums = {}, {}
  for i = 1, count do
    local r = res.summaries[i]
    if r then recs[#recs + 1], sums[#sums + 1] = r, r.summary end
  end
  local total = total_of(sums, plan.resumed and plan.prior)
  total.workers, total.interrupted = count, res.interrupted or total.interrupted
  local reader = plan.reader
  local failure = failure_of(res, recs, opts) or plan.failure or (reader and reader.error)
  total.bad_lines = (total.bad_lines or 0) + (plan.bad or 0)
  if total.job then total.job.bad_lines = total.job.bad_lines + (plan.bad or 0) end
  if plan.finish then
    local fok, ferr = plan:finish(not failure and not total.interrupted and #sums == count)
    failure = failure or (not fok and ferr) or nil
  end
  local mok, merr = merge_dead_letters(opts.dead_letter, count, total)
  failure = failure or (not mok and merr) or nil
  if total.interrupted and not failure then
    failure = interrupt.error(total.interrupted, total.ok or 0, "documents", opts.checkpoint
      and ("checkpoint saved to " .. opts.checkpoint .. (opts.chunked and "" or (".w1.." .. count))
        .. " (rerun the same command to resume)")
      or "what was read is flushed, input stops")
  end
  failure = failure or empty(total, opts)
  if failure then return nil, failure, total end
  return total
end

function M.run(opts) return interrupt.run(true, run, opts) end

return M
