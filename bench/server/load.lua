-- Load generator for the dev server benchmark: posts pre-built _bulk bodies
-- over N kept-alive connections with espipe's curl transport (C, libcurl
-- multi) and prints one line: requests, seconds, failures.
--   lua5.4 bench/server/load.lua URL REQUESTS INFLIGHT BODY_FILE...
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/5.4/?.so;" .. package.cpath

local curl = require("espipe.transport.curl")
local cm = require("espipe.curl_multi")

local url, requests, inflight = arg[1], tonumber(arg[2]), tonumber(arg[3])
assert(url and requests and inflight and arg[4], "usage: load.lua URL REQUESTS INFLIGHT BODY_FILE...")
local bodies = {}
for i = 4, #arg do
  local f = assert(io.open(arg[i], "rb"))
  bodies[#bodies + 1] = f:read("a")
  f:close()
end

local t = curl.new { hosts = { url }, max_inflight = inflight, timeout = 300 }
local function request(i)
  return { method = "POST", path = "/_bulk", body = bodies[(i - 1) % #bodies + 1],
           headers = { ["content-type"] = "application/x-ndjson" } }
end
local sent, done, failed = 0, 0, 0
local t0 = cm.now()
while done < requests do
  while sent < requests and t:inflight() < inflight do
    sent = sent + 1
    assert(t:submit(request(sent)))
  end
  for _, c in ipairs(t:poll(1)) do
    done = done + 1
    if c.err or c.status ~= 200 then failed = failed + 1 end
  end
end
local elapsed = cm.now() - t0
t:close()
print(string.format("%d %.3f %d", requests, elapsed, failed))
