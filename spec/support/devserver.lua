-- Starts and stops `espipe serve` for specs.
--   devserver.start{ cluster =, nodes =, data = dir | true, chaos =, seed =, blackhole =,
--                    auth = "user:password", tls = true, args = { extra flags },
--                    foreground = true }
--     -> { url =, port =, pid =, data =, ca = CA file with tls, stop = fn, kill9 = fn }
--   foreground: `espipe serve` without --daemon, as a background job of a
--     shell; the result also has lua_pid (the espipe process, pid is nginx's
--     master), pid_file and output() (what espipe printed so far)
-- Picks free loopback ports (random candidates, retried on "Address already
-- in use"), waits until GET / answers (deadline, no fixed sleeps), and on
-- stop kills by pid, waits for the exit and removes its temporary files.
--
-- What most server specs set up, once: a dev server for the describe block,
-- a client on it, temporary directories, all removed again.
--   local env = devserver.env { nodes = 1 }   -- devserver.start's options
--   setup(env.start) teardown(env.stop) before_each(env.fresh)
--   env.server, env.client, env.dir (a fresh directory per test), env.tmpdir()
local http = require("spec.support.http")

local M = {}

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
  local out = p:read("*a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return rc == 0, out:gsub("rc=%d+%s*$", "")
end

local function alive(pid)
  return pid and (sh("kill -0 " .. pid))
end

local function wait_gone(pid, seconds)
  local deadline = os.time() + seconds
  while alive(pid) and os.time() <= deadline do sh("sleep 0.02") end
  return not alive(pid)
end

local seeded = false
local function candidate_port(span)
  if not seeded then
    local f = io.open("/dev/urandom", "rb")
    local b = f and f:read(4) or ""
    if f then f:close() end
    local n = os.time()
    for i = 1, #b do n = n * 256 + b:byte(i) end
    math.randomseed(n % 2147483647)
    seeded = true
  end
  return math.random(20000, 60000 - span)
end

M.root = os.getenv("ESPIPE_ROOT") or "."

-- With ES_URL set, a spec that needs only "an Elasticsearch" (o.cluster =
-- true, and none of the dev server's own features) runs against that cluster
-- instead; stop() then leaves it alone. Point ES_URL at a disposable cluster.
local function external(o)
  local url = os.getenv("ES_URL")
  if not (o.cluster and url and url ~= "") then return nil end
  if o.nodes or o.data or o.chaos or o.blackhole or o.args then
    error("devserver.start: cluster = true cannot be combined with dev-server options", 3)
  end
  return { url = (url:gsub("/+$", "")), external = true, stop = function() end,
           kill9 = function() error("kill9 needs the dev server, not ES_URL", 2) end }
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- `espipe serve` in the foreground, as a shell's background job: waits
-- until its pid file names nginx's master and GET / answers, or the
-- espipe process is gone -> espipe's pid | false, its output
local function start_foreground(cmd, url, pid_file, out_file)
  local _, started = sh(cmd .. " > " .. q(out_file) .. " 2>&1 & echo $!")
  local lua_pid = tonumber(started:match("%d+"))
  local deadline = os.time() + 15
  while lua_pid and alive(lua_pid) and os.time() <= deadline do
    local pids = read_file(pid_file)
    if pids and pids:match("%d+") then
      if http.request { url = url .. "/", timeout = 1 }.status ~= 0 then return lua_pid, read_file(out_file) or "" end
    end
    sh("sleep 0.05")
  end
  if lua_pid and alive(lua_pid) then sh("kill -TERM " .. lua_pid) end
  return false, read_file(out_file) or ""
end

function M.start(o)
  o = o or {}
  local ext = external(o)
  if ext then return ext end
  local ok, tmp = sh("mktemp -d ${TMPDIR:-/tmp}/espipe-spec.XXXXXX")
  assert(ok, "mktemp failed: " .. tmp)
  tmp = tmp:match("(%S+)")
  local data = o.data
  if data == true then
    data = tmp .. "/data"
    assert(sh("mkdir -p " .. q(data)))
  end
  local pid_file = tmp .. "/serve.pid"
  local nodes = o.nodes or 1
  local last_err
  for _ = 1, 20 do
    local port = o.port or candidate_port(nodes)
    local args = { M.root .. "/bin/espipe", "serve", o.foreground and "" or "--daemon", "--port", port,
                   "--pid-file", q(pid_file), "--nodes", nodes }
    if data then args[#args + 1] = "--data " .. q(data) end
    if o.chaos then args[#args + 1] = "--chaos " .. q(o.chaos) end
    if o.seed then args[#args + 1] = "--seed " .. o.seed end
    if o.blackhole then args[#args + 1] = "--blackhole" end
    if o.auth then args[#args + 1] = "--auth " .. q(o.auth) end
    if o.tls then args[#args + 1] = "--tls" end
    for _, a in ipairs(o.args or {}) do args[#args + 1] = q(a) end
    local started, out
    if o.foreground then
      started, out = start_foreground(table.concat(args, " "), (o.tls and "https" or "http") .. "://127.0.0.1:" .. port,
        pid_file, tmp .. "/out")
    else
      started, out = sh(table.concat(args, " "))
    end
    if started then
      local f = io.open(pid_file)
      local pid = f and tonumber(f:read("*a"):match("%d+"))
      if f then f:close() end
      local server = { url = (o.tls and "https" or "http") .. "://127.0.0.1:" .. port, port = port, pid = pid,
                       data = data, tmp = tmp, output = out, ca = out:match("TLS: CA certificate (%S+)") }
      if o.foreground then
        server.lua_pid, server.pid_file = started, pid_file
        server.output = function() return read_file(tmp .. "/out") or "" end
      end
      function server.stop()
        if server.lua_pid and alive(server.lua_pid) then
          sh("kill -TERM " .. server.lua_pid)
          assert(wait_gone(server.lua_pid, 15), "espipe " .. server.lua_pid .. " did not exit")
        end
        if server.pid and alive(server.pid) then
          sh("kill -TERM " .. server.pid)
          assert(wait_gone(server.pid, 15), "nginx " .. server.pid .. " did not exit")
        end
        local pf = io.open(pid_file .. ".prefix")
        if pf then
          local prefix = pf:read("*a")
          pf:close()
          if prefix:match("espipe%-serve%.") then sh("rm -rf " .. q(prefix)) end
        end
        sh("rm -rf " .. q(tmp))
      end
      -- kill -9 the master and its workers, as a crash would
      function server.kill9()
        local _, children = sh("pgrep -P " .. server.pid)
        sh("kill -9 " .. server.pid)
        for child in children:gmatch("%d+") do sh("kill -9 " .. child) end
        wait_gone(server.pid, 10)
        for child in children:gmatch("%d+") do wait_gone(tonumber(child), 10) end
      end
      return server
    end
    last_err = out
    if not out:find("Address already in use", 1, true) then break end
  end
  sh("rm -rf " .. q(tmp))
  error("espipe serve did not start: " .. tostring(last_err), 2)
end

function M.env(o)
  local env, made = {}, {}
  function env.tmpdir()
    local ok, out = sh("mktemp -d ${TMPDIR:-/tmp}/espipe-spec-dir.XXXXXX")
    assert(ok, "mktemp failed: " .. out)
    made[#made + 1] = out:match("(%S+)")
    return made[#made]
  end
  function env.start()
    env.server = M.start(o)
    env.client = require("espipe.client").new { hosts = { env.server.url } }
  end
  function env.stop()
    if env.client then env.client:close() end
    if env.server then env.server.stop() end
    for _, d in ipairs(made) do sh("rm -rf " .. q(d)) end
    made = {}
  end
  function env.fresh() env.dir = env.tmpdir() end
  return env
end

return M
