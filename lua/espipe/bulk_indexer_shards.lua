-- Shard-aware sending for the bulk indexer (opts.shard_aware): each document
-- goes into the batch of the node holding its primary shard (espipe.shard_map
-- finds the routing function and the nodes), and that batch is sent to that
-- node, so the cluster forwards almost nothing. Documents that cannot be
-- routed (no _id, an index where detection switched it off) go into the usual
-- batch, sent to any node. A batch whose node fails (transport error, 5xx) is
-- retried on any node and the node map is refreshed; accounting is the
-- indexer's own, so added == ok + failed holds throughout.
--
--   shard_aware = true | { rewrite = fn(addr, node_id, node) -> url|nil,
--                          restrict_to_hosts = bool, refresh = seconds,
--                          rotation = k }
-- Within a node's request the documents are grouped by shard, shards in
-- ascending order starting at the (k mod count)-th, so that workers given
-- different k do not all start on the same shard.
--   shard_map = an espipe.shard_map to share between indexers (optional)
--   on_log = fn(msg): where "shard-aware bulk is off for index ..." goes
--
-- Memory: one open batch per node (batch_bytes each) besides the indexer's
-- usual bound.
local bulk_indexer = require("espipe.bulk_indexer")
local shard_map = require("espipe.shard_map")

local type, pcall, pairs, ipairs = type, pcall, pairs, ipairs

local Indexer = bulk_indexer.Indexer
local M = {}

function M.attach(ix, opts, level)
  local sa = opts.shard_aware
  if sa ~= true and type(sa) ~= "table" then
    error("bulk_indexer: shard_aware must be true or a table { rewrite =, restrict_to_hosts =, refresh =, rotation = }", level)
  end
  local o = type(sa) == "table" and sa or {}
  if opts.on_log ~= nil and type(opts.on_log) ~= "function" then
    error("bulk_indexer: on_log must be a function", level)
  end
  ix.shard_map = opts.shard_map or shard_map.new(ix.client, {
    rewrite = o.rewrite, restrict_to_hosts = o.restrict_to_hosts, refresh = o.refresh, log = opts.on_log,
  })
  ix.route = true
  ix.routes = {}   -- index name -> shard_map entry | false
  ix.groups = {}   -- transport host index -> { buf =, born = }
  ix.url_routing = opts.routing
  local rotation = o.rotation or 0
  if type(rotation) ~= "number" or rotation < 0 or rotation % 1 ~= 0 then
    error("bulk_indexer: shard_aware.rotation must be an integer >= 0", level)
  end
  ix.shard_rotation = rotation
  ix.stats.direct = 0        -- documents sent to their primary's node
  ix.stats.node_failures = 0 -- requests to a node that failed as a whole
end

local function routable(v)
  local t = type(v)
  return t == "string" or t == "number"
end

-- The transport host of the node holding meta's primary shard and that
-- shard, or 0 (any node).
function Indexer:_host_for(meta)
  local index, rv, id = self.index_name, self.url_routing, nil
  if meta ~= nil then
    if type(meta) ~= "table" then return 0 end
    index = meta.index or meta._index or index
    id = meta.id or meta._id
    rv = meta.routing or rv
  end
  if type(index) ~= "string" then return 0 end
  local e = self.routes[index]
  if e == nil then
    e = self.shard_map:route(index)
    self.routes[index] = e
  end
  if not e then return 0 end
  if e.partition > 1 then
    -- the shard depends on both: without a routing value the cluster refuses or spreads
    if not routable(rv) or not routable(id) then return 0 end
  else
    rv = rv or id
    if not routable(rv) then return 0 end
  end
  local ok, shard = pcall(self.shard_map.shard, self.shard_map, e, rv, id)
  if not ok then return 0 end
  local host = e.hosts[shard]
  if not host then return 0 end
  return host, shard
end

function Indexer:_ship_group(host, g)
  local buf = g.buf
  local n = #buf
  if n == 0 then return end
  local now = self.client:now()
  g.buf, g.born = self:_take_buffer(), now
  if self.shard_map:due(now) then self.shard_map:refresh() end
  -- grouped by shard in C (espipe.bulk sort_by_shard), tokens moved along
  local tokens = self.tokens[buf]
  local _, order = buf:sort_by_shard(g.shard_at, self.shard_rotation, tokens ~= nil)
  if tokens then
    local moved = {}
    for k, i in ipairs(order) do moved[k] = tokens[i] end
    self.tokens[buf] = moved
  end
  local batch = self:_batch_of(buf, n)
  batch.host = host
  self.stats.direct = self.stats.direct + n
  self:_send(batch)
end

function Indexer:_ship_all_routed()
  self:_ship_current()
  for host, g in pairs(self.groups) do self:_ship_group(host, g) end
end

function Indexer:_tick_routed()
  local interval = self.flush_interval
  if interval then
    local now = self.client:now()
    if #self.cur > 0 and now - self.cur_born >= interval then self:_ship_current() end
    for host, g in pairs(self.groups) do
      if #g.buf > 0 and now - g.born >= interval then self:_ship_group(host, g) end
    end
  end
  self:_pump(0)
end

-- A node failed a whole request: its batch is retried on any node and the
-- map is reloaded before the next batch is sent.
function Indexer:on_node_failure(batch)
  batch.host = nil
  self.stats.node_failures = self.stats.node_failures + 1
  self.shard_map:stale()
end

-- Items a node could not place (shard unavailable: it moved or is moving)
-- also ask for a reload.
function Indexer:on_item_retry(batch, r)
  if not batch.host then return end
  for _, f in ipairs(r.failures) do
    if f.status == 503 or f.type == "unavailable_shards_exception" or f.type == "no_shard_available_action_exception" then
      return self.shard_map:stale()
    end
  end
end

return M
