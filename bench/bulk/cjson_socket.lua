-- The plain pure-Lua peer: lua-cjson encodes, LuaSocket sends one _bulk
-- request at a time over a keep-alive HTTP/1.1 connection (what a Lua user
-- without espipe writes). Bench-only: needs Debian's lua-socket.
--   lua5.4 bench/bulk/cjson_socket.lua URL N
-- Prints: mode docs elapsed_s docs_per_s
local socket = require "socket"
local cjson = require "cjson"
local gen = dofile("bench/bulk/docs.lua")

local url, n = arg[1], tonumber(arg[2] or "1000000")
local host, port = url:match("^http://([^:/]+):(%d+)")
assert(host, "URL must be http://host:port")
local PER_REQUEST = 1000

local conn = assert(socket.connect(host, tonumber(port)))
conn:setoption("tcp-nodelay", true)

local function read_body(headers)
  local len = headers["content-length"]
  if len then return (assert(conn:receive(tonumber(len)))) end
  assert(headers["transfer-encoding"] == "chunked", "response without length")
  local parts = {}
  while true do
    local size = tonumber(assert(conn:receive("*l")):match("^%x+"), 16)
    if size == 0 then
      assert(conn:receive("*l"))   -- the empty line after the last chunk
      return table.concat(parts)
    end
    parts[#parts + 1] = assert(conn:receive(size))
    assert(conn:receive("*l"))
  end
end

local function post(body)
  assert(conn:send("POST /bench/_bulk HTTP/1.1\r\nHost: " .. host .. "\r\n"
    .. "Content-Type: application/x-ndjson\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body))
  local status = tonumber(assert(conn:receive("*l")):match("^HTTP/1%.1 (%d+)"))
  local headers = {}
  while true do
    local line = assert(conn:receive("*l"))
    if line == "" then break end
    local k, v = line:match("^([^:]+):%s*(.-)%s*$")
    headers[k:lower()] = v
  end
  local res = cjson.decode(read_body(headers))
  assert(status == 200 and res.errors == false, "bulk request failed")
end

local t0 = socket.gettime()
local lines, k = {}, 0
for i = 1, n do
  lines[k + 1] = cjson.encode{ index = { _id = tostring(i) } }
  lines[k + 2] = cjson.encode(gen.doc(i))
  k = k + 2
  if k == 2 * PER_REQUEST then
    post(table.concat(lines, "\n", 1, k) .. "\n")
    k = 0
  end
end
if k > 0 then post(table.concat(lines, "\n", 1, k) .. "\n") end
conn:close()
local dt = socket.gettime() - t0
io.write(string.format("cjson_socket %d %.2f %.0f\n", n, dt, n / dt))
