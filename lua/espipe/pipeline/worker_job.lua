-- One job run by a pool of worker processes (espipe.pipeline.workers):
-- each worker is told its share of the job as one JSON line on its stdin
-- (never on a command line, which `ps` shows: it may hold credentials),
-- runs it, and reports progress and a final summary as records on stdout.
-- The parent draws one progress line for all of them (with the slowest
-- worker), sums their summaries exactly and names a worker that died.
--
--   worker_job.run{ count = N, job = function(i) -> table for worker i, progress = p | nil,
--                   on_record = function(i, record) (any other record type), every = fn() (called
--                   between polls, e.g. to save a checkpoint), feed = fn(pool) (called before
--                   each poll: the workers' stdin stays open after their share, feed writes the
--                   input to them with pool:write and ends it with pool:close_input) }
--     -> { summaries = { [i] = the worker's final record }, failure = message | nil,
--          interrupted = "SIGINT" | "SIGTERM" | nil }   | nil, err (the pool did not start)
--   worker_job.sum(list of summaries) -> their numbers added, other values from the first
--   worker_job.summaries(result, count) -> the summaries the workers sent, in order
--   worker_job.failure(result, count, kept) -> err | nil: a worker that died (kept: what a
--       rerun finds, e.g. "what the other workers copied is checkpointed"), else the first
--       error a worker reported (an interruption is not one)
--   worker_job.slowest(total, done, count) -> "slowest: worker 2 at 31%" (done[i]: worker i's
--       documents; total: the job's, nil when unknown) | nil with one worker
--
--   worker_job.shares(command, argv, plan) -> a pipeline's workers option for `espipe
--       command argv` run by plan.workers workers (plan: workers, part, parts, slices):
--       { count =, own_slices = { [i] = ids }, part =, parts =, job = function(i, resume) -> what worker i is sent }
--
-- In the worker (espipe's internal `worker` command):
--   worker_job.read_job() -> the table the parent sent | nil, message
--   worker_job.progress() -> a progress object whose updates are records (at most every
--                            half second), for a pipeline's progress = option
--   worker_job.report(record) the final record ({ type = "summary", ... })
local workers = require "espipe.pipeline.workers"
local json = require "espipe.json"

local M = {}

local PROGRESS_EVERY = 0.5

local function now() return require("espipe.transport").clock()() end

local Share = {}
Share.__index = Share

function M.progress()
  return setmetatable({ quiet = true, last = -math.huge, state = {} }, Share)
end

function Share:update(t)
  for k, v in pairs(t) do self.state[k] = v end
  local t0 = now()
  if t0 - self.last < PROGRESS_EVERY then return end
  self.last = t0
  local rec = { type = "progress" }
  for k, v in pairs(self.state) do rec[k] = v end
  workers.emit(rec)
end

function Share.message(_, text) io.stderr:write(text, "\n") end
function Share.clear() end
function Share.complete() end
function Share:elapsed() return now() - (self.started or now()) end

function M.report(record) workers.emit(record) end

function M.read_job()
  local line = io.stdin:read("*l")
  if not line then return nil, "no job on stdin" end
  local ok, job = pcall(json.decode, line)
  if not ok or type(job) ~= "table" then return nil, "the job on stdin is not a JSON object" end
  return job
end

function M.shares(command, argv, plan)
  local slices = require "espipe.pipeline.slices"
  local ids = {}
  for i = 1, plan.workers do ids[i] = slices.of(plan.slices, plan.parts, plan.part, plan.workers, i) end
  return { count = plan.workers, own_slices = ids, part = plan.part, parts = plan.parts, job = function(i, resume)
    return { command = command, argv = argv, worker = { index = i, count = plan.workers, part = plan.part,
      parts = plan.parts, slices = plan.slices, own_slices = ids[i], resume = resume } }
  end }
end

function M.sum(list)
  local out = {}
  for _, s in ipairs(list) do
    for k, v in pairs(s) do
      if type(v) == "number" and type(out[k]) == "number" then out[k] = out[k] + v
      elseif out[k] == nil then out[k] = v end
    end
  end
  return out
end

function M.summaries(res, count)
  local out = {}
  for i = 1, count do
    local r = res.summaries[i]
    if r then out[#out + 1] = r.summary end
  end
  return out
end

function M.failure(res, count, kept)
  local errors = require "espipe.client.errors"
  if res.failure then
    return errors.new { kind = "workers", message = res.failure .. "; " .. kept
      .. ": rerun the same command (with --checkpoint) to resume" }
  end
  for i = 1, count do
    local r = res.summaries[i]
    if r and r.error and r.kind ~= "interrupted" then return errors.new { kind = r.kind or "workers", message = r.error } end
  end
end

-- "slowest: worker 2 at 31%" (or its document count when the total is unknown)
function M.slowest(total, done, count)
  local low, who
  for i = 1, count do
    if not low or (done[i] or 0) < low then low, who = done[i] or 0, i end
  end
  if not who or count < 2 then return nil end
  if total and total > 0 then
    return string.format("slowest: worker %d at %.0f%%", who, math.min(100, 100 * low * count / total))
  end
  return "slowest: worker " .. who .. " at " .. low .. " docs"
end

local function show(p, latest, count)
  if not p then return end
  local sums = { done = 0, bytes = 0, retries = 0, failed = 0 }
  local done = {}
  for i = 1, count do
    local r = latest[i] or {}
    -- (a job counted in bytes, a load: how far each worker is through its share)
    done[i] = (p.unit == "bytes" and r.position) or r.done or 0
    for k in pairs(sums) do sums[k] = sums[k] + (tonumber(r[k]) or 0) end
    if r.position then sums.position = (sums.position or 0) + r.position end
  end
  sums.slowest = M.slowest(p.total, done, count)
  p:update(sums)
end

local function on_event(state, ev)
  local rec = ev.kind == "record" and ev.record
  if rec and rec.type == "summary" then
    state.summaries[ev.worker] = rec
  elseif rec and state.on_record then
    state.on_record(ev.worker, rec)
  end
  if rec and rec.type == "progress" then
    state.latest[ev.worker] = rec
    show(state.progress, state.latest, state.count)
  elseif ev.kind == "stderr" or ev.kind == "output" then
    local line = "worker " .. ev.worker .. ": " .. ev.line
    if state.progress and state.progress.message then state.progress:message(line) else io.stderr:write(line, "\n") end
  elseif ev.kind == "exit" then
    state.exits[ev.worker] = ev
  end
end

local function failure(pool, state)
  local why = {}
  for i = 1, state.count do
    local ex = state.exits[i]
    -- exit 1 (documents failed) and 130/143 (interrupted) come with a summary that says so
    local told = state.summaries[i] and ex and ex.code ~= nil
    if not told then why[#why + 1] = workers.failure(i, ex, pool:pid(i), pool:last_stderr(i)) or ("worker " .. i .. " sent no summary") end
  end
  return #why > 0 and table.concat(why, "; ") or nil
end

function M.run(opts)
  local count = opts.count
  local pool, err = workers.start { count = count, stdin = true,
    argv = function() return workers.command { "worker" } end }
  if not pool then return nil, err end
  local state = { count = count, latest = {}, summaries = {}, exits = {}, progress = opts.progress,
    on_record = opts.on_record }
  local ok, perr = pcall(function()
    for i = 1, count do
      pool:write(i, json.encode(opts.job(i)) .. "\n")
      if not opts.feed then pool:close_input(i) end
    end
    while pool:live() > 0 do
      if opts.feed then opts.feed(pool) end
      for _, ev in ipairs(pool:poll(0.25)) do on_event(state, ev) end
      if opts.every then opts.every() end
    end
  end)
  pool:close()
  if opts.progress then opts.progress.slowest = nil end -- all of them ended
  if not ok then error(perr, 0) end
  local interrupted = require("espipe.core").signals_received()
  return { summaries = state.summaries, failure = failure(pool, state), interrupted = interrupted }
end

return M
