-- The dev server's cluster state: the nodes, the indices by name, and the
-- --data records a request queues (written once, at its end, by flush). One
-- nginx worker owns it all. The indices live in espipe.server.cluster_indices,
-- their shards and documents in espipe.server.cluster_shards; a restart
-- from --data is espipe.server.cluster_restore.
local json = require("espipe.server.json")
local mapping = require("espipe.server.mapping")
local persist = require("espipe.server.persist")

local M = {}

function M.now() return ngx and ngx.now() or os.time() end
local now = M.now

local state = {
  indices = {},   -- name -> index
  node_count = 1,
  next_node = 0,  -- round-robin shard placement
  uuid_seq = 0,
  pending = {},   -- log name -> { record strings } written at the end of a request
  meta_dirty = {},
}
M.state = state

function M.configure(opts)
  state.node_count = opts.nodes or 1
  state.cluster_uuid = opts.cluster_uuid or "espipe-dev-cluster-uuid0"
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

local function random_id(n, salt)
  local t, x = {}, math.floor(now() * 1000) + salt * 7919
  for i = 1, n do
    local r = (math.random(0, 63) + x) % 64
    x = math.floor(x / 64)
    t[i] = B64:sub(r + 1, r + 1)
  end
  return table.concat(t)
end

function M.new_uuid()
  state.uuid_seq = state.uuid_seq + 1
  return random_id(22, state.uuid_seq)
end

local auto_seq = 0
function M.auto_id()
  auto_seq = auto_seq + 1
  return random_id(20, auto_seq)
end

-- total and successful shard copies a write to idx reports
function M.shards_info(idx)
  local total = 1 + idx.replicas
  local ok = 1 + math.min(idx.replicas, state.node_count - 1)
  return total, ok
end

------------------------------------------------------------------------
-- --data records

-- queue(log, line): a record for a log file, written by flush
function M.queue(log, line)
  local list = state.pending[log]
  if not list then
    list = {}
    state.pending[log] = list
  end
  list[#list + 1] = line
end

-- a record of the metadata log (index definitions, templates, stored
-- scripts); nothing without --data
function M.queue_meta(rec)
  if not persist.enabled() then return end
  M.queue("cluster.log", json.encode(rec) .. "\n")
end

function M.persist_meta(idx)
  if not persist.enabled() then return end
  local aliases = {}
  for a, props in pairs(idx.aliases) do aliases[a] = props end
  M.queue_meta {
    op = "index", name = idx.name, uuid = idx.uuid, created = idx.created,
    settings = idx.settings, mappings = mapping.to_table(idx.mapping),
    aliases = json.object(aliases), routing_shards = idx.routing_shards,
    shard_nodes = idx.shard_nodes, check = idx.mapping.check, doc_type = idx.doc_type,
  }
end

-- Writes what the request changed, one write per log, the metadata first.
-- Returns true | nil, err.
function M.flush()
  local ok, err = true, nil
  local meta = state.pending["cluster.log"]
  if meta then
    state.pending["cluster.log"] = nil
    local a, e = persist.append("cluster.log", table.concat(meta))
    if not a then ok, err = nil, e end
  end
  for name, list in pairs(state.pending) do
    state.pending[name] = nil
    local a, e = persist.append(name, table.concat(list))
    if not a then ok, err = nil, e end
  end
  return ok, err
end

return M
