-- Run a test nginx (Debian's, with the Lua module) from a config text.
--   local app = nginx.start{ conf = function(port) return text end, env = { K = "v" } }
--   app.url, app.port, app.pid; app.stop()
-- The config runs in a fresh temp prefix (logs/ inside it; relative paths in
-- the config resolve there); ports are random loopback ports, retried when
-- taken; stop() ends nginx by its pid and removes the prefix.
local M = {}

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1; echo \"rc=$?\""))
  local out = p:read("*a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return rc == 0, (out:gsub("rc=%d+%s*$", ""))
end

local function alive(pid)
  return pid ~= nil and (sh("kill -0 " .. pid))
end

-- Poll cond() until it holds or seconds pass; a short pause between tries.
function M.wait_for(cond, seconds)
  local deadline = os.time() + seconds + 1
  while os.time() <= deadline do
    if cond() then return true end
    sh("sleep 0.05")
  end
  return cond()
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function random_port()
  local f = io.open("/dev/urandom", "rb")
  local b = f:read(2)
  f:close()
  return 20000 + (b:byte(1) * 256 + b:byte(2)) % 40000
end

function M.start(o)
  local ok, tmp = sh("mktemp -d ${TMPDIR:-/tmp}/espipe-nginx.XXXXXX")
  assert(ok, "mktemp: " .. tmp)
  tmp = tmp:match("(%S+)")
  assert(sh("mkdir -p " .. q(tmp .. "/logs") .. " " .. q(tmp .. "/conf")))
  local env = {}
  for k, v in pairs(o.env or {}) do env[#env + 1] = k .. "=" .. q(v) end
  local last
  for _ = 1, 20 do
    local port = random_port()
    local f = assert(io.open(tmp .. "/conf/nginx.conf", "wb"))
    f:write(o.conf(port))
    f:close()
    local started, out = sh(table.concat(env, " ") .. " /usr/sbin/nginx -p " .. q(tmp .. "/")
      .. " -c conf/nginx.conf")
    if started then
      local pid
      M.wait_for(function()
        pid = tonumber((read_file(tmp .. "/logs/nginx.pid") or ""):match("%d+"))
        return pid ~= nil
      end, 10)
      local app = { url = "http://127.0.0.1:" .. port, port = port, pid = pid, prefix = tmp }
      function app.stop()
        if alive(app.pid) then
          local _, workers = sh("pgrep -P " .. app.pid)
          sh("kill -QUIT " .. app.pid)
          if not M.wait_for(function() return not alive(app.pid) end, 10) then
            -- a worker stuck in a request keeps a graceful stop waiting forever
            sh("kill -9 " .. app.pid)
          end
          for w in workers:gmatch("%d+") do
            if alive(w) then sh("kill -9 " .. w) end
          end
        end
        sh("rm -rf " .. q(tmp))
      end
      function app.error_log()
        return read_file(tmp .. "/logs/error.log") or ""
      end
      return app
    end
    last = out
    if not out:find("Address already in use", 1, true) then break end
  end
  sh("rm -rf " .. q(tmp))
  error("nginx did not start: " .. tostring(last), 2)
end

-- A curl request running in the background:
--   local r = nginx.spawn_curl{ url =, method =, body = }
--   r.running() -> bool;  r.wait(seconds) -> response body (then its files are gone)
function M.spawn_curl(o)
  local ok, tmp = sh("mktemp -d ${TMPDIR:-/tmp}/espipe-curl.XXXXXX")
  assert(ok, "mktemp: " .. tmp)
  tmp = tmp:match("(%S+)")
  local f = assert(io.open(tmp .. "/body", "wb"))
  f:write(o.body or "")
  f:close()
  -- the subshell marks completion itself: no pid to reap or to recycle
  local cmd = "(curl -s -X " .. (o.method or "GET") .. " --data-binary @" .. q(tmp .. "/body")
    .. " -H 'content-type: application/x-ndjson' -o " .. q(tmp .. "/out") .. " " .. q(o.url)
    .. "; echo $? > " .. q(tmp .. "/done") .. ") >/dev/null 2>&1 &"
  assert(sh(cmd))
  local r = {}
  function r.running() return read_file(tmp .. "/done") == nil end
  function r.wait(seconds)
    assert(M.wait_for(function() return not r.running() end, seconds), "curl still running")
    local body = read_file(tmp .. "/out")
    sh("rm -rf " .. q(tmp))
    return body
  end
  return r
end

return M
