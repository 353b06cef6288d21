-- Exercises every path of espipe.curl_multi once, for valgrind (not a spec):
--   make && valgrind --leak-check=full --show-leak-kinds=definite,indirect \
--     --errors-for-leak-kinds=definite,indirect --error-exitcode=9 \
--     lua5.4 spec/transport/leakcheck.lua
package.path = "./lua/?.lua;./lua/?/init.lua;./spec/?.lua;" .. package.path
package.cpath = "./build/5.4/?.so;" .. package.cpath

local curl = require "espipe.transport.curl"
local core = require "espipe.core"
local echo = require "support.echo_server"

local srv = echo.start { tls = true }
local ok, err = pcall(function()
  local function drain(t)
    local n = 0
    while t:inflight() > 0 do n = n + #t:poll(0.5) end
    return n
  end
  local t = curl.new { hosts = { srv.url, "http://127.0.0.1:1" }, compress = true,
    auth = { username = "u", password = "p" }, max_inflight = 4, max_response_bytes = 50000 }
  local b = core.bulk_new()
  for i = 1, 100 do b:add("index", { _index = "x", _id = tostring(i) }, { n = i }) end
  for round = 1, 3 do
    t:submit { method = "POST", path = "/_bulk", query = "gunzip=1", body = b }
    t:submit { method = "POST", path = "/s", body = string.rep("a", 10000), host = 1 }
    t:submit { path = "/big", query = "bytes=100000", host = 1 }
    t:submit { path = "/slow", query = "sleep=2", timeout = 0.1, host = round % 2 + 1 }
    drain(t)
  end
  assert(t:request { path = "/gzip/x", host = 1 })
  assert(not pcall(t.submit, t, { path = "/", body = 1 }))
  for _ = 1, 3 do t:submit { path = "/slow", query = "sleep=1", body = b, host = 1 } end
  t:close()
  t:close()

  local tls = curl.new { hosts = { srv.tls_url },
    tls = { ca_file = srv.ca_file, cert = srv.client_cert, key = srv.client_key } }
  assert(tls:request { path = "/tls" })
  local bad = curl.new { hosts = { srv.tls_url } }
  assert(not bad:request { path = "/tls" })
  bad:close()
  -- Left for the garbage collector, requests still in flight.
  for _ = 1, 2 do tls:submit { path = "/slow", query = "sleep=1", body = b } end
  tls = nil -- luacheck: ignore 311 (dropping the only reference is the point)
  collectgarbage()
  collectgarbage()
  local cm = require "espipe.curl_multi"
  assert(not pcall(cm.new, { max_inflight = "x" }))
  assert(not pcall(cm.new, { ca_file = 3 }))
  local m = cm.new { max_inflight = 1, username = "u", password = "p", auth_header = "Authorization: x" }
  assert(m:add(1, srv.url .. "/m", "GET", { "X-A: 1" }, nil, 5, 0))
  assert(not m:add(2, srv.url .. "/m", "GET", {}, nil, 5, 0))
  assert(not pcall(m.add, m, 3, srv.url, "GET", { 1 }, nil, 5, 0))
  -- Left in flight for lua_close.
end)
srv:stop()
if not ok then error(err, 0) end
print("leakcheck done")
