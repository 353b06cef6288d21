-- The _bulk handler alone, without nginx or HTTP: parses and applies one
-- pre-built body (storing, then --blackhole) several times in LuaJIT, with a
-- minimal stand-in for the ngx API, and drains the response the way app.lua
-- hands it to ngx.print. Separates the server's Lua cost from the transfer
-- cost that bench/server/run.sh includes.
--   luajit bench/server/handler.lua BODY_FILE [rounds=5 [storing|blackhole]]
-- INDEX=name in the environment: the index of the URL (POST /name/_bulk),
-- for bodies whose actions name only _id (bench/bulk/make_ndjson.lua's).
-- rounds=0 only loads the body and the modules (the baseline that
-- bench/server/instructions.sh subtracts).
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
local clock = os.clock
_G.ngx = { now = clock, update_time = function() end, sleep = function() end, log = print, ERR = 1 }

local file, rounds, only = arg[1], tonumber(arg[2]) or 5, arg[3]
assert(file and (only == nil or only == "storing" or only == "blackhole"),
  "usage: luajit bench/server/handler.lua BODY_FILE [rounds [storing|blackhole]]")
local f = assert(io.open(file, "rb"))
local body = f:read("*a")
f:close()
local docs = select(2, body:gsub("\n", "\n")) / 2

local bulk = require("espipe.server.api_bulk")

-- the body as app.lua reads it from the request socket: 64 KB pieces
local pieces = {}
for at = 1, #body, 65536 do pieces[#pieces + 1] = body:sub(at, at + 65535) end

-- what app.lua's send does with a bulk response, minus the copy into nginx
-- (a pieces table: what ngx.print did with responses before string.buffer)
local function drain(resp)
  local n, buf = #resp[1], resp[2]
  if type(buf) == "table" then return n + #table.concat(buf) end
  while #buf > 0 do n = n + #buf:get(65536) end
  return n
end

for _, mode in ipairs({ "storing", "blackhole" }) do
  if only == nil or only == mode then
    local opts = { nodes = 1, port = 9200, blackhole = mode == "blackhole" }
    require("espipe.server.cluster").configure(opts)
    require("espipe.server.stats").configure(opts)
    local best = math.huge
    for _ = 1, rounds do
      local t = clock()
      local status, resp = bulk.bulk({ body = pieces, params = { index = os.getenv("INDEX") }, args = {}, opts = opts, node = 0 })
      assert(status == 200 and drain(resp) > 0)
      best = math.min(best, clock() - t)
    end
    if rounds > 0 then
      print(string.format("%-9s %d docs per body, best of %d: %.1f ms = %.0f docs/s",
        mode, docs, rounds, best * 1000, docs / best))
    end
  end
end
