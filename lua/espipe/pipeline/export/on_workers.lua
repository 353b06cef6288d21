-- An export written by worker processes (opts.workers): each worker exports
-- its slices into a directory of its own inside the target
-- (DIR/.espipe-worker-I, hidden: readers listing DIR see only complete
-- files), with its own checkpoint (CHECKPOINT.wI). When every worker is
-- done, their files are moved into DIR, numbered in one sequence
-- (part-00000 ... with Parquet partitions kept: dt=.../part-00007.parquet),
-- and one manifest.json lists them all. Until then a rerun resumes each
-- worker from its checkpoint.
--
--   on_workers.run(opts, policy) -> manifest | nil, err [, partial]
--     opts.workers = { count = N, job = function(i) -> what worker i is sent }
--   on_workers.worker_dir(dir, i), on_workers.worker_checkpoint(path, i)
local export_dir = require "espipe.pipeline.export_dir"
local checkpoint = require "espipe.pipeline.checkpoint"
local worker_job = require "espipe.pipeline.worker_job"
local target = require "espipe.pipeline.export.target"
local errors = require "espipe.client.errors"
local json = require "espipe.json"

local M = {}

function M.worker_dir(dir, i) return dir .. "/.espipe-worker-" .. i end
function M.worker_checkpoint(path, i) return path and (path .. ".w" .. i) or nil end

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function config_error(msg) return errors.new { kind = "config", message = msg } end

-- The target is ready: empty but for the workers' own directories and
-- checkpoints (kept to resume, removed with overwrite when not resuming).
local function prepare(dir, opts, count)
  local ignore, resuming = {}, false
  for i = 1, count do
    ignore[M.worker_dir(dir, i):match("[^/]+$")] = true
    local ck = M.worker_checkpoint(opts.checkpoint, i)
    if ck then
      local base = ck:match("([^/]+)$")
      ignore[base], ignore[base .. ".tmp"] = true, true
      resuming = resuming or checkpoint.load(ck) ~= nil
    end
  end
  if opts.overwrite and not resuming then
    for i = 1, count do os.execute("rm -rf " .. q(M.worker_dir(dir, i))) end
  end
  return export_dir.prepare(dir, { overwrite = opts.overwrite, ignore = ignore })
end

local function read_manifest(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local body = f:read("*a")
  f:close()
  local ok, m = pcall(json.decode, body)
  return ok and type(m) == "table" and m or nil
end

-- Per-column counts (Parquet's invalid / coerced) added up.
local function add_counts(into, from)
  if type(from) ~= "table" then return into end
  into = into or {}
  for k, v in pairs(from) do into[k] = (into[k] or 0) + v end
  return into
end

-- Partitions (Parquet's partition_by) by name, their counts (rows, files) added up.
local function add_partitions(into, from)
  if type(from) ~= "table" then return into end
  into = into or {}
  for _, p in ipairs(from) do
    local found
    for _, known in ipairs(into) do if known.name == p.name then found = known end end
    if not found then
      found = { name = p.name }
      into[#into + 1] = found
    end
    for k, v in pairs(p) do
      if type(v) == "number" then found[k] = (found[k] or 0) + v end
    end
  end
  return into
end

-- Moves worker i's files into dir, numbered from n; their manifest entries.
local function move_files(dir, wdir, m, n, entries)
  for _, f in ipairs(m.files or {}) do
    local sub, base = f.name:match("^(.-)([^/]+)$")
    local name = sub .. (base:gsub("^part%-%d+", string.format("part-%05d", n)))
    if sub ~= "" then os.execute("mkdir -p " .. q(dir .. "/" .. sub)) end
    local ok, err = os.rename(wdir .. "/" .. f.name, dir .. "/" .. name)
    if not ok then return nil, errors.new { kind = "output", message = "cannot move a worker's file: " .. tostring(err) } end
    local e = {}
    for k, v in pairs(f) do e[k] = v end
    e.name = name
    entries[#entries + 1] = e
    n = n + 1
  end
  return n
end

-- Every worker finished: one directory, one manifest, one checkpoint saying done.
local function merge(dir, opts, count)
  local entries, manifest, n = {}, nil, 0
  for i = 1, count do
    local wdir = M.worker_dir(dir, i)
    local m = read_manifest(wdir .. "/manifest.json")
    if not m then return nil, errors.new { kind = "output", message = "worker " .. i .. " wrote no manifest in " .. wdir } end
    if not manifest then
      manifest = {}
      for k, v in pairs(m) do manifest[k] = v end
      manifest.rows, manifest.bytes, manifest.invalid, manifest.coerced, manifest.partitions = 0, 0, nil, nil, nil
    end
    local nerr
    n, nerr = move_files(dir, wdir, m, n, entries)
    if not n then return nil, nerr end
    manifest.rows, manifest.bytes = manifest.rows + (m.rows or 0), manifest.bytes + (m.bytes or 0)
    manifest.invalid, manifest.coerced = add_counts(manifest.invalid, m.invalid), add_counts(manifest.coerced, m.coerced)
    manifest.partitions = add_partitions(manifest.partitions, m.partitions)
  end
  manifest.files, manifest.total, manifest.workers = json.array(entries), manifest.rows, count
  if manifest.partitions then manifest.partitions = json.array(manifest.partitions) end
  local f, ferr = require("espipe.pipeline.private_file").open(dir .. "/manifest.json.inprogress", "wb")
  if not f then return nil, errors.new { kind = "output", message = "cannot write manifest: " .. tostring(ferr) } end
  f:write(json.encode(manifest), "\n")
  f:close()
  os.rename(dir .. "/manifest.json.inprogress", dir .. "/manifest.json")
  for i = 1, count do
    os.execute("rm -rf " .. q(M.worker_dir(dir, i)))
    if opts.checkpoint then checkpoint.remove(M.worker_checkpoint(opts.checkpoint, i)) end
  end
  if opts.checkpoint then
    local ok, err = checkpoint.save(opts.checkpoint, { done = true, rows = manifest.rows, bytes = manifest.bytes,
      files = manifest.files })
    if not ok then return nil, err end
  end
  return manifest
end

function M.run(opts, policy)
  local dir = target.dir(opts)
  if not dir then return nil, config_error("--workers needs a directory target (--to DIR); use --workers 1 for one file") end
  local count = opts.workers.count
  local saved, lerr
  if opts.checkpoint then saved, lerr = checkpoint.load(opts.checkpoint) end
  if lerr then return nil, lerr end
  if saved and saved.done then
    return { already_done = true, rows = saved.rows, bytes = saved.bytes, files = saved.files or {} }
  end
  local ok, perr = prepare(dir, opts, count)
  if not ok then return nil, perr end
  local total, cerr = require("espipe.pipeline.setup").new(opts.client, policy):count(opts.index, opts.query)
  if not total then return nil, cerr end
  if opts.progress then opts.progress.total = total end
  local res, werr = worker_job.run { count = count, job = opts.workers.job, progress = opts.progress }
  if not res then return nil, werr end
  local partial = worker_job.sum(worker_job.summaries(res, count))
  partial.interrupted = res.interrupted or partial.interrupted
  local failure = worker_job.failure(res, count, "the other workers' files are kept")
  if failure then return nil, failure, partial end
  if partial.interrupted then
    return nil, target.interrupted_error(partial.interrupted, partial.rows or 0, dir, opts), partial
  end
  return merge(dir, opts, count)
end

return M
