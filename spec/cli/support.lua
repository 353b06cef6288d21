-- What the CLI specs share: bin/espipe run as a process in a directory.
local S = require "pipeline.support"
local J = require "pipeline.jobs"

local M = {}

M.bin = J.bin:sub(1, 1) == "/" and J.bin or (os.getenv("PWD") .. "/" .. J.bin)

-- bin/espipe args run in dir -> exit code, stdout, stderr
function M.espipe_in(dir, args)
  local logs = S.tmpdir()
  local code = J.exec("cd " .. S.q(dir) .. " && " .. S.q(M.bin) .. " " .. args .. " >" .. S.q(logs .. "/out")
    .. " 2>" .. S.q(logs .. "/err"))
  local out, err = S.read(logs .. "/out"), S.read(logs .. "/err")
  S.remove_dir(logs) -- now: not every spec that runs a job calls S.cleanup()
  return code, out, err
end

return M
