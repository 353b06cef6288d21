-- Picks the transport for where the code runs: libcurl multi in a plain Lua
-- process; inside nginx a cosocket transport, because blocking in a worker
-- stalls (and can deadlock) every request it serves.
local M = {}

function M.inside_nginx()
  return type(ngx) == "table" and type(ngx.get_phase) == "function"
end

-- Phases in which ngx.socket.tcp works (lua-nginx-module's documentation).
local COSOCKET_PHASES = {
  rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true,
}

function M.cosockets_available()
  return M.inside_nginx() and COSOCKET_PHASES[ngx.get_phase()] == true
end

function M.name()
  return M.inside_nginx() and "ngx" or "curl"
end

-- transport.new(opts) -> a transport with the seam of lua/espipe/transport/README.md.
function M.new(opts)
  if M.inside_nginx() then
    if not M.cosockets_available() then
      error("espipe.transport: cosockets are not available in the '" .. ngx.get_phase()
        .. "' phase; run the work from ngx.timer.at(0, fn) (log_by_lua, init_worker...):"
        .. " the curl transport would block the nginx worker", 2)
    end
    return require("espipe.transport.ngx").new(opts)
  end
  local t = require("espipe.transport.curl")._construct(opts, 3)
  return t
end

return M
