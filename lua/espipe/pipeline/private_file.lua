-- Files that name a cluster (checkpoints, tune state, manifests, dead
-- letters) are created mode 0600 before anything is written to them, so no
-- other user can read where a cluster is or what was sent to it.
--
--   private_file.open(path, mode) -> file | nil, message   (mode as io.open's)
local core = require "espipe.core"

local M = {}

function M.open(path, mode)
  if type(path) ~= "string" then error("private_file.open: path must be a string", 2) end
  -- only "w" and "a" create a file
  if mode == nil or mode:sub(1, 1) == "r" then return io.open(path, mode) end
  local ok, err = core.create_private(path)
  if not ok then return nil, err end
  return io.open(path, mode)
end

return M
