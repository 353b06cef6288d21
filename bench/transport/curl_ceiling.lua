-- The curl transport's ceiling: one pre-built ~8 MB NDJSON bulk body posted
-- again and again over 4 kept-alive connections to a local nginx that reads
-- and discards it and answers a small JSON. Prints MB/s, requests/s and
-- docs/s (docs per body x bodies per second), plain and gzip'd.
--   make && lua5.4 bench/transport/curl_ceiling.lua [requests=100] [inflight=4]
package.path = "./lua/?.lua;./lua/?/init.lua;./spec/?.lua;" .. package.path
package.cpath = "./build/5.4/?.so;" .. package.cpath

local curl = require "espipe.transport.curl"
local cm = require "espipe.curl_multi"
local echo = require "support.echo_server"

local REQUESTS = tonumber(arg[1]) or 100
local INFLIGHT = tonumber(arg[2]) or 4
local TARGET_BYTES = 8 * 1024 * 1024

local function build_body()
  local lines, bytes, docs = {}, 0, 0
  while bytes < TARGET_BYTES do
    docs = docs + 1
    local action = string.format('{"index":{"_index":"bench","_id":"%d"}}', docs)
    local source = string.format('{"n":%d,"user":"user%d","message":"request %d served in %d ms","tags":["a","b"],"score":%.3f}',
      docs, docs % 997, docs, docs % 311, docs / 7)
    lines[#lines + 1] = action
    lines[#lines + 1] = source
    bytes = bytes + #action + #source + 2
  end
  return table.concat(lines, "\n") .. "\n", docs
end

local function run(srv, body, compress)
  local t = curl.new { hosts = { srv.url }, max_inflight = INFLIGHT, compress = compress, timeout = 120 }
  local req = { method = "POST", path = "/_bulk", query = "discard=1", body = body,
                headers = { ["content-type"] = "application/x-ndjson" } }
  -- One warm-up round opens the connections.
  for _ = 1, INFLIGHT do assert(t:submit(req)) end
  while t:inflight() > 0 do t:poll(1) end
  local sent, done, failed = 0, 0, 0
  local t0 = cm.now()
  while done < REQUESTS do
    while sent < REQUESTS and t:inflight() < INFLIGHT do
      assert(t:submit(req))
      sent = sent + 1
    end
    for _, c in ipairs(t:poll(1)) do
      done = done + 1
      if c.err or c.status ~= 200 then failed = failed + 1 end
    end
  end
  local elapsed = cm.now() - t0
  t:close()
  return elapsed, failed
end

local srv = echo.start {}
local ok, err = pcall(function()
  local body, docs = build_body()
  print(string.format("body: %.1f MB, %d docs; %d requests, %d in flight; %s",
    #body / 1048576, docs, REQUESTS, INFLIGHT, cm.version():match("^%S+")))
  for _, compress in ipairs { false, true } do
    local elapsed, failed = run(srv, body, compress)
    print(string.format("%-9s %7.0f MB/s  %6.1f req/s  %9.0f docs/s  (%.2f s, %d failed)",
      compress and "gzip(1)" or "plain", REQUESTS * #body / 1048576 / elapsed,
      REQUESTS / elapsed, REQUESTS * docs / elapsed, elapsed, failed))
  end
end)
srv:stop()
if not ok then error(err, 0) end
