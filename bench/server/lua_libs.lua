-- Throughput of the dev server's pure-Lua JSON codec and routing hash (not a
-- test: busted only loads *_spec.lua). From the repo root:
--   luajit bench/server/lua_libs.lua      (the server's Lua)
package.path = "lua/?.lua;" .. package.path
local routing = require("espipe.server.routing")
local json = require("espipe.server.json")

local function rate(label, n, fn, unit)
  local t0 = os.clock()
  local bytes = 0
  for i = 1, n do bytes = bytes + (fn(i) or 0) end
  local dt = os.clock() - t0
  local line = string.format("%-44s %10.0f %s/s", label, n / dt, unit)
  if bytes > 0 then line = line .. string.format("  (%.1f MB/s)", bytes / 1e6 / dt) end
  print(line)
end

rate("routing.hash of short ASCII ids", 200000, function(i) routing.hash("doc-" .. i) end, "ids")
rate("routing.hash of non-ASCII ids", 100000, function(i) routing.hash("Κόσμε-" .. i) end, "ids")

local hits = {}
for i = 1, 100 do
  hits[i] = { _index = "logs", _id = tostring(i), _score = json.null, sort = json.array({ i }),
    _source = json.raw('{"msg":"hello world","n":' .. i .. ',"tags":["a","b"]}') }
end
local page = { took = 1, timed_out = false, _shards = { total = 1, successful = 1, skipped = 0, failed = 0 },
  hits = { total = { value = 100, relation = "eq" }, max_score = json.null, hits = hits } }
rate("json.encode of a 100-hit search page", 2000, function() return #json.encode(page) end, "pages")

local doc = '{"msg":"hello world \\"quoted\\" text","n":12345,"f":1.5,"tags":["a","b","c"],'
  .. '"o":{"x":1,"y":[1,2,3]}}'
rate("json.decode of a small doc", 100000, function() json.decode(doc) end, "docs")
rate("json.decode_marked (pure Lua) of a small doc", 100000, function() json.decode_marked(doc) end, "docs")
local decoded = json.decode(doc)
rate("json.encode of a small doc", 100000, function() json.encode(decoded) end, "docs")
