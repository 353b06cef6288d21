-- Shard pre-sort (large-scale indexing, seed 003): order a batch by the
-- destination shard so each bulk request touches few shards, and start each
-- worker's shard order at a different offset so workers do not march through
-- shard 0, 1, 2 ... in lockstep.
--
--   local p = presort.new{ shards = N, routing_shards = M, func = "legacy"|"modulo",
--                          partition_size = P }
--   p:order(items, worker) -> items reordered (stable within a shard), each
--       given .shard; items[i].id / items[i].routing (nil id: left at the
--       end, unsorted, .shard nil)
--   p:sort_buffer(buf [, worker [, tokens]]) -> tokens moved along: an espipe.bulk
--       buffer reordered in place by shard in C (b:sort_by_shard: stable within
--       a shard, shards from the worker's offset among those present, items
--       without _id/routing last); worker nil: the next of the sorter's own
--       turns, so successive batches start on successive shards; tokens = a
--       list beside the buffer's positions, returned in the new order
--   presort.params_from_settings(settings, index) -> params | nil, why
local routing = require "espipe.routing"

local M = {}
local Presort = {}
Presort.__index = Presort

-- level: where a wrong argument is reported (2: the caller of new)
function M.new(params, level)
  if type(params) ~= "table" or type(params.shards) ~= "number" or params.shards < 1 then
    error("presort.new: params.shards must be a positive number", level or 2)
  end
  local p = {
    shards = params.shards,
    routing_shards = params.routing_shards,
    func = params.func or "legacy",
    partition_size = params.partition_size,
    turn = 0,
  }
  if p.func == "legacy" and not p.routing_shards then
    p.routing_shards = routing.default_routing_shards(p.shards)
  end
  return setmetatable(p, Presort)
end

function Presort:shard_of(id, rvalue)
  return routing.shard { id = id, routing = rvalue, shards = self.shards,
    routing_shards = self.routing_shards, partition_size = self.partition_size, func = self.func }
end

-- worker: any integer; worker w visits shards w, w+1, ... (mod shards) first.
function Presort:order(items, worker)
  local n = self.shards
  local rot = (worker or 0) % n
  local buckets, unrouted = {}, {}
  for s = 0, n - 1 do buckets[s] = {} end
  -- the common case (ids, no routing) hashes the whole batch in one C call
  local ids, at = {}, {}
  for i, it in ipairs(items) do
    if it.id ~= nil and it.routing == nil then ids[#ids + 1], at[#at + 1] = it.id, i end
  end
  local batch = #ids > 0 and routing.shards_of(ids, self) or {}
  local shard_at = {}
  for k, i in ipairs(at) do shard_at[i] = batch[k] end
  for i, it in ipairs(items) do
    local s = shard_at[i]
    if s == nil and it.routing ~= nil then s = self:shard_of(it.id or it.routing, it.routing) end
    it.shard = s
    if s == nil then
      unrouted[#unrouted + 1] = it
    else
      local b = buckets[s]
      b[#b + 1] = it
    end
  end
  local out = {}
  for k = 0, n - 1 do
    for _, it in ipairs(buckets[(rot + k) % n]) do out[#out + 1] = it end
  end
  for _, it in ipairs(unrouted) do out[#out + 1] = it end
  return out
end

function Presort:sort_buffer(buf, worker, tokens)
  if worker == nil then
    worker = self.turn
    self.turn = self.turn + 1
  end
  local _, order = buf:sort_by_shard(self, worker, tokens ~= nil)
  if not tokens then return nil end
  local moved = {}
  for k, i in ipairs(order) do moved[k] = tokens[i] end
  return moved
end

-- From GET /{index}/_settings (decoded). Elasticsearch drops
-- index.number_of_routing_shards after creation, so the default formula is
-- used unless the setting (or the dev server's routing_num_shards) is present.
function M.params_from_settings(resp, index)
  local entry = resp and (resp[index] or select(2, next(resp)))
  local s = entry and entry.settings and entry.settings.index
  if not s then return nil, "no index settings for " .. tostring(index) end
  local shards = tonumber(s.number_of_shards)
  if not shards then return nil, "index " .. tostring(index) .. " has no number_of_shards" end
  local created = tonumber(s.version and s.version.created)
  local params = {
    shards = shards,
    routing_shards = tonumber(s.number_of_routing_shards or s.routing_num_shards),
    partition_size = tonumber(s.routing_partition_size),
  }
  if params.partition_size == 1 then params.partition_size = nil end
  -- indices created by 9.x with index version >= 9064000 route by modulo
  if created and created >= 9064000 then params.func = "modulo" else params.func = "legacy" end
  if s.routing_path then return nil, "index " .. tostring(index) .. " routes by routing_path (time series)" end
  return params
end

return M
