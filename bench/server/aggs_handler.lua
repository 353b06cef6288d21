-- Aggregations in the search handler alone (no nginx, no HTTP): loads N
-- log-like documents into a 2-shard index through the _bulk handler, then
-- runs size:0 searches with one aggregation each through api_search in
-- LuaJIT, with the same stand-in for the ngx API as scan_handler.lua.
--   luajit bench/server/aggs_handler.lua [N=50000]
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
_G.ngx = { now = function() return 1000 end, update_time = function() end, sleep = function() end, log = print,
           ERR = 1, encode_base64 = function(s) return s end,
           decode_base64 = function(s) return (s:gsub("=+$", "")) end }

local json = require("espipe.server.json")
local cluster = require("espipe.server.cluster")
local cluster_indices = require("espipe.server.cluster_indices")
local cluster_shards = require("espipe.server.cluster_shards")
local bulk = require("espipe.server.api_bulk")
local search = require("espipe.server.api_search")

local n = tonumber(arg[1] or 50000)
local opts = { nodes = 1, port = 9200 }
cluster.configure(opts)
require("espipe.server.stats").configure(opts)
local idx = assert(cluster_indices.create_index("a", { settings = { number_of_shards = 2, refresh_interval = "-1" } }))
local parts = {}
for i = 1, n do
  parts[#parts + 1] = string.format('{"index":{"_index":"a","_id":"b-%d"}}\n', i)
  parts[#parts + 1] = string.format('{"@timestamp":"2024-05-%02dT12:%02d:00Z","host":"web-%03d","status":%d,'
    .. '"bytes":%d}\n', i % 28 + 1, i % 60, i % 500, 200 + i % 5, 1000 + i * 7 % 90000)
end
assert(bulk.bulk({ body = table.concat(parts), params = {}, args = {}, opts = opts, node = 0 }) == 200)
cluster_shards.refresh(idx)

local function run(aggs)
  local body = json.encode({ size = 0, aggs = aggs })
  local t = os.clock()
  local status = search.search({ method = "POST", path = "/a/_search", params = { index = "a" }, args = {},
                                 body = body, opts = opts, node = 0 })
  assert(status == 200, status)
  return os.clock() - t
end

run({ warm = { max = { field = "bytes" } } }) -- settles the dynamic mapping
local cases = {
  { "terms (500 keys)", { h = { terms = { field = "host.keyword" } } } },
  { "terms + sum", { s = { terms = { field = "status" }, aggs = { b = { sum = { field = "bytes" } } } } } },
  { "date_histogram day", { d = { date_histogram = { field = "@timestamp", calendar_interval = "day" } } } },
  { "stats", { s = { stats = { field = "bytes" } } } },
  { "composite host",
    { c = { composite = { size = 1000, sources = { { h = { terms = { field = "host.keyword" } } } } } } } },
}
for _, c in ipairs(cases) do
  local secs = run(c[2])
  print(string.format("%-20s %d docs in %.3f s CPU = %d docs/s", c[1], n, secs, n / secs))
end
