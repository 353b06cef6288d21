-- The target directory of an export, made ready before the first row:
-- a new export needs an empty directory (overwrite = true first removes the
-- files an export writes: part files, files in progress, manifest.json); a
-- resumed one keeps the part files its checkpoint lists and removes the
-- partial file and any part file completed after the last checkpoint.
--
--   export_dir.prepare(dir, { overwrite =, keep = { [name] = true } | nil, ignore = { [name] = true } })
--     -> true | nil, err
local errors = require "espipe.client.errors"

local M = {}

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Names in dir (none when it does not exist yet).
function M.list(dir)
  local p = io.popen("ls -A " .. q(dir) .. " 2>/dev/null")
  if not p then return {} end
  local names = {}
  for name in p:lines() do names[#names + 1] = name end
  p:close()
  table.sort(names)
  return names
end

-- A file an export writes: part-00000.ndjson[.gz], .part-00000.parquet.inprogress, manifest.json(.inprogress)
local function ours(name)
  return name:match("^part%-%d+%.") or name:match("^%.part%-%d+%..*%.inprogress$")
    or name == "manifest.json" or name == "manifest.json.inprogress"
end

function M.prepare(dir, opts)
  local keep, ignore = opts.keep, opts.ignore or {}
  local stray
  for _, name in ipairs(M.list(dir)) do
    if ignore[name] or (keep and keep[name]) then -- luacheck: ignore 542
    elseif ours(name) and (keep or opts.overwrite) then
      local ok, err = os.remove(dir .. "/" .. name)
      if not ok then
        return nil, errors.new { kind = "output",
          message = "cannot remove " .. dir .. "/" .. name .. ": " .. tostring(err) }
      end
    else
      stray = stray or name
    end
  end
  if stray then
    local how = ours(stray) and " (--overwrite replaces an earlier export, --checkpoint FILE resumes one)"
      or " that espipe did not write; export into an empty directory"
    return nil, errors.new { kind = "config",
      message = "the export directory " .. dir .. " is not empty: it holds " .. stray .. how }
  end
  return true
end

return M
