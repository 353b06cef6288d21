-- A fault-injecting HTTP proxy for specs (spec/support/fault_proxy.py,
-- Debian's python3, stdlib only), between a client and the dev server.
--
-- Why: the dev server's --chaos fails requests inside the server, so it can
-- never lose a response after the server applied the request, stall a
-- connection or send half a body. Those are the faults that make a client
-- retry something already done (duplicates) or skip something it thinks it
-- has (losses); this proxy produces them at the network.
--
--   local fault_proxy = require("support.fault_proxy")
--   local p = fault_proxy.start{ upstream = server.url, seed = 1, rules = { ... }, max_seconds = 600 }
--   p.url, p.pid
--   p:set_rules{ ... }   replace the rules at run time (POST /__proxy/rules)
--   p:stats()            { requests =, forwarded =, resets =, reset_requests =, reset_responses =,
--                          truncations =, stalls =, delays =, statuses =, items_failed =,
--                          bulk_faulted =, rules = { { match =, action =, matched =, fired = }, ... } }
--                        (a counter absent from the answer is 0)
--   p:stop()             kill by pid, wait for the exit, remove the temp files
--
-- A rule: { match = "*" | "_bulk" | "POST /_search/scroll" | "GET",
--           action = ..., p = 0.02 | nth = 3 | every = k, times = N, ...options }
-- match is a plain substring of the path (no query), optionally after a
-- method and a space; a bare upper-case word is a method. Per request the
-- first rule that matches and fires applies: p (default 1) draws from the
-- seeded RNG, nth fires on the nth matching request, every on every kth;
-- times caps how often a rule fires. Actions:
--   reset_request   RST (SO_LINGER 0) once the request head is read: the
--                   upstream never sees the request
--   reset_response  forward, read the whole upstream response (the server
--                   HAS applied the request), send the client after_bytes of
--                   it (default: head + half the body), then RST
--   truncate        like reset_response, but a clean FIN after the partial body
--   stall           hold the request `seconds` (default: until the client
--                   gives up or the proxy stops), then close; never forwarded
--   delay           forward after `seconds` (default 1)
--   status          answer `status` (default 503; 429 too) itself with an
--                   Elasticsearch-shaped error body; never forwarded
--   bulk_items      _bulk only: a `fraction` (default 0.2, seeded) of the
--                   items is NOT forwarded; their items in the HTTP 200
--                   answer say `status` (default 429,
--                   es_rejected_execution_exception), the others are the
--                   server's, in the original order; the client's
--                   filter_path is applied to the merged answer; gzip
--                   request bodies are decoded
--   pass            forward (a rule that shields requests from later ones)
-- Loopback only (the upstream must be http://127.0.0.1:PORT); the proxy
-- exits after max_seconds (default 600) or when the spec process is gone.
local http = require("support.http")
local json = require("espipe.json")

local M = {}

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local SCRIPT = here .. "fault_proxy.py"
local PYTHON = io.open("/usr/bin/python3") and "/usr/bin/python3" or "python3"

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- a command's exit status and its output (stderr included)
local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
  local out = p:read("*a")
  p:close()
  return tonumber(out:match("rc=(%d+)%s*$")), (out:gsub("rc=%d+%s*$", ""))
end
M.sh, M.quote = sh, q -- (the chaos specs' helper uses them too)

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function my_pid()
  local stat = slurp("/proc/self/stat")
  return stat and tonumber(stat:match("^(%d+)"))
end

-- (a zombie counts as gone: the proxy is re-parented to PID 1, which may
-- reap it late)
local function alive(pid)
  local stat = slurp("/proc/" .. pid .. "/stat")
  return stat ~= nil and stat:match("^%d+ %b() (%a)") ~= "Z"
end

local function now()
  local _, out = sh("date +%s.%N")
  return tonumber(out) or os.time()
end

local function wait_for(what, seconds, cond)
  local deadline = now() + seconds
  while true do
    local v = cond()
    if v then return v end
    if now() > deadline then error("fault_proxy: timed out waiting for " .. what, 3) end
    sh("sleep 0.02")
  end
end

local function encode_rules(rules)
  return json.encode(json.array(rules or {}))
end

local Proxy = {}
Proxy.__index = Proxy

function M.start(o)
  if type(o) ~= "table" or type(o.upstream) ~= "string" then
    error("fault_proxy.start{ upstream = url, ... } needs upstream", 2)
  end
  for k in pairs(o) do
    if k ~= "upstream" and k ~= "seed" and k ~= "rules" and k ~= "max_seconds" then
      error("fault_proxy.start: unknown option '" .. tostring(k) .. "'", 2)
    end
  end
  local rc, tmp = sh("mktemp -d ${TMPDIR:-/tmp}/espipe-proxy.XXXXXX")
  assert(rc == 0, "mktemp failed: " .. tmp)
  tmp = tmp:match("(%S+)")
  local rules_file, port_file, log = tmp .. "/rules.json", tmp .. "/port", tmp .. "/log"
  local f = assert(io.open(rules_file, "wb"))
  f:write(encode_rules(o.rules))
  f:close()
  local args = { PYTHON, q(SCRIPT), "--upstream", q(o.upstream), "--seed", tostring(o.seed or 1),
                 "--rules-file", q(rules_file), "--port-file", q(port_file),
                 "--max-seconds", tostring(o.max_seconds or 600) }
  local watch = my_pid()
  if watch then args[#args + 1] = "--watch-pid " .. watch end
  local started, out = sh(table.concat(args, " ") .. " > " .. q(log) .. " 2>&1 & echo $!")
  local pid = started == 0 and tonumber(out:match("(%d+)%s*$"))
  if not pid then
    sh("rm -rf " .. q(tmp))
    error("fault_proxy: could not start: " .. out, 2)
  end
  local self = setmetatable({ pid = pid, tmp = tmp, log = log }, Proxy)
  local port = wait_for("the proxy's port", 15, function()
    local p = tonumber(slurp(port_file) or "")
    if not p and not alive(pid) then
      local why = slurp(log) or ""
      self:stop()
      error("fault_proxy exited at start: " .. why, 0)
    end
    return p
  end)
  self.port, self.url = port, "http://127.0.0.1:" .. port
  return self
end

local function control(self, method, path, body)
  local res = http.request{ method = method, url = self.url .. "/__proxy/" .. path, body = body }
  if res.status ~= 200 then
    error("fault_proxy " .. path .. ": HTTP " .. res.status .. " " .. tostring(res.body), 3)
  end
  return json.decode(res.body)
end

function Proxy:set_rules(rules)
  control(self, "POST", "rules", encode_rules(rules))
end

function Proxy:stats()
  return setmetatable(control(self, "GET", "stats"), { __index = function() return 0 end })
end

function Proxy:stop()
  if self.pid and alive(self.pid) then
    sh("kill -TERM " .. self.pid)
    wait_for("the proxy to exit", 10, function() return not alive(self.pid) end)
  end
  if self.tmp and self.tmp:match("espipe%-proxy%.") then sh("rm -rf " .. q(self.tmp)) end
  self.pid, self.tmp = nil, nil
end

return M
