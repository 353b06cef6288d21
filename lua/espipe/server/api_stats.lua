-- GET /_stats and /{index}/_stats: per index and for all, the refreshed
-- document count, the store size (the bytes of the stored sources) and the
-- indexing totals since start, in ES's shape (primaries and total are the
-- same: replicas are not modelled).
local json = require("espipe.server.json")
local cluster_indices = require("espipe.server.cluster_indices")

local M = {}

local function index_stats(idx)
  local docs, bytes, indexed, deleted = 0, 0, 0, 0
  for i = 0, idx.nshards - 1 do
    local shard = idx.shards[i]
    docs = docs + shard.visible_count
    indexed = indexed + shard.index_total
    deleted = deleted + shard.delete_total
    for _, rec in pairs(shard.docs) do bytes = bytes + #rec.src end
  end
  return { docs = docs, bytes = bytes, indexed = indexed, deleted = deleted }
end

local function section(t)
  return {
    docs = { count = t.docs, deleted = 0 },
    store = { size_in_bytes = t.bytes, total_data_set_size_in_bytes = t.bytes, reserved_in_bytes = 0 },
    indexing = { index_total = t.indexed, index_time_in_millis = 0, index_current = 0, index_failed = 0,
                 delete_total = t.deleted, delete_time_in_millis = 0, delete_current = 0, noop_update_total = 0,
                 is_throttled = false, throttle_time_in_millis = 0 },
  }
end

function M.stats(req)
  local indices, s, e = cluster_indices.of_request(req)
  if not indices then return s, e end
  local all = { docs = 0, bytes = 0, indexed = 0, deleted = 0 }
  local per, shards = json.object(), 0
  for _, idx in ipairs(indices) do
    local t = index_stats(idx)
    for k, v in pairs(t) do all[k] = all[k] + v end
    shards = shards + idx.nshards
    per[idx.name] = { uuid = idx.uuid, health = idx.replicas > 0 and "yellow" or "green",
                      status = idx.closed and "close" or "open", primaries = section(t), total = section(t) }
  end
  return 200, { _shards = { total = shards, successful = shards, failed = 0 },
                _all = { primaries = section(all), total = section(all) }, indices = per }
end

return M
