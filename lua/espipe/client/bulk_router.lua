-- Shard-aware sending for the bulk indexer (opts.shard_aware), as a strategy
-- the indexer is given: each document goes into the batch of the node
-- holding its primary shard (espipe.client.shard_map finds the routing
-- function and the nodes), and that batch is sent to that node, so the
-- cluster forwards almost nothing. Documents that cannot be routed (no _id,
-- an index where detection switched it off) go into the usual batch, sent to
-- any node. A batch whose node fails (transport error, 5xx) is retried on
-- any node and the node map is refreshed; accounting stays the indexer's.
--
--   shard_aware = true | { rewrite = fn(addr, node_id, node) -> url|nil,
--                          restrict_to_hosts = bool, refresh = seconds,
--                          rotation = k }
-- Within a node's request the documents are grouped by shard, shards in
-- ascending order starting at the (k mod count)-th, so that workers given
-- different k do not all start on the same shard.
--   shard_map = an espipe.client.shard_map to share between indexers (optional)
--   on_log = fn(msg): where "shard-aware bulk is off for index ..." goes
--
-- The strategy: router:route(meta, index, routing) -> host, shard (host 0:
-- any node); router:placement(index) -> routing parameters, shard -> host
-- (for buf:distribute, which routes a batch's items in C);
-- router:order(buf, shard_at | parameters, want_order, routing) groups buf by shard in place;
-- router:before_send(now); router:on_node_failure(batch);
-- router:on_item_retry(failures).
--
-- Memory: one open batch per node (batch_bytes each) besides the indexer's
-- usual bound.
local shard_map = require("espipe.client.shard_map")

local type, pcall, ipairs, error, setmetatable = type, pcall, ipairs, error, setmetatable

local M = {}
local Router = {}
Router.__index = Router

-- bulk_router.new(client, indexer_opts, level) -> router
function M.new(client, opts, level)
  local sa = opts.shard_aware
  if sa ~= true and type(sa) ~= "table" then
    error("bulk_indexer: shard_aware must be true or a table { rewrite =, restrict_to_hosts =, refresh =, rotation = }", level)
  end
  local o = type(sa) == "table" and sa or {}
  if opts.on_log ~= nil and type(opts.on_log) ~= "function" then
    error("bulk_indexer: on_log must be a function", level)
  end
  local rotation = o.rotation or 0
  if type(rotation) ~= "number" or rotation < 0 or rotation % 1 ~= 0 then
    error("bulk_indexer: shard_aware.rotation must be an integer >= 0", level)
  end
  return setmetatable({
    map = opts.shard_map or shard_map.new(client, {
      rewrite = o.rewrite, restrict_to_hosts = o.restrict_to_hosts, refresh = o.refresh, log = opts.on_log,
    }),
    entries = {},   -- index name -> shard_map entry | false
    rotation = rotation,
  }, Router)
end

local function routable(v)
  local t = type(v)
  return t == "string" or t == "number"
end

-- The shard map's entry for index (false: send anywhere), looked up once.
local function entry_of(self, index)
  local e = self.entries[index]
  if e == nil then
    e = self.map:route(index)
    self.entries[index] = e
  end
  return e
end

-- The transport host of the node holding meta's primary shard and that
-- shard, or 0 (any node). index, routing: the indexer's defaults.
function Router:route(meta, index, rv)
  local id
  if meta ~= nil then
    if type(meta) ~= "table" then return 0 end
    index = meta.index or meta._index or index
    id = meta.id or meta._id
    rv = meta.routing or rv
  end
  if type(index) ~= "string" then return 0 end
  local e = entry_of(self, index)
  if not e then return 0 end
  if e.partition > 1 then
    -- the shard depends on both: without a routing value the cluster refuses or spreads
    if not routable(rv) or not routable(id) then return 0 end
  else
    rv = rv or id
    if not routable(rv) then return 0 end
  end
  local ok, shard = pcall(self.map.shard, self.map, e, rv, id)
  if not ok then return 0 end
  local host = e.hosts[shard]
  if not host then return 0 end
  return host, shard
end

-- A node's batch grouped by shard, in place (a counting sort in C: stable
-- within a shard, shards ascending from the rotation offset); at = the
-- shard of each position, or an index's routing parameters (placement) to
-- route each item by its action line (routing: the default for an action
-- without one); with want_order, order[k] = the former position of item k.
function Router:order(buf, at, want_order, routing)
  local _, order = buf:sort_by_shard(at, self.rotation, want_order, routing)
  return order
end

-- For batches routed in C (bulk distribute): the routing parameters of
-- index and its shard -> host table, or nil (send anywhere).
function Router:placement(index)
  local e = entry_of(self, index)
  if not e then return nil end
  local p = e.c_params
  if not p then
    p = { shards = e.shards, routing_shards = e.routing_shards, partition_size = e.partition, func = e.func }
    e.c_params = p
  end
  return p, e.hosts
end

-- Before a node's batch goes: reload the map when it is due or stale.
function Router:before_send(now)
  if self.map:due(now) then self.map:refresh() end
end

-- A node failed a whole request: its batch is retried on any node and the
-- map is reloaded before the next batch is sent.
function Router:on_node_failure(batch)
  batch.host = nil
  self.map:stale()
end

-- Items a node could not place (shard unavailable: it moved or is moving)
-- also ask for a reload.
function Router:on_item_retry(failures)
  for _, f in ipairs(failures) do
    if f.status == 503 or f.type == "unavailable_shards_exception" or f.type == "no_shard_available_action_exception" then
      return self.map:stale()
    end
  end
end

return M
