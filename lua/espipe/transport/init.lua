-- Picks the transport for where the code runs: libcurl multi in a plain Lua
-- process; inside nginx a cosocket transport, because blocking in a worker
-- stalls (and can deadlock) every request it serves.
local phase = require("espipe.transport.phase")

local M = {
  inside_nginx = phase.inside_nginx,
  cosockets_available = phase.cosockets_available,
}

function M.name()
  return M.inside_nginx() and "ngx" or "curl"
end

-- transport.clock() -> the monotonic clock (a function, seconds) of the
-- transport that runs here, for code that times itself without a client
-- (progress lines).
function M.clock()
  if M.inside_nginx() then return ngx.now end
  return require("espipe.transport.curl").clock
end

-- transport.new(opts) -> a transport with the seam of lua/espipe/transport/README.md.
function M.new(opts)
  if M.inside_nginx() then
    if not M.cosockets_available() then
      error("espipe.transport: cosockets are not available in the '" .. ngx.get_phase()
        .. "' phase; run the work from ngx.timer.at(0, fn) (log_by_lua, init_worker...):"
        .. " the curl transport would block the nginx worker", 2)
    end
    -- each implementation is loaded where it runs: the cosocket one needs
    -- OpenResty's modules, the curl one libcurl
    return require("espipe.transport.ngx").new(opts)
  end
  local t = require("espipe.transport.curl")._construct(opts, 3)
  return t
end

return M
