-- Where each document's primary shard lives, per destination index, for
-- shard-aware bulk: the routing function the index really uses (probed, not
-- assumed) and the HTTP address of the node holding each primary.
--
--   local m = shard_map.new(client, {
--     rewrite = function(addr, node_id, node) return url_or_nil end, -- NAT, proxies
--     restrict_to_hosts = false,  -- only nodes whose URL is one of the transport's hosts
--     refresh = 60,               -- seconds between node map refreshes
--     log = function(msg) end,    -- default: one line to stderr
--   })
--   m:route(index) -> entry | false, reason   (cached; false = send anywhere)
--     entry = { index =, shards =, routing_shards =, partition =, func = "legacy"|"modulo",
--               hosts = { [shard] = transport host index } }
--   m:shard(entry, routing_value [, id]) -> shard number (0-based; id for partitioned)
--   m:stale()  -- a node failed or a shard moved: refresh at the next due()
--   m:due(now) -> true when the node map should be refreshed; m:refresh()
--
-- Detection per index: GET {index}/_settings gives the shard count (and the
-- routing shards when set; else Elasticsearch's default for the count);
-- GET {index}/_search_shards?routing=v for routing.probes must agree with
-- exactly one of the legacy and modulo functions (for a partitioned index,
-- the set of shards of each value). Anything else (aliases with their own
-- routing, routing_path/time-series indices, several indices behind one
-- name, answers no function reproduces) switches shard-awareness off for
-- that index, with the reason logged once. On a partitioned index only
-- documents with both a routing value and an _id are routed.
local routing = require("espipe.routing")
local url = require("espipe.client.url")

local type, pairs, ipairs, tostring, tonumber, pcall = type, pairs, ipairs, tostring, tonumber, pcall
local hash, route_shard = routing.hash, routing.shard

local M = {}
local Map = {}
Map.__index = Map

local function default_log(msg)
  io.stderr:write("espipe: ", msg, "\n")
end

function M.new(client, opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("shard_map.new: opts must be a table", 2) end
  for _, k in ipairs{ "rewrite", "log" } do
    if opts[k] ~= nil and type(opts[k]) ~= "function" then
      error("shard_map: " .. k .. " must be a function", 2)
    end
  end
  if opts.refresh ~= nil and (type(opts.refresh) ~= "number" or opts.refresh <= 0) then
    error("shard_map: refresh must be a positive number of seconds", 2)
  end
  return setmetatable({
    client = client,
    rewrite = opts.rewrite,
    restrict = opts.restrict_to_hosts == true,
    refresh_every = opts.refresh or 60,
    log = opts.log or default_log,
    entries = {},       -- index name -> entry | false
    reasons = {},       -- index name -> why it is off
    node_hosts = nil,   -- node id -> transport host index | false
    refreshed = nil,
    is_stale = false,
  }, Map)
end

local function get(self, path, query)
  return self.client:json_request{ method = "GET", path = path, query = query }
end

local function settings_number(v)
  if type(v) == "table" then return nil end
  return tonumber(v)
end

-- The parameters of espipe.routing.shard for an entry (kept with it: one
-- table per index, not per document).
local function params_of(e)
  local p = e.params
  if not p then
    p = { shards = e.shards, routing_shards = e.routing_shards, partition_size = e.partition, func = e.func }
    e.params = p
  end
  return p
end

-- The shard of a document: routing value (the _id when no routing is given);
-- a partitioned index also needs the _id beside the routing value.
function Map.shard(_, e, value, id)
  local p = params_of(e)
  p.routing, p.id = value, e.partition > 1 and id or nil
  return route_shard(p)
end

-- For each offset 0 .. partition - 1, an _id whose hash adds that offset in
-- a partitioned index (hash(id) mod partition): with them espipe.routing
-- gives the shards a routing value spreads over.
local function offset_ids(partition)
  local ids, found, n = {}, 0, 0
  while found < partition do
    local id = "o" .. n
    local off = hash(id) % partition
    if not ids[off] then ids[off], found = id, found + 1 end
    n = n + 1
  end
  return ids
end

-- What the cluster says about each probe value: { [value] = { shard, ... } }.
local function probe(self, seg, partition)
  local observed = {}
  for _, v in ipairs(routing.probes) do
    local r, err = get(self, seg .. "/_search_shards", { routing = v })
    if not r then return nil, "cannot probe _search_shards: " .. tostring(err) end
    local groups = type(r.shards) == "table" and r.shards or {}
    if #groups < 1 or #groups > partition then
      return nil, "routing value '" .. v .. "' maps to " .. #groups .. " shards (custom routing?)"
    end
    local set = {}
    for i, group in ipairs(groups) do
      local copy = type(group) == "table" and group[1]
      if type(copy) ~= "table" or type(copy.shard) ~= "number" then
        return nil, "unexpected _search_shards answer"
      end
      set[i] = copy.shard
    end
    observed[v] = set
  end
  return observed
end

-- Does func reproduce every observed shard set? (A partitioned index answers
-- the shards of hash(v) + 0 .. partition - 1.)
local function reproduces(func, observed, shards, rs, partition)
  local ids = offset_ids(partition)
  local p = { shards = shards, routing_shards = rs, partition_size = partition, func = func }
  for v, set in pairs(observed) do
    local want, n = {}, 0
    p.routing = v
    for i = 0, partition - 1 do
      p.id = ids[i]
      local ok, s = pcall(route_shard, p)
      if not ok then return false end
      if not want[s] then want[s], n = true, n + 1 end
    end
    if n ~= #set then return false end
    for _, s in ipairs(set) do
      if not want[s] then return false end
    end
  end
  return true
end

-- The one function that fits, or nil (none or both).
local function detect(observed, shards, rs, partition)
  if partition == 1 then
    local single = {}
    for v, set in pairs(observed) do
      if #set ~= 1 then return nil end
      single[v] = set[1]
    end
    local ok, func = pcall(routing.detect, single, { shards = shards, routing_shards = rs })
    return ok and func or nil
  end
  local found
  for _, func in ipairs{ "legacy", "modulo" } do
    if reproduces(func, observed, shards, rs, partition) then
      if found then return nil end
      found = func
    end
  end
  return found
end

-- index.number_of_routing_shards is dropped from the settings after creation;
-- the cluster state keeps it as routing_num_shards.
local function state_routing_shards(self, concrete)
  local r = get(self, "/_cluster/state/metadata/" .. url.segment(concrete, "index"))
  local meta = r and type(r.metadata) == "table" and type(r.metadata.indices) == "table"
    and r.metadata.indices[concrete]
  return type(meta) == "table" and tonumber(meta.routing_num_shards) or nil
end

function Map:_detect(index)
  local seg = "/" .. url.segment(index, "index")
  local settings, err = get(self, seg .. "/_settings")
  if not settings then return nil, "cannot read its settings: " .. tostring(err) end
  local concrete, count = nil, 0
  for name in pairs(settings) do concrete, count = name, count + 1 end
  if count ~= 1 then return nil, "the name resolves to " .. count .. " indices" end
  if concrete ~= index then
    local aliases = get(self, "/_alias/" .. url.segment(index, "index"))
    local def = type(aliases) == "table" and type(aliases[concrete]) == "table"
      and type(aliases[concrete].aliases) == "table" and aliases[concrete].aliases[index]
    if type(def) == "table" and (def.index_routing or def.routing) then
      return nil, "alias " .. index .. " has its own routing"
    end
  end
  local s = type(settings[concrete]) == "table" and settings[concrete].settings
  s = type(s) == "table" and s.index
  if type(s) ~= "table" then return nil, "no index settings in the _settings answer" end
  local shards = settings_number(s.number_of_shards)
  if not shards or shards < 1 then return nil, "no number_of_shards in its settings" end
  if s.routing_path ~= nil or s.mode == "time_series" then
    return nil, "it routes by routing_path (time series)"
  end
  local partition = settings_number(s.routing_partition_size) or 1
  local entry = { index = concrete, shards = shards, partition = partition }
  if shards == 1 then
    entry.func, entry.routing_shards, entry.partition = "modulo", 1, 1
    return entry
  end
  local created = type(s.version) == "table" and tonumber(s.version.created)
  local major = created and created < 7000099 and 6 or nil
  local observed, perr = probe(self, seg, partition)
  if not observed then return nil, perr end
  local candidates = { settings_number(s.number_of_routing_shards) or routing.default_routing_shards(shards, major) }
  local from_state = state_routing_shards(self, concrete)
  if from_state and from_state ~= candidates[1] then candidates[2] = from_state end
  for _, rs in ipairs(candidates) do
    local func = detect(observed, shards, rs, partition)
    if func then
      entry.func, entry.routing_shards = func, rs
      return entry
    end
    if rs == shards then
      -- with as many routing shards as shards the two functions are the same one
      entry.func, entry.routing_shards = "modulo", rs
      return entry
    end
  end
  return nil, "neither the legacy nor the modulo function reproduces its _search_shards answers (custom routing?)"
end

----------------------------------------------------------------------------
-- Nodes

-- The transport's index for a node URL, added unless restricted to the
-- configured hosts (a URL the transport refuses is not used).
local function host_index(self, node_url)
  for i, known in ipairs(self.client:hosts()) do
    if known == node_url then return i end
  end
  if self.restrict then return nil end
  local ok, i = pcall(self.client.add_host, self.client, node_url)
  if ok then return i end
  return nil
end

function Map:_load_nodes()
  local r, err = get(self, "/_nodes/http")
  if not r then return nil, "cannot read _nodes/http: " .. tostring(err) end
  local first = self.client:hosts()[1]
  local scheme = type(first) == "string" and first:match("^(%a+)://") or "http"
  local out = {}
  for id, node in pairs(type(r.nodes) == "table" and r.nodes or {}) do
    local addr = type(node) == "table" and type(node.http) == "table" and node.http.publish_address
    if type(addr) == "string" then
      addr = addr:match("/(.+)$") or addr -- "name/ip:port" -> "ip:port"
      local node_url
      if self.rewrite then node_url = self.rewrite(addr, id, node) else node_url = scheme .. "://" .. addr end
      out[id] = type(node_url) == "string" and host_index(self, node_url) or false
    end
  end
  self.node_hosts = out
  return out
end

function Map:_load_primaries(entry)
  local r, err = get(self, "/" .. url.segment(entry.index, "index") .. "/_search_shards")
  if not r then return nil, "cannot read _search_shards: " .. tostring(err) end
  local hosts = {}
  for _, group in ipairs(type(r.shards) == "table" and r.shards or {}) do
    for _, copy in ipairs(type(group) == "table" and group or {}) do
      if type(copy) == "table" and copy.primary == true and copy.state ~= "UNASSIGNED" then
        hosts[copy.shard] = self.node_hosts[copy.node] or nil
      end
    end
  end
  entry.hosts = hosts
  return entry
end

-- The entry for index, detected once; false (and the reason, logged once) when off.
function Map:route(index)
  local e = self.entries[index]
  if e ~= nil then return e, self.reasons[index] end
  local reason
  e, reason = self:_detect(index)
  if e and not self.node_hosts then
    local ok, nerr = self:_load_nodes()
    if not ok then e, reason = nil, nerr end
  end
  if e then
    local ok, perr = self:_load_primaries(e)
    if not ok then e, reason = nil, perr end
  end
  if not e then
    self.reasons[index] = reason
    self.log("shard-aware bulk is off for index " .. index .. ": " .. tostring(reason))
    e = false
  end
  self.entries[index] = e
  self.refreshed = self.refreshed or self.client:now()
  return e, reason
end

function Map:stale()
  self.is_stale = true
end

function Map:due(now)
  if self.refreshed == nil then return false end
  return self.is_stale or now - self.refreshed >= self.refresh_every
end

-- Reload node addresses and primaries of every index in use; an index whose
-- reload fails is sent anywhere until the next refresh.
function Map:refresh()
  self.is_stale = false
  self.refreshed = self.client:now()
  local ok = self:_load_nodes()
  for _, e in pairs(self.entries) do
    if e then
      if not ok or not self:_load_primaries(e) then e.hosts = {} end
    end
  end
  self.generation = (self.generation or 0) + 1
end

return M
