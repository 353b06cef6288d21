-- What several client specs set up the same way: a client over a scripted
-- transport giving one answer, a dev server under chaos for a describe
-- block, temporary files and their lines.
local client_mod = require("espipe.client")
local devserver = require("support.devserver")
local script = require("spec.client.support.script_transport")

local M = {}

-- A client whose every request gets status and body; and its transport.
function M.client_answering(status, body)
  local t = script.new(function() return { status = status, body = body } end)
  return client_mod.new{ transport = t }, t
end

-- A dev server with retryable faults: start() -> a client of it; stop().
function M.chaos_server()
  local srv
  return {
    start = function()
      srv = devserver.start{ chaos = "item_429=0.2,503=0.05,reset=0.02", seed = 42 }
      return client_mod.new{ hosts = { srv.url } }
    end,
    stop = function() if srv then srv.stop() end end,
  }
end

-- A path nothing is at yet.
function M.tmpname()
  local p = os.tmpname()
  os.remove(p)
  return p
end

-- The lines of a file ({} when there is none).
function M.read_lines(path)
  local out = {}
  local f = io.open(path)
  if not f then return out end
  for line in f:lines() do out[#out + 1] = line end
  f:close()
  return out
end

return M
