-- Running an espipe command as a real process and stopping it with a real
-- signal once it has made progress (the reindex and export signal specs).
local S = require "pipeline.support"
local J = require "pipeline.jobs"

local M = {}

local function number_in(path)
  local f = io.open(path, "rb")
  local s = f and f:read("*l")
  if f then f:close() end
  return tonumber(s)
end

-- Starts `espipe args` in dir, waits for ready() (polled, with a deadline),
-- sends SIG<sig> (sig: "TERM", or a list { "INT", "TERM" } sent one after
-- the other; different signals, so the kernel cannot merge them) and waits
-- for the exit (within seconds, default 60). The signals are set to their
-- default first: a background job of a non-interactive shell starts with
-- SIGINT ignored. Returns the exit status, stdout and stderr.
function M.signalled(dir, args, sig, ready, seconds)
  local out, err, rcf, pidf = dir .. "/job.stdout", dir .. "/job.stderr", dir .. "/job.rc", dir .. "/job.pid"
  os.remove(rcf)
  os.remove(pidf)
  J.exec("(env --default-signal=INT,TERM " .. J.bin .. " " .. args .. " >" .. S.q(out) .. " 2>" .. S.q(err)
    .. " & echo $! >" .. S.q(pidf) .. "; wait $!; echo $? >" .. S.q(rcf) .. ") 2>/dev/null &")
  local pid = J.wait_for(function() return number_in(pidf) end, 30, "the job's pid")
  local started, why = pcall(J.wait_for, function()
    if number_in(rcf) then return "ended" end
    return ready() and "ready"
  end, 60, "the job to make progress")
  if started and why == "ended" then error("the job ended before the signal; its stderr: " .. S.read(err), 0) end
  if not started then
    J.exec("kill -9 " .. pid .. " 2>/dev/null")
    error(why .. "; its stderr: " .. S.read(err), 0)
  end
  for _, one in ipairs(type(sig) == "table" and sig or { sig }) do
    assert(J.exec("kill -" .. one .. " " .. pid) == 0, "the job ended before the signal")
  end
  local exited, rc = pcall(J.wait_for, function() return number_in(rcf) end, seconds or 60, "the job to exit")
  if not exited then
    J.exec("kill -9 " .. pid .. " 2>/dev/null")
    error(rc .. "; its stderr: " .. S.read(err), 0)
  end
  return rc, S.read(out), S.read(err)
end

return M
