-- Where an export writes: a directory of part files or one file (or "-"),
-- made ready before the first row, and what an interrupted export tells
-- about it.
--
--   target.dir(opts) -> DIR (no trailing slash) | nil for a single-file target
--   target.prepare(dir, opts) -> saved checkpoint | false (none) | nil, err
--   target.interrupted_error(sig, done, dir, opts) -> err (kind "interrupted")
local checkpoint = require "espipe.pipeline.checkpoint"
local export_dir = require "espipe.pipeline.export_dir"
local interrupt = require "espipe.pipeline.interrupt"
local errors = require "espipe.client.errors"

local M = {}

local function is_dir_target(to, opts)
  if to == "-" then return false end
  -- Parquet: a directory of part files, unless the target names one .parquet file
  if opts.format == "parquet" then return not to:find("%.parquet$") end
  if to:sub(-1) == "/" or opts.file_bytes then return true end
  local f = io.open(to .. "/.")
  if f then f:close() return true end
  return not to:find("%.[%w]+$") -- "out" is a directory, "out.ndjson" a file
end

function M.dir(opts)
  if not is_dir_target(opts.to, opts) then return nil end
  return (opts.to:gsub("/$", ""))
end

-- The checkpoint of an earlier run (false: none), after the directory is ready.
function M.prepare(dir, opts)
  local saved
  if opts.checkpoint then
    local lerr
    saved, lerr = checkpoint.load(opts.checkpoint)
    if lerr then return nil, lerr end
  end
  if not dir then
    if not opts.checkpoint then return false end
    return nil, errors.new { kind = "config", message = "--checkpoint needs a directory target (--to DIR)" }
  end
  local ignore = {}
  if opts.checkpoint then
    local base = opts.checkpoint:match("([^/]+)$")
    ignore[base], ignore[base .. ".tmp"] = true, true
  end
  local keep
  if saved and not saved.done then
    keep = {}
    for _, f in ipairs(saved.files or {}) do keep[f.name] = true end
  end
  local ok, err = export_dir.prepare(dir, { overwrite = opts.overwrite, keep = keep, ignore = ignore })
  if not ok then return nil, err end
  return saved or false
end

-- Why an interrupted export stopped, and how it goes on.
function M.interrupted_error(sig, done, dir, opts)
  local resume = opts.checkpoint and ("checkpoint saved to " .. opts.checkpoint
    .. " (rerun the same command to resume)")
    or dir and ("the files in " .. dir .. " are complete but there is no manifest.json;"
      .. " without --checkpoint a rerun needs --overwrite and starts over")
    or opts.to == "-" and "they are on stdout"
    or (opts.to .. " holds them (a single file cannot be resumed)")
  return interrupt.error(sig, done, "documents", resume)
end

return M
