-- SIGINT/SIGTERM for the scanning pipelines (reindex, export): the job polls
-- between pages, stops taking new ones, and still flushes and accounts what
-- it accepted before it returns (espipe.core's signals: a second signal
-- stops the process at once).
--
--   interrupt.run(trap, fn, ...) -> fn(...)'s results, with SIGINT/SIGTERM
--                                   trapped around it when trap is true
--   interrupt.active() -> true inside interrupt.run(true, ...)
--   interrupt.received() -> "SIGINT" | "SIGTERM" | nil (nil when not trapped)
--   interrupt.sleep(client, seconds)  client:sleep, ended early by a signal
--   interrupt.error(sig, done, what, resume) -> err (kind "interrupted"):
--     "interrupted by SIGINT after 1200 documents; <resume>"
--   interrupt.exit_code(sig) -> 130 | 143 | nil
local core = require "espipe.core"
local errors = require "espipe.client.errors"

local M = {}

local trapped = false

local function restored(ok, ...)
  core.signals_restore()
  trapped = false
  if not ok then error((...), 0) end
  return ...
end

function M.run(trap, fn, ...)
  if not trap then return fn(...) end
  core.signals_trap()
  trapped = true
  return restored(pcall(fn, ...))
end

function M.active() return trapped end

function M.received()
  return trapped and core.signals_received() or nil
end

-- client:sleep(seconds) in steps, so a signal ends a long wait (--rate)
-- within a quarter of a second: the C sleep sleeps on through EINTR.
local STEP = 0.25
function M.sleep(client, seconds)
  local deadline = client:now() + seconds
  while not M.received() do
    local left = deadline - client:now()
    if left <= 0 then return end
    client:sleep(math.min(left, STEP))
  end
end

function M.error(sig, done, what, resume)
  return errors.new { kind = "interrupted", signal = sig,
    message = "interrupted by " .. sig .. " after " .. done .. " " .. what .. "; " .. resume }
end

local EXIT = { SIGINT = 130, SIGTERM = 143 }
function M.exit_code(sig) return EXIT[sig] end

return M
