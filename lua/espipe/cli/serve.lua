-- `espipe serve`: an Elasticsearch 8-compatible development server, run by
-- Debian's nginx with the Lua module. This file only prepares a private nginx
-- prefix and runs/stops nginx; the server itself is espipe.server.app.
local nginx_conf = require("espipe.server.nginx_conf")

local M = {}

M.summary = "run an Elasticsearch 8-compatible development server (nginx + Lua)"
M.usage = [[
usage: espipe serve [options]
       espipe serve --stop [--pid-file F | --port P]

  --host H               address to listen on (default 127.0.0.1)
  --port P               first port (default 9200); node i listens on P+i
  --nodes N              nodes of the one cluster, on N consecutive ports (default 1)
  --data DIR             persist what was acknowledged in DIR (default: memory only)
  --chaos SPEC           inject failures into _bulk, e.g.
                         bulk_429=0.05,item_429=0.2,503=0.05,latency=0.1:50ms,reset=0.02
                         (search_429=, search_503= do the same for _search)
  --capacity SPEC        model a loaded cluster's bulk capacity, e.g.
                         docs_per_s=40000,per_request_ms=3,per_shard_ms=1.5,hop_ms=1,queue=200,nodes=3
                         (per node; change_after_s=30,change_factor=0.5 halves it after 30 s)
  --flavor F             answer as another release: es-6.8, es-7.10, es-7.12, es-7.17,
                         es-8.15 (default), es-9 or opensearch-2 (GET /, point-in-time API
                         and its slices, hits.total form, _shard_doc, _type); see README's
                         version table
  --seed N               seed for --chaos (default 1): same seed, same requests, same faults
  --blackhole            acknowledge bulk items without storing them (client benchmarks)
  --workers N            nginx workers; more than 1 only with --blackhole, since
                         the cluster state lives in one worker
  --max-content-length S http.max_content_length, e.g. 100mb (default), 512kb
  --auth USER:PASSWORD   require basic auth (or an API key from POST /_security/api_key),
                         answering 401 security_exception as ES does
  --tls                  serve HTTPS with a CA and server certificate generated at start
                         (under --data DIR/tls, else the temporary directory); prints the CA path
  --daemon               return once the server answers; stop it with --stop
  --pid-file F           pid file (default $TMPDIR/espipe-serve-<port>.pid)
  --stop                 stop a server started with --daemon

Then: curl http://127.0.0.1:9200/
Needs the Debian packages nginx, libnginx-mod-http-lua and lua-resty-core.]]

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function file_exists(path)
  local f = io.open(path, "r")
  if f then f:close() return true end
  return false
end

local function read_file(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("a") or f:read("*a")
  f:close()
  return s
end

local function write_file(path, text)
  local f, err = io.open(path, "w")
  if not f then return nil, "cannot write " .. tostring(err) end
  local ok, werr = f:write(text)
  local closed, cerr = f:close()
  if not ok or not closed then return nil, "cannot write " .. path .. ": " .. tostring(werr or cerr) end
  return true
end

local function shell_ok(cmd)
  local a, _, c = os.execute(cmd)
  if type(a) == "number" then return a == 0 end -- Lua 5.1
  return a == true and (c == nil or c == 0)
end

local function shell_read(cmd)
  local p = io.popen(cmd)
  local s = p and p:read("*a")
  if p then p:close() end
  return s
end

local function parse_size(s)
  local n, unit = tostring(s):lower():match("^(%d+)(%a*)$")
  if not n then return nil end
  local mult = ({ [""] = 1, b = 1, kb = 1024, k = 1024, mb = 1024 ^ 2, m = 1024 ^ 2,
                   gb = 1024 ^ 3, g = 1024 ^ 3 })[unit]
  if not mult then return nil end
  return math.floor(tonumber(n) * mult)
end

local FLAGS = {
  host = "value", port = "int", data = "value", nodes = "int", chaos = "value",
  seed = "int", workers = "int", blackhole = "bool", daemon = "bool", stop = "bool",
  ["pid-file"] = "value", ["max-content-length"] = "value", auth = "value", tls = "bool",
  capacity = "value", flavor = "value",
}
M.flags = FLAGS -- for the help spec: what --help must list

function M.parse_args(args)
  local o = { host = "127.0.0.1", port = 9200, nodes = 1, seed = 1, workers = 1,
              ["max-content-length"] = "100mb" }
  local i = 1
  while i <= #args do
    local a = args[i]
    local name, inline = a:match("^%-%-([%w%-]+)=(.*)$")
    name = name or a:match("^%-%-([%w%-]+)$")
    local kind = name and FLAGS[name]
    if not kind then return nil, "unknown option " .. a end
    if kind == "bool" then
      if inline then return nil, "--" .. name .. " takes no value" end
      o[name] = true
    else
      local v = inline
      if not v then
        i = i + 1
        v = args[i]
        if v == nil then return nil, "--" .. name .. " needs a value" end
      end
      if kind == "int" then
        local n = tonumber(v)
        if not n or n ~= math.floor(n) or n < 0 then
          return nil, "--" .. name .. " needs a non-negative integer, got " .. v
        end
        v = math.floor(n)
      end
      o[name] = v
    end
    i = i + 1
  end
  if o.port < 1 or o.port + o.nodes - 1 > 65535 then return nil, "--port out of range" end
  if o.nodes < 1 or o.nodes > 64 then return nil, "--nodes must be between 1 and 64" end
  if o.workers < 1 then return nil, "--workers must be at least 1" end
  if o.workers > 1 and not o.blackhole then
    return nil, "--workers > 1 needs --blackhole: the cluster state lives in one nginx worker"
  end
  o.max_content_length = parse_size(o["max-content-length"])
  if not o.max_content_length or o.max_content_length < 1 then
    return nil, "--max-content-length needs a size like 100mb, got " .. o["max-content-length"]
  end
  if o.auth and not o.auth:match("^[^:]+:.+$") then
    return nil, "--auth needs USER:PASSWORD, got " .. o.auth
  end
  if o.chaos then
    local ok, err = require("espipe.server.chaos").parse(o.chaos)
    if not ok then return nil, "--chaos: " .. err end
  end
  if o.capacity then
    local cerr = M.check_capacity(o, args)
    if cerr then return nil, cerr end
  end
  if o.flavor then
    local ok, ferr = require("espipe.server.flavors").get(o.flavor)
    if not ok then return nil, "--flavor: " .. ferr end
  end
  return o
end

-- --capacity: a valid spec, whose nodes= sets --nodes (or agrees with it);
-- the model's timing needs the stored path (one worker, no --blackhole).
function M.check_capacity(o, args)
  local cfg, err = require("espipe.server.capacity").parse(o.capacity)
  if not cfg then return "--capacity: " .. err end
  if o.blackhole then return "--capacity needs the stored path: drop --blackhole" end
  if cfg.nodes then
    local given = false
    for _, a in ipairs(args) do if a:match("^%-%-nodes") then given = true end end
    if given and o.nodes ~= cfg.nodes then
      return "--capacity nodes=" .. cfg.nodes .. " disagrees with --nodes " .. o.nodes
    end
    o.nodes = cfg.nodes
  end
  return nil
end

local function default_pid_file(port)
  local tmp = os.getenv("TMPDIR") or "/tmp"
  return tmp .. "/espipe-serve-" .. port .. ".pid"
end

local function pid_alive(pid)
  return pid and shell_ok("kill -0 " .. pid .. " 2>/dev/null")
end

local function read_pid(file)
  local s = read_file(file)
  return s and tonumber(s:match("%d+"))
end

local function stop(o)
  local file = o["pid-file"] or default_pid_file(o.port)
  local pid = read_pid(file)
  if not pid then
    io.stderr:write("espipe serve: no pid in ", file, " (is a server running?)\n")
    return 1
  end
  if pid_alive(pid) then
    shell_ok("kill -TERM " .. pid)
    local deadline = os.time() + 15
    while pid_alive(pid) and os.time() <= deadline do shell_ok("sleep 0.05") end
    if pid_alive(pid) then
      io.stderr:write("espipe serve: nginx ", pid, " did not stop\n")
      return 1
    end
  end
  local temp_prefix = read_file(file .. ".prefix")
  if temp_prefix and temp_prefix:match("^/.+/espipe%-serve%.[%w]+$") then
    shell_ok("rm -rf " .. q(temp_prefix))
  end
  os.remove(file .. ".prefix")
  os.remove(file)
  io.stdout:write("espipe serve: stopped ", pid, "\n")
  return 0
end

local function banner(o)
  local lines = {}
  local last = o.port + o.nodes - 1
  lines[#lines + 1] = string.format("espipe serve: Elasticsearch 8 dev server listening on %s://%s:%d/%s",
    o.tls and "https" or "http", o.host, o.port,
    o.nodes > 1 and string.format(" (%d nodes, ports %d-%d)", o.nodes, o.port, last) or "")
  if o.blackhole then
    lines[#lines + 1] = "  blackhole: bulk items are acknowledged but not stored"
  elseif o.data then
    lines[#lines + 1] = "  data is persisted in " .. o.data
  else
    lines[#lines + 1] = "  data is kept in memory only; use --data DIR to persist"
  end
  if o.chaos then lines[#lines + 1] = "  chaos: " .. o.chaos .. " (seed " .. o.seed .. ")" end
  if o.auth then lines[#lines + 1] = "  auth: basic user " .. o.auth:match("^[^:]+") .. ", or an API key" end
  if o.tls_files then lines[#lines + 1] = "  TLS: CA certificate " .. o.tls_files.ca end
  if o.capacity then lines[#lines + 1] = "  capacity model: " .. o.capacity end
  if o.flavor then lines[#lines + 1] = "  answering as: " .. o.flavor end
  return table.concat(lines, "\n")
end

local function wait_answering(o, pid, seconds)
  local url = string.format("%s://%s:%d/", o.tls and "https" or "http",
    o.host == "0.0.0.0" and "127.0.0.1" or o.host, o.port)
  local cacert = o.tls_files and (" --cacert " .. q(o.tls_files.ca)) or ""
  local have_curl = shell_ok("command -v curl >/dev/null 2>&1")
  local deadline = os.time() + seconds
  while os.time() <= deadline do
    if not pid_alive(pid) then return false end
    if not have_curl then return true end -- the master bound its sockets before writing the pid
    if shell_ok("curl -s -o /dev/null --max-time 1" .. cacert .. " " .. q(url)) then return true end
    shell_ok("sleep 0.05")
  end
  return false
end

function M.run(args)
  local o, err = M.parse_args(args)
  if not o then
    io.stderr:write("espipe serve: ", err, "\n", M.usage, "\n")
    return 2
  end
  if o.stop then return stop(o) end

  local missing = {}
  if not file_exists(nginx_conf.NGINX) then missing[#missing + 1] = nginx_conf.NGINX end
  for _, m in ipairs(nginx_conf.MODULES) do
    if not file_exists(m) then missing[#missing + 1] = m end
  end
  if #missing > 0 then
    io.stderr:write("espipe serve: missing ", table.concat(missing, ", "),
      "\n  install the Debian packages: apt-get install nginx libnginx-mod-http-lua lua-resty-core\n")
    return 1
  end
  local lua_root, rerr = nginx_conf.lua_root()
  if not lua_root then
    io.stderr:write("espipe serve: ", rerr, "\n")
    return 1
  end

  local pid_file = o["pid-file"] or default_pid_file(o.port)
  if pid_alive(read_pid(pid_file)) then
    io.stderr:write("espipe serve: already running (pid file ", pid_file,
      "); stop it with espipe serve --stop --pid-file ", pid_file, "\n")
    return 1
  end
  if pid_file:sub(1, 1) ~= "/" then pid_file = (os.getenv("PWD") or ".") .. "/" .. pid_file end

  local prefix, temp
  if o.data then
    if o.data:sub(1, 1) ~= "/" then o.data = (os.getenv("PWD") or ".") .. "/" .. o.data end
    prefix = o.data .. "/.nginx"
    if not shell_ok("mkdir -p " .. q(prefix)) then
      io.stderr:write("espipe serve: cannot create ", prefix, "\n")
      return 1
    end
  else
    local tmp = os.getenv("TMPDIR") or "/tmp"
    prefix = (shell_read("mktemp -d " .. q(tmp .. "/espipe-serve.XXXXXX")) or ""):match("^(%S+)")
    if not prefix then
      io.stderr:write("espipe serve: cannot create a temporary directory in ", tmp, "\n")
      return 1
    end
    temp = true
  end

  if o.tls then
    local files, terr = require("espipe.server.tls").ensure((o.data or prefix) .. "/tls", o.host,
      { q = q, exists = file_exists, run = shell_ok })
    if not files then
      io.stderr:write("espipe serve: ", terr, "\n")
      if temp then shell_ok("rm -rf " .. q(prefix)) end
      return 1
    end
    o.tls_files = files
  end

  local is_root = (shell_read("id -u") or ""):match("^0%s*$") ~= nil
  local conf = nginx_conf.build {
    prefix = prefix, pid_file = pid_file, host = o.host, port = o.port, nodes = o.nodes,
    workers = o.workers, lua_root = lua_root, max_content_length = o.max_content_length,
    run_as_root = is_root, tls = o.tls_files,
    app = {
      host = o.host, port = o.port, nodes = o.nodes, data = o.data, chaos = o.chaos,
      seed = o.seed, blackhole = o.blackhole or false, capacity = o.capacity, flavor = o.flavor,
      max_content_length = o.max_content_length, auth = o.auth,
    },
  }
  local wrote, werr = write_file(prefix .. "/nginx.conf", conf)
  if not wrote then
    io.stderr:write("espipe serve: ", werr, "\n")
    if temp then shell_ok("rm -rf " .. q(prefix)) end
    return 1
  end
  os.remove(pid_file)

  local cmd = table.concat({ nginx_conf.NGINX, "-p", q(prefix), "-c", q(prefix .. "/nginx.conf"),
    "-e", q(prefix .. "/error.log") }, " ")
  local cleanup = temp and ("rm -rf " .. q(prefix)) or ":"

  if o.daemon then
    if not shell_ok(cmd) then
      io.stderr:write("espipe serve: nginx did not start (see above, and ", prefix, "/error.log)\n")
      if temp then shell_ok(cleanup) end
      return 1
    end
    local pid = read_pid(pid_file)
    if not wait_answering(o, pid, 15) then
      io.stderr:write("espipe serve: the server does not answer; see ", prefix, "/error.log\n")
      if pid_alive(pid) then shell_ok("kill -TERM " .. pid) end
      return 1
    end
    if temp then
      -- only a second way to remove the prefix (the watcher below is the first): warn, go on
      local noted, nerr = write_file(pid_file .. ".prefix", prefix)
      if not noted then io.stderr:write("espipe serve: ", nerr, "\n") end
      -- however nginx ends (--stop, kill, crash), its temporary prefix goes with it
      shell_ok("(while kill -0 " .. pid .. " 2>/dev/null; do sleep 1; done; rm -rf " .. q(prefix)
        .. ") </dev/null >/dev/null 2>&1 &")
    end
    io.stdout:write(banner(o), "\n  pid ", pid, " (", pid_file, "); stop with: espipe serve --stop --pid-file ",
      pid_file, "\n")
    return 0
  end

  -- Foreground: a small shell keeps nginx as its child, forwards Ctrl-C /
  -- SIGTERM, stops nginx if this process dies (a SIGTERM to espipe itself
  -- ends the Lua process, which cannot catch it), and removes the prefix.
  local script = table.concat({
    cmd .. " -g 'daemon off;' &",
    "pid=$!",
    "parent=$PPID",
    "trap 'kill -TERM $pid 2>/dev/null' INT TERM HUP",
    "while [ ! -s " .. q(pid_file) .. " ] && kill -0 $pid 2>/dev/null; do sleep 0.05; done",
    "if kill -0 $pid 2>/dev/null; then printf '%s\\n' " .. q(banner(o) .. "\n  Ctrl-C stops it") .. "; fi",
    "while kill -0 $pid 2>/dev/null; do",
    "  kill -0 $parent 2>/dev/null || kill -TERM $pid 2>/dev/null",
    "  sleep 0.2",
    "done",
    "wait $pid; status=$?",
    -- only our own pid file: a new server may already have written its own
    "[ \"$(cat " .. q(pid_file) .. " 2>/dev/null)\" = \"$pid\" ] && rm -f " .. q(pid_file),
    cleanup,
    "exit $status",
  }, "\n")
  local ok = shell_ok(script)
  return ok and 0 or 1
end

return M
