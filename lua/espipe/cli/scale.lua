-- --workers and --part for the scanning commands (reindex, export): how
-- many worker processes, which part of the job's slices this copy runs,
-- and what each worker is told.
--
--   scale.flags, scale.usage                   the options and their help
--   scale.plan(opts, worker) -> plan | nil, message
--     plan = { workers = W, part = I, parts = N, slices = total, own_slices = (this
--              process's, nil when it runs them all), pool = true (start W workers) }
--     worker: the share a parent sent (espipe's internal `worker` command), or nil
--   scale.path(path, plan, worker) -> path with the part's and worker's suffix (".part2of3.w1")
--   scale.workers(command, argv, plan) -> a pipeline's workers option: count, each
--       worker's slice ids, and what worker i is sent (its share, and where it resumes)
--   scale.worker_store(worker, name) -> in a worker, the checkpoint store that sends its
--       positions to the parent (and resumes from what the parent sent)
--   scale.exit_code(summary, err) -> the exit status a worker ends with
--   scale.share(n, worker [, count]) -> a worker's share of a job-wide number: n / workers
--       (--rate), or with count an integer share (a --max-errors count; a percentage stays
--       as it is); n itself outside a worker
local slices = require "espipe.pipeline.slices"

local M = {}

M.flags = { workers = "number", part = "string", parts = "number" }
M.usage = [[
  --workers N        worker processes, each with its slices (default: online CPUs, at most
                     the slices; 1 = this process only); --slices defaults to parts x workers
  --part I/N         run part I of N of the job's slices (one copy per machine or runner);
                     I also comes from $JOB_COMPLETION_INDEX (0-based) or $SLURM_ARRAY_TASK_ID
                     with --parts N]]

-- I from the runner's environment: a Kubernetes Indexed Job counts from 0,
-- a Slurm array from its --array start.
local function part_from_env()
  local k8s = tonumber(os.getenv("JOB_COMPLETION_INDEX") or "")
  if k8s then return k8s + 1 end
  local slurm = tonumber(os.getenv("SLURM_ARRAY_TASK_ID") or "")
  if slurm then return slurm - (tonumber(os.getenv("SLURM_ARRAY_TASK_MIN") or "") or 0) + 1 end
end

local function part_of(opts)
  if opts.part then
    local i, n = slices.parse_part(opts.part)
    if not i then return nil, n end
    return i, n
  end
  if not opts.parts then return 1, 1 end
  if opts.parts < 1 or opts.parts % 1 ~= 0 then return nil, "--parts must be a positive integer" end
  local i = part_from_env()
  if not i then return nil, "--parts needs --part I/N, $JOB_COMPLETION_INDEX or $SLURM_ARRAY_TASK_ID" end
  if i < 1 or i > opts.parts then return nil, "part " .. i .. " is outside 1.." .. opts.parts end
  return i, opts.parts
end

local function worker_count(opts, parts)
  local w = opts.workers
  if w ~= nil then
    if w < 1 or w % 1 ~= 0 then return nil, "--workers must be a positive integer" end
    return w
  end
  local cpus = require("espipe.pipeline.workers").cpus()
  if opts.slices then return math.max(1, math.min(cpus, math.floor(opts.slices / parts))) end
  return cpus
end

function M.plan(opts, worker)
  if worker then
    return { workers = worker.count, part = worker.part, parts = worker.parts, slices = worker.slices,
             own_slices = worker.own_slices }
  end
  local part, parts = part_of(opts)
  if not part then return nil, parts end
  local w, werr = worker_count(opts, parts)
  if not w then return nil, werr end
  local total = slices.total(parts, w, opts.slices)
  local plan = { workers = w, part = part, parts = parts, slices = total, pool = w > 1 }
  if parts > 1 and not plan.pool then plan.own_slices = slices.of(total, parts, part, 1, 1) end
  return plan
end

function M.path(path, plan, worker)
  if not path or path:match("^es:") then return path end
  local s = plan.parts > 1 and (".part" .. plan.part .. "of" .. plan.parts) or ""
  if worker then s = s .. ".w" .. worker.index end
  return path .. s
end

function M.workers(command, argv, plan)
  local ids = {}
  for i = 1, plan.workers do ids[i] = slices.of(plan.slices, plan.parts, plan.part, plan.workers, i) end
  return { count = plan.workers, own_slices = ids, job = function(i, resume)
    return { command = command, argv = argv, worker = { index = i, count = plan.workers, part = plan.part,
      parts = plan.parts, slices = plan.slices, own_slices = ids[i], resume = resume } }
  end }
end

function M.worker_store(worker, name)
  local report = require("espipe.pipeline.worker_job").report
  return { name = name, load = function() return worker.resume end,
    save = function(state)
      report { type = "checkpoint", slices = state.slices, pit_id = state.pit_id, counts = state.counts, done = state.done }
      return true
    end }
end

function M.share(n, worker, count)
  if not worker or type(n) ~= "number" then return n end
  if not count then return n / worker.count end
  return math.floor(n / worker.count) + ((worker.index <= n % worker.count) and 1 or 0)
end

function M.exit_code(summary, err)
  local code = require("espipe.pipeline.interrupt").exit_code(summary.interrupted)
  if code then return code end
  if err then return (type(err) == "table" and err.kind == "systemic") and 2 or 1 end
  local failed = (summary.failed or 0) + (summary.transform_errors or 0)
  return failed > 0 and 1 or 0
end

return M
