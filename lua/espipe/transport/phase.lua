-- Where the code runs, for choosing a transport: a plain Lua process, or an
-- nginx worker, where only some phases can use cosockets (blocking in a
-- worker stalls, and can deadlock, every request it serves).
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

return M
