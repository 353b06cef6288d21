-- The _bulk handler alone, without nginx or HTTP: parses and applies one
-- pre-built body (storing, then --blackhole) several times in LuaJIT, with a
-- minimal stand-in for the ngx API. Separates the server's Lua cost from the
-- transfer cost that bench/server/run.sh includes.
--   luajit bench/server/handler.lua BODY_FILE [rounds=5]
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
local clock = os.clock
_G.ngx = { now = clock, update_time = function() end, sleep = function() end, log = print, ERR = 1 }

local file, rounds = arg[1], tonumber(arg[2]) or 5
assert(file, "usage: luajit bench/server/handler.lua BODY_FILE [rounds]")
local f = assert(io.open(file, "rb"))
local body = f:read("*a")
f:close()
local docs = select(2, body:gsub("\n", "\n")) / 2

local bulk = require("espipe.server.api_bulk")
for _, blackhole in ipairs({ false, true }) do
  local opts = { nodes = 1, port = 9200, blackhole = blackhole }
  require("espipe.server.cluster").configure(opts)
  require("espipe.server.stats").configure(opts)
  local best = math.huge
  for _ = 1, rounds do
    local t = clock()
    local status = bulk.bulk({ body = body, params = {}, args = {}, opts = opts, node = 0 })
    assert(status == 200)
    best = math.min(best, clock() - t)
  end
  print(string.format("%-9s %d docs per body, best of %d: %.1f ms = %.0f docs/s",
    blackhole and "blackhole" or "storing", docs, rounds, best * 1000, docs / best))
end
