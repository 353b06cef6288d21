-- Shell helpers for the packaging specs: run a command, get its output and
-- whether it exited 0; a temporary directory removed by the caller.
local files = require "pipeline.support"
local M = { q = files.q, read = files.read, write = files.write }

-- ok, output (stdout and stderr)
function M.sh(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1; echo \"rc=$?\""))
  local out = p:read("*a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return rc == 0, (out:gsub("rc=%d+%s*$", ""))
end

function M.run(cmd)
  local ok, out = M.sh(cmd)
  assert(ok, cmd .. " failed:\n" .. out)
  return out
end

function M.tmpdir()
  return (M.run("mktemp -d ${TMPDIR:-/tmp}/espipe-pkg-spec.XXXXXX"):match("%S+"))
end

function M.remove(dir)
  if dir and dir:match("/espipe%-pkg%-spec%.%w+$") then M.run("rm -rf " .. M.q(dir)) end
end

return M
