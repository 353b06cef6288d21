-- espipe.export{ workers = N } from the Lua API. The workers are `espipe`
-- processes, so the export is written as the command's arguments: the
-- cluster by URL (source_url, "http://host:9200" or with the index
-- appended, credentials included: it travels on the workers' stdin), the
-- options as flags, anything else (TLS files, ...) as worker_args.
--
--   api_workers.option(opts, level) -> the pipeline's workers option
--     (espipe.pipeline.worker_job's shares); wrong arguments raise at level
local json = require "espipe.json"
local worker_job = require "espipe.pipeline.worker_job"

local M = {}

-- option key -> flag of `espipe export` (values passed as they are)
local FLAGS = { { "format", "--format" }, { "file_bytes", "--file-bytes" }, { "compress", "--compress" },
  { "parquet_codec", "--codec" }, { "checkpoint", "--checkpoint" }, { "rate", "--rate" }, { "size", "--size" },
  { "row_group_bytes", "--row-group-bytes" }, { "partition_by", "--partition-by" },
  { "max_open_partitions", "--max-open-partitions" } }

local function push(argv, flag, v)
  if v == nil then return end
  argv[#argv + 1] = flag
  argv[#argv + 1] = tostring(v)
end

-- "http://h:9200/logs" for index logs -> "http://h:9200"
local function cluster_of(url, index)
  local tail = "/" .. index
  if url:sub(-#tail) == tail then return url:sub(1, -#tail - 1) end
  return url
end

local function renames(map)
  if not map then return nil end
  local items = {}
  for field, column in pairs(map) do items[#items + 1] = field .. "=" .. column end
  table.sort(items)
  return table.concat(items, ",")
end

function M.option(opts, level)
  local n = opts.workers
  if type(n) ~= "number" or n < 1 or n % 1 ~= 0 then error("espipe.export: workers must be a positive integer", level) end
  if type(opts.source_url) ~= "string" then
    error("espipe.export: workers = N needs source_url (each worker connects by URL)", level)
  end
  if opts.worker_args ~= nil and type(opts.worker_args) ~= "table" then
    error("espipe.export: worker_args must be a list of `espipe export` flags", level)
  end
  local argv = { opts.index, "--url", cluster_of(opts.source_url, opts.index), "--to", opts.to, "--allow-empty" }
  push(argv, "--query", opts.query and json.encode(opts.query))
  push(argv, "--fields", opts.fields and table.concat(opts.fields, ","))
  push(argv, "--rename", renames(opts.parquet_rename))
  for _, f in ipairs(FLAGS) do push(argv, f[2], opts[f[1]]) end
  if opts.overwrite then argv[#argv + 1] = "--overwrite" end
  if opts.parquet_flatten then argv[#argv + 1] = "--flatten" end
  for _, a in ipairs(opts.worker_args or {}) do argv[#argv + 1] = tostring(a) end
  return worker_job.shares("export", argv, { workers = n, part = 1, parts = 1, slices = opts.slices or n })
end

return M
