-- Picks the transport for where the code runs: libcurl multi in a plain Lua
-- process; inside nginx a cosocket transport, because blocking in a worker
-- stalls (and can deadlock) every request it serves.
local M = {}

function M.inside_nginx()
  return type(ngx) == "table" and type(ngx.get_phase) == "function"
end

function M.name()
  return M.inside_nginx() and "ngx" or "curl"
end

-- transport.new(opts) -> a transport with the seam of lua/espipe/transport/README.md.
function M.new(opts)
  if M.inside_nginx() then
    local ngx_transport = require("espipe.transport.ngx")
    if not ngx_transport.available() then
      error("espipe.transport: cosockets are not available in the '" .. ngx.get_phase()
        .. "' phase; use ngx.timer.at(0, fn) (log_by_lua, init_worker...) — the curl"
        .. " transport would block the nginx worker", 2)
    end
    return ngx_transport.new(opts)
  end
  local t = require("espipe.transport.curl")._construct(opts, 3)
  return t
end

return M
