-- Checkpoint files: a job's position and counts as JSON, replaced atomically
-- (written to PATH.tmp, flushed, renamed over PATH), so a kill -9 at any
-- moment leaves either the old or the new checkpoint, never half of one.
--
--   checkpoint.save(path, state) -> true | nil, err
--   checkpoint.load(path)        -> state | nil (no file) | nil, err (unreadable)
--   checkpoint.remove(path)
local errors = require "espipe.errors"

local M = {}

local function json() return require "espipe.json" end

function M.save(path, state)
  local body = json().encode(state)
  local tmp = path .. ".tmp"
  local f, err = require("espipe.private_file").open(tmp, "wb")
  if not f then return nil, errors.new { kind = "checkpoint", message = "cannot write " .. tmp .. ": " .. err } end
  local ok, werr = f:write(body, "\n")
  if ok then ok, werr = f:flush() end
  f:close()
  if not ok then
    os.remove(tmp)
    return nil, errors.new { kind = "checkpoint", message = "cannot write " .. tmp .. ": " .. tostring(werr) }
  end
  local rok, rerr = os.rename(tmp, path)
  if not rok then
    os.remove(tmp)
    return nil, errors.new { kind = "checkpoint", message = "cannot rename " .. tmp .. ": " .. tostring(rerr) }
  end
  return true
end

function M.load(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local body = f:read("*a")
  f:close()
  local ok, state, derr = pcall(json().decode, body)
  if not ok or type(state) ~= "table" then
    return nil, errors.new { kind = "checkpoint",
      message = "checkpoint " .. path .. " is not valid JSON: " .. tostring(derr or state) }
  end
  return state
end

function M.remove(path)
  os.remove(path)
  os.remove(path .. ".tmp")
end

return M
