-- A test-only nginx that echoes requests back as JSON, for transport specs
-- and benchmarks. Everything lives in a fresh temp dir (config, TLS files
-- made with the openssl CLI, logs) that stop() removes; ports are random
-- loopback ports, retried when taken; stop() ends nginx by its pid.
--
--   local echo = require "support.echo_server"
--   local srv = echo.start{ tls = true }   -- srv.url, srv.tls_url, srv.ca_file, srv.client_cert/key
--   ...  srv:stop()
--
-- Query arguments any path understands:
--   sleep=S    answer after S seconds          status=N  answer with status N
--   bytes=N    answer N bytes of "x"           gunzip=1  decode a gzip body (gzip CLI)
--   discard=1  read the body, answer only its length
-- /close drops the connection without an answer; /gzip/* gzips its answer.
local M = {}

local NGINX = "/usr/sbin/nginx"
local MODULES = {
  "/usr/lib/nginx/modules/ndk_http_module.so",
  "/usr/lib/nginx/modules/ngx_http_lua_module.so",
}

local function q(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function run(cmd)
  local ok, _, code = os.execute(cmd)
  -- Lua 5.1 returns the status alone.
  if type(ok) == "number" then return ok == 0 end
  return ok == true and code == 0
end

local function read(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  return out
end

local function write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- Polls cond() until it is true or seconds pass; a short pause between tries.
local function wait_for(cond, seconds)
  local deadline = os.time() + seconds + 1
  while os.time() <= deadline do
    if cond() then return true end
    run("sleep 0.02")
  end
  return cond()
end
M.wait_for = wait_for

local HANDLER = [==[
local cjson = require "cjson"
ngx.update_time()
local start = ngx.now()
local args = ngx.req.get_uri_args()
ngx.req.read_body()
local body = ngx.req.get_body_data()
if not body then
  local file = ngx.req.get_body_file()
  if file then
    local f = assert(io.open(file, "rb"))
    body = f:read("*a")
    f:close()
  end
end
body = body or ""
local received = #body
if args.gunzip then
  local name = string.format("%s/gz-%s-%s.gz", SCRATCH, ngx.var.connection, ngx.var.connection_requests)
  local f = assert(io.open(name, "wb"))
  f:write(body)
  f:close()
  local p = assert(io.popen("gzip -dc " .. name))
  body = p:read("*a")
  p:close()
  os.remove(name)
end
if args.sleep then ngx.sleep(tonumber(args.sleep)) end
ngx.update_time()
ngx.status = tonumber(args.status) or 200
ngx.header["content-type"] = "application/json"
if args.bytes then
  ngx.print(string.rep("x", tonumber(args.bytes)))
  return
end
ngx.print(cjson.encode {
  method = ngx.req.get_method(),
  uri = ngx.var.uri,
  args = ngx.var.args,
  headers = ngx.req.get_headers(),
  body = (not args.discard) and body or nil,
  received = received,
  connection = tonumber(ngx.var.connection),
  connection_requests = tonumber(ngx.var.connection_requests),
  start = start,
  finish = ngx.now(),
  scheme = ngx.var.scheme,
  client_verify = ngx.var.ssl_client_verify,
  server_port = tonumber(ngx.var.server_port),
})
]==]

local function conf(dir, port, tls_port)
  local lines = {}
  for _, m in ipairs(MODULES) do lines[#lines + 1] = "load_module " .. m .. ";" end
  local locations = table.concat({
    "    location = /close { return 444; }",
    "    location /gzip/ { gzip on; gzip_types application/json; gzip_min_length 1;",
    "                      content_by_lua_file " .. dir .. "/echo.lua; }",
    "    location / { content_by_lua_file " .. dir .. "/echo.lua; }",
  }, "\n")
  local tls = ""
  if tls_port then
    tls = table.concat({
      "  server {",
      "    listen 127.0.0.1:" .. tls_port .. " ssl;",
      "    ssl_certificate " .. dir .. "/server.pem;",
      "    ssl_certificate_key " .. dir .. "/server.key;",
      "    ssl_client_certificate " .. dir .. "/ca.pem;",
      "    ssl_verify_client optional;",
      locations,
      "  }",
    }, "\n")
  end
  return table.concat(lines, "\n") .. "\n" .. table.concat({
    "daemon on;",
    "worker_processes 1;",
    run("[ $(id -u) -eq 0 ]") and "user root;" or "",
    "pid " .. dir .. "/nginx.pid;",
    "error_log " .. dir .. "/error.log warn;",
    "events { worker_connections 512; }",
    "http {",
    "  access_log off;",
    "  client_body_temp_path " .. dir .. "/body;",
    "  proxy_temp_path " .. dir .. "/proxy;",
    "  fastcgi_temp_path " .. dir .. "/fastcgi;",
    "  uwsgi_temp_path " .. dir .. "/uwsgi;",
    "  scgi_temp_path " .. dir .. "/scgi;",
    "  client_max_body_size 64m;",
    "  client_body_buffer_size 16m;",
    "  keepalive_requests 100000;",
    "  keepalive_timeout 60s;",
    "  lua_socket_log_errors off;",
    "  server {",
    "    listen 127.0.0.1:" .. port .. ";",
    locations,
    "  }",
    tls,
    "}",
  }, "\n") .. "\n"
end

local function make_certs(dir)
  local ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
  local function openssl(args)
    assert(run("cd " .. q(dir) .. " && openssl " .. args .. " >/dev/null 2>&1"),
      "openssl failed: " .. args)
  end
  openssl("req -x509 " .. ec .. " -keyout ca.key -out ca.pem -subj /CN=espipe-test-ca")
  openssl("req -x509 -CA ca.pem -CAkey ca.key " .. ec .. " -keyout server.key -out server.pem"
    .. " -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -addext basicConstraints=CA:FALSE")
  openssl("req -x509 -CA ca.pem -CAkey ca.key " .. ec .. " -keyout client.key -out client.pem"
    .. " -subj /CN=espipe-test-client -addext basicConstraints=CA:FALSE"
    .. " -addext extendedKeyUsage=clientAuth")
end

-- ca.pem/ca.key, server.pem/server.key (for 127.0.0.1), client.pem/client.key in dir
M.make_certs = make_certs

local Server = {}
Server.__index = Server

local function pid_alive(pid)
  return run("kill -0 " .. pid .. " 2>/dev/null")
end

function Server:stop()
  if self.pid then
    run("kill -TERM " .. self.pid .. " 2>/dev/null")
    if not wait_for(function() return not pid_alive(self.pid) end, 10) then
      run("kill -KILL " .. self.pid .. " 2>/dev/null")
    end
    self.pid = nil
  end
  if self.dir then
    run("rm -rf " .. q(self.dir))
    self.dir = nil
  end
end

function Server:error_log()
  return self.dir and read_file(self.dir .. "/error.log") or ""
end

-- start{ tls = bool } -> server; raises when nginx cannot be started.
function M.start(opts)
  opts = opts or {}
  local dir = read(
    "mktemp -d " .. q((os.getenv("TMPDIR") or "/tmp") .. "/espipe-echo.XXXXXX")):match("^(%S+)")
  assert(dir, "mktemp -d failed")
  local srv = setmetatable({ dir = dir }, Server)
  local ok, err = pcall(function()
    assert(run("mkdir -p " .. q(dir .. "/scratch")))
    write_file(dir .. "/echo.lua", "local SCRATCH = " .. string.format("%q", dir .. "/scratch")
      .. "\n" .. HANDLER)
    if opts.tls then
      make_certs(dir)
      srv.ca_file = dir .. "/ca.pem"
      srv.client_cert, srv.client_key = dir .. "/client.pem", dir .. "/client.key"
    end
    math.randomseed(os.time() + math.floor((os.clock() * 1e6) % 1e6))
    for _ = 1, 20 do
      local port = math.random(20000, 59000)
      local tls_port = opts.tls and port + 1 or nil
      write_file(dir .. "/nginx.conf", conf(dir, port, tls_port))
      if run(NGINX .. " -p " .. q(dir) .. " -c " .. q(dir .. "/nginx.conf")
          .. " -e " .. q(dir .. "/error.log") .. " 2>" .. q(dir .. "/start.log")) then
        assert(wait_for(function()
          local s = read_file(dir .. "/nginx.pid")
          srv.pid = s and tonumber(s:match("%d+"))
          return srv.pid ~= nil
        end, 10), "nginx started but wrote no pid file")
        srv.port, srv.url = port, "http://127.0.0.1:" .. port
        if tls_port then srv.tls_port, srv.tls_url = tls_port, "https://127.0.0.1:" .. tls_port end
        return
      end
      local why = read_file(dir .. "/start.log") or ""
      if not why:find("in use") then error("nginx did not start: " .. why) end
    end
    error("no free port found for nginx")
  end)
  if not ok then
    srv:stop()
    error(err, 2)
  end
  return srv
end

return M
