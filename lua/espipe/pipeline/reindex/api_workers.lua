-- espipe.reindex{ workers = N } from the Lua API. The workers are `espipe`
-- processes, so what they run is written as the command's arguments: the
-- clusters by URL (source.url, dest.url, credentials included: they travel
-- on the workers' stdin, never on a command line), the transform as the
-- path of a Lua file returning it, anything else (TLS files, ...) as
-- worker_args, extra flags of `espipe reindex`.
--
--   api_workers.option(opts, src, dst, level) -> the pipeline's workers option
--     (espipe.pipeline.worker_job's shares); wrong arguments raise at level
local json = require "espipe.json"
local worker_job = require "espipe.pipeline.worker_job"

local M = {}

-- option key -> flag of `espipe reindex` (values passed as they are)
local FLAGS = { { "checkpoint", "--checkpoint" }, { "dead_letter", "--dead-letter" }, { "batch_docs", "--batch-docs" },
  { "batch_bytes", "--batch-bytes" }, { "concurrency", "--concurrency" }, { "retries", "--retries" },
  { "rate", "--rate" }, { "max_errors", "--max-errors" }, { "retry_for", "--retry-for" },
  { "stall_timeout", "--stall-timeout" }, { "max_concurrency", "--max-concurrency" },
  { "max_batch_bytes", "--max-batch-bytes" }, { "transform", "--transform" } }

local function push(argv, flag, v)
  if v == nil then return end
  argv[#argv + 1] = flag
  argv[#argv + 1] = tostring(v)
end

local function check(opts, src, dst, level)
  local n = opts.workers
  if type(n) ~= "number" or n < 1 or n % 1 ~= 0 then error("espipe.reindex: workers must be a positive integer", level) end
  if type(src.url) ~= "string" or type(dst.url) ~= "string" then
    error("espipe.reindex: workers = N needs source.url and dest.url (each worker connects by URL)", level)
  end
  if opts.transform ~= nil and type(opts.transform) ~= "string" then
    error("espipe.reindex: with workers = N, transform is the path of a Lua file returning the function", level)
  end
  if opts.worker_args ~= nil and type(opts.worker_args) ~= "table" then
    error("espipe.reindex: worker_args must be a list of `espipe reindex` flags", level)
  end
end

function M.option(opts, src, dst, level)
  check(opts, src, dst, level + 1)
  local argv = { src.index, dst.index, "--source-url", src.url, "--dest-url", dst.url }
  push(argv, "--query", src.query and json.encode(src.query))
  push(argv, "--size", src.size)
  push(argv, "--op", dst.op)
  for _, f in ipairs(FLAGS) do push(argv, f[2], opts[f[1]]) end
  if opts.presort then argv[#argv + 1] = "--presort" end
  if dst.refresh == false then argv[#argv + 1] = "--no-refresh" end
  for _, a in ipairs(opts.worker_args or {}) do argv[#argv + 1] = tostring(a) end
  return worker_job.shares("reindex", argv, { workers = opts.workers, part = 1, parts = 1,
    slices = src.slices or opts.workers })
end

return M
