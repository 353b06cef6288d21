-- The example of examples/openresty run by the OpenResty specs: its nginx
-- configuration, starting it, and reading its shipper's counters.
--
-- Started as root, nginx runs its workers as "nobody", who cannot read a
-- checkout inside a private (0700) directory: the workers run as the
-- invoking user instead, as `espipe serve` does.
local http = require "support.http"
local nginx = require "support.nginx"
local cjson = require "cjson"

local M = {}

M.root = os.getenv("PWD") or "."

-- Shell helpers of the OpenResty specs.
function M.q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function output(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  return out
end

-- true when cmd exits 0
function M.sh(cmd)
  local ok, _, code = os.execute(cmd)
  if type(ok) == "number" then return ok == 0 end
  return ok == true and code == 0
end

-- a fresh private (0700) temp directory
function M.mktemp()
  return (output("mktemp -d ${TMPDIR:-/tmp}/espipe-openresty.XXXXXX"):gsub("%s+$", ""))
end

-- the file's contents, "" when there is none
function M.read(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

-- "user root;" when started by root; nothing otherwise (nginx then cannot
-- switch users and its workers already run as the invoking user).
function M.user_line()
  return output("id -u"):match("^%s*0%s*$") and "user root;" or ""
end

-- examples/openresty/nginx.conf for a checkout at root, listening on port,
-- with the workers' user set; edit(conf) may change it further.
function M.conf(root, port, edit)
  local f = assert(io.open(root .. "/examples/openresty/nginx.conf"))
  local conf = f:read("*a")
  f:close()
  local replaced
  conf, replaced = conf:gsub("listen 127%.0%.0%.1:8080;", "listen 127.0.0.1:" .. port .. ";")
  assert(replaced == 1, "example nginx.conf: listen line not found")
  conf, replaced = conf:gsub("\nworker_processes 1;\n", "\nworker_processes 1;\n" .. M.user_line() .. "\n")
  assert(replaced == 1, "example nginx.conf: worker_processes line not found")
  conf = conf:gsub("%$prefix/lua/", root .. "/examples/openresty/lua/")
  conf = conf:gsub("%$prefix/%.%./%.%./", root .. "/")
  return edit and edit(conf) or conf
end

-- start(es_url, { root =, edit = }) -> the nginx app (support.nginx)
function M.start(es_url, o)
  o = o or {}
  return nginx.start{
    conf = function(port) return M.conf(o.root or M.root, port, o.edit) end,
    env = { ES_URL = es_url },
  }
end

function M.stats(app)
  local res = http.request{ url = app.url .. "/_shipper/stats" }
  assert(res.status == 200, "stats: " .. tostring(res.status) .. " " .. tostring(res.body)
    .. "\n" .. app.error_log())
  return cjson.decode(res.body)
end

-- Poll until every pushed event is shipped, failed or dropped.
function M.settled(app, n, seconds)
  local s
  nginx.wait_for(function()
    s = M.stats(app)
    return s.shipped + s.failed + s.dropped >= n and s.queued == 0 and not s.draining
  end, seconds)
  return s
end

function M.count(es, index)
  http.request{ method = "POST", url = es.url .. "/" .. index .. "/_refresh" }
  local res = http.request{ url = es.url .. "/" .. index .. "/_count" }
  if res.status == 404 then return 0 end -- (not created yet)
  assert(res.status == 200, "count: " .. tostring(res.status) .. " " .. tostring(res.body))
  return cjson.decode(res.body).count
end

-- Specs may run against a real cluster (ES_URL): start from no index.
function M.reset(es, index)
  local res = http.request{ method = "DELETE", url = es.url .. "/" .. index }
  assert(res.status == 200 or res.status == 404, "delete " .. index .. ": " .. tostring(res.status))
end

-- n requests /page/1?q=1 ... /page/n?q=n, from first (default 1)
function M.hit(app, n, first)
  first = first or 1
  for i = first, first + n - 1 do
    local res = http.request{ url = app.url .. "/page/" .. i .. "?q=" .. i }
    assert(res.status == 200, "request " .. i .. ": " .. tostring(res.status))
  end
end

return M
