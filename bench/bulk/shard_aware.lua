-- Shard-aware bulk against `espipe serve --nodes 3` (an index of 6 shards):
--   lua5.4 bench/bulk/shard_aware.lua URL N plain|presorted|windowed|direct
-- plain: the bulk indexer as it is (requests round-robin over the nodes);
-- presorted: each batch ordered by destination shard in C before it goes
-- (the indexer's presort option, espipe.bulk sort_by_shard); windowed: windows of 6 batches ordered by shard
-- and cut at each shard boundary (a request touches about one shard, what
-- `espipe reindex --presort` does); direct: shard_aware = true (each node gets the
-- documents of its own primaries). Reads the server's per-node "forwarded"
-- counters (documents a node received for shards it does not hold).
-- Prints: mode docs elapsed_s docs_per_s forwarded forwarded_per_doc shards_per_request
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/5.4/?.so;" .. package.cpath
local gen = dofile("bench/bulk/docs.lua")
local presort = require("espipe.pipeline.presort")

local url, n, mode = arg[1], tonumber(arg[2] or "200000"), arg[3] or "plain"
local client = require("espipe.client").new{ hosts = { url }, max_inflight = 8 }
local index = "bench_shards_" .. mode
client.indices:delete{ index = index, ignore_unavailable = true }
assert(client.indices:create{ index = index, body = { settings = { index = { number_of_shards = 6 } } } })
assert(client:json_request{ method = "POST", path = "/_espipe/stats/reset" })

local batch = 5000
local bi = client:bulk_indexer{ index = index, batch_docs = batch, batch_bytes = 5 * 1024 * 1024,
                                concurrency = 4, filter_path = false, shard_aware = mode == "direct" or nil,
                                presort = mode == "presorted" and { shards = 6 } or nil }
local t0 = client:now()
if mode == "windowed" then
  local sorter = presort.new{ shards = 6 }
  local window = 6 * batch
  local items, worker = {}, 0
  for i = 1, n do
    items[#items + 1] = { id = tostring(i), doc = gen.doc(i) }
    if #items == window or i == n then
      local last
      for _, it in ipairs(sorter:order(items, worker)) do
        if last ~= nil and it.shard ~= last then bi:ship() end
        bi:index(it.doc, { id = it.id })
        last = it.shard
      end
      bi:ship()
      items = {}
      worker = worker + 1
    end
  end
else
  for i = 1, n do bi:index(gen.doc(i), { id = tostring(i) }) end
end
local st = bi:close()
local dt = client:now() - t0
assert(st.ok == n and st.failed == 0, "not all acknowledged")
local stats = assert(client:json_request{ method = "GET", path = "/_espipe/stats" })
local fw = 0
for _, node in pairs(stats.nodes) do fw = fw + node.forwarded end
client.indices:delete{ index = index }
io.write(string.format("%s %d %.2f %.0f %d %.4f %.2f\n", mode, n, dt, n / dt, fw, fw / n,
  stats.bulk.shard_batches / math.max(1, stats.bulk.requests)))
