-- The shards of the dev server's indices and the documents in them, with
-- ES's write semantics (versions, sequence numbers, optimistic concurrency,
-- external versioning) and refresh-gated visibility for search.
--
-- new_shard(idx, n) -> shard, placed round-robin over the nodes
-- shard_for(idx, id, route) -> shard number | nil, reason
-- search_shards(idx, routing_values) -> set of shard numbers
-- put(idx, sh, id, src, o) -> rec, created | nil, status, cause
-- remove(idx, sh, id, o) -> rec, found | nil, status, cause
-- replay(idx, op, sh, seq, ver, id, route, src): a --data record, on restart
-- refresh_shard(shard), refresh(idx), lazy_refresh(idx)
-- defer_mapping(idx, src), settle_mapping(idx)
local json = require("espipe.server.json")
local routing = require("espipe.server.routing")
local mapping = require("espipe.server.mapping")
local persist = require("espipe.server.persist")
local es = require("espipe.server.es_errors")
local cluster = require("espipe.server.cluster")

local M = {}

local now = cluster.now
local state = cluster.state

function M.new_shard(idx, n)
  local node = state.next_node % state.node_count
  state.next_node = state.next_node + 1
  return { n = n, node = node, docs = {}, count = 0, tomb = {}, seq = -1, term = 1,
           index_total = 0, delete_total = 0, visible = {}, visible_count = 0, changed = {}, dirty = false,
           last_refresh = now(), index = idx }
end

------------------------------------------------------------------------
-- routing

function M.shard_for(idx, id, route)
  if idx.partition > 1 then
    if not route then return nil, "A routing value is required for gets from a partitioned index" end
    local h, err = routing.partitioned_hash(route, id, idx.partition)
    if not h then return nil, err end
    return routing.shard_for_hash(h, idx.nshards, idx.routing_shards, idx.func)
  end
  return routing.shard(route or id, idx.nshards, idx.routing_shards, idx.func)
end

function M.search_shards(idx, routing_values)
  local set = {}
  for r in tostring(routing_values):gmatch("[^,]+") do
    local h = routing.hash(r)
    if h then
      for i = 0, idx.partition - 1 do
        local hh = h + i
        if hh > 2147483647 then hh = hh - 4294967296 end
        set[routing.shard_for_hash(hh, idx.nshards, idx.routing_shards, idx.func)] = true
      end
    end
  end
  return set
end

------------------------------------------------------------------------
-- versions

local function conflict(idx, shard, id, detail)
  return 409, es.version_conflict_cause(idx, shard.n, id, detail)
end

local function check_seq_no(idx, shard, id, cur, o)
  local required = "required seqNo [" .. o.if_seq_no .. "], primary term [" .. o.if_primary_term .. "]. "
  if not cur then
    return conflict(idx, shard, id, required .. "but no document was found")
  end
  if cur.s ~= o.if_seq_no or cur.t ~= o.if_primary_term then
    return conflict(idx, shard, id, required .. "current document has seqNo [" .. cur.s
      .. "] and primary term [" .. cur.t .. "]")
  end
end

local EXTERNAL = { external = true, external_gt = true, external_gte = true }

local function check_external(idx, shard, id, cur, o)
  local curv = cur and cur.v or shard.tomb[id]
  if not curv then return nil end
  if o.version_type == "external_gte" and curv > o.version then
    return conflict(idx, shard, id, "current version [" .. curv .. "] is higher than the one provided ["
      .. o.version .. "]")
  elseif o.version_type ~= "external_gte" and curv >= o.version then
    return conflict(idx, shard, id, "current version [" .. curv .. "] is higher or equal to the one provided ["
      .. o.version .. "]")
  end
end

local function check_delete_version(idx, shard, id, cur, o)
  if not cur then
    return conflict(idx, shard, id, "document does not exist (expected version [" .. o.version .. "])")
  end
  if cur.v ~= o.version then
    return conflict(idx, shard, id, "current version [" .. cur.v .. "] is different than the one provided ["
      .. o.version .. "]")
  end
end

-- Optimistic concurrency and versioning checks shared by index and delete:
-- nil, or the 409 status and cause. o: if_seq_no, if_primary_term,
-- version, version_type
local function check_versions(idx, shard, id, cur, o, op)
  if o.if_seq_no ~= nil then
    local s, c = check_seq_no(idx, shard, id, cur, o)
    if s then return s, c end
  end
  if EXTERNAL[o.version_type] then return check_external(idx, shard, id, cur, o) end
  if o.version ~= nil and op == "delete" then return check_delete_version(idx, shard, id, cur, o) end
  return nil
end

-- the version a write gives the document: the external one, else the next
local function next_version(shard, id, cur, o, external)
  if external then return o.version end
  return (cur and cur.v or shard.tomb[id] or 0) + 1
end

------------------------------------------------------------------------
-- documents

local function mark(shard, id)
  shard.changed[id] = true
  shard.dirty = true
end

-- o: create, routing, if_seq_no, if_primary_term, version, version_type
function M.put(idx, sh, id, src, o)
  local shard = idx.shards[sh]
  local cur = shard.docs[id]
  if o.create and cur then
    return nil, conflict(idx, shard, id, "document already exists (current version [" .. cur.v .. "])")
  end
  local s, c = check_versions(idx, shard, id, cur, o, "index")
  if s then return nil, s, c end
  local v = next_version(shard, id, cur, o, o.version_type and o.version_type ~= "internal")
  shard.seq = shard.seq + 1
  local rec = { id = id, src = src, v = v, s = shard.seq, t = shard.term, r = o.routing }
  shard.docs[id] = rec
  shard.tomb[id] = nil
  shard.index_total = shard.index_total + 1
  if not cur then shard.count = shard.count + 1 end
  mark(shard, id)
  if persist.enabled() then cluster.queue(idx.uuid .. ".log", persist.doc_record("I", sh, rec)) end
  return rec, cur == nil
end

function M.remove(idx, sh, id, o)
  local shard = idx.shards[sh]
  local cur = shard.docs[id]
  local s, c = check_versions(idx, shard, id, cur, o, "delete")
  if s then return nil, s, c end
  local v = next_version(shard, id, cur, o, EXTERNAL[o.version_type])
  shard.seq = shard.seq + 1
  local rec = { id = id, v = v, s = shard.seq, t = shard.term, r = o.routing }
  if cur then
    shard.docs[id] = nil
    shard.count = shard.count - 1
    shard.delete_total = shard.delete_total + 1
    mark(shard, id)
  end
  shard.tomb[id] = v
  if persist.enabled() then cluster.queue(idx.uuid .. ".log", persist.doc_record("D", sh, rec)) end
  return rec, cur ~= nil
end

-- One record of an index's --data log, replayed on restart: op "I" (index)
-- or "D" (delete); the index's refresh makes it visible.
function M.replay(idx, op, sh, seq, ver, id, route, src)
  local shard = idx.shards[sh]
  if not shard then return end
  if seq > shard.seq then shard.seq = seq end
  local cur = shard.docs[id]
  if op == "I" then
    if not cur then shard.count = shard.count + 1 end
    shard.docs[id] = { id = id, src = src, v = ver, s = seq, t = 1, r = route }
    -- dynamic fields not yet in the saved mapping are learnt again lazily
    if not idx.mapping.check and #idx.pending_sources < 10000 then M.defer_mapping(idx, src) end
    shard.tomb[id] = nil
  else
    if cur then shard.count = shard.count - 1 end
    shard.docs[id] = nil
    shard.tomb[id] = ver
  end
  mark(shard, id)
end

-- Sources whose dynamic fields are not yet in the mapping (the bulk fast
-- path stores raw bytes and leaves mapping updates for later).
function M.defer_mapping(idx, src)
  local p = idx.pending_sources
  p[#p + 1] = src
end

function M.settle_mapping(idx)
  local p = idx.pending_sources
  if #p == 0 then return end
  idx.pending_sources = {}
  for _, src in ipairs(p) do
    local doc = json.decode(src)
    if type(doc) == "table" then mapping.apply(idx.mapping, doc, "", nil) end
  end
  cluster.persist_meta(idx)
end

------------------------------------------------------------------------
-- refresh

function M.refresh_shard(shard)
  if not shard.dirty then
    shard.last_refresh = now()
    return
  end
  local docs, visible = shard.docs, shard.visible
  local n = shard.visible_count
  for id in pairs(shard.changed) do
    local rec = docs[id]
    if visible[id] then
      if not rec then n = n - 1 end
    elseif rec then
      n = n + 1
    end
    visible[id] = rec
  end
  shard.visible_count = n
  shard.by_seq = nil -- search_context's ordered list of visible records
  shard.changed = {}
  shard.dirty = false
  shard.last_refresh = now()
end

function M.refresh(idx)
  for i = 0, idx.nshards - 1 do M.refresh_shard(idx.shards[i]) end
end

-- What a search does first: refresh shards whose interval has passed.
function M.lazy_refresh(idx)
  if idx.refresh_s < 0 then return end
  local t = now()
  for i = 0, idx.nshards - 1 do
    local shard = idx.shards[i]
    if shard.dirty and t - shard.last_refresh >= idx.refresh_s then M.refresh_shard(shard) end
  end
end

return M
