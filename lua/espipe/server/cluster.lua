-- The dev server's cluster state: nodes, indices (settings, mappings,
-- aliases, shards) and the documents of each shard, with ES's write
-- semantics (versions, sequence numbers, optimistic concurrency, external
-- versioning) and refresh-gated visibility for search. One nginx worker
-- owns it all; --data makes it durable through espipe.server.persist.
local json = require("espipe.server.json")
local routing = require("espipe.server.routing")
local mapping = require("espipe.server.mapping")
local persist = require("espipe.server.persist")
local es = require("espipe.server.es_errors")
local index_names = require("espipe.server.index_names")

local M = {}

M.VERSION_CREATED = "8512000" -- 8.15.x
M.MODULO_FROM = 9064000       -- ES indices created from 9_064_0_00 route by modulo

local now = function() return ngx and ngx.now() or os.time() end

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

------------------------------------------------------------------------
-- names

local BAD_CHARS = '[\\/%*%?"<>| ,#:]'

function M.validate_index_name(name)
  local function bad(why)
    return es.fail(400, "invalid_index_name_exception", "Invalid index name [" .. name .. "], " .. why,
      { index_uuid = "_na_", index = name })
  end
  if name == "" then return bad("must not be empty") end
  if name:find(BAD_CHARS) then
    return bad('must not contain the following characters [\' \',\'"\',\'*\',\'\\\',\'<\',\'|\',\',\',\'>\',\'/\',\'?\']')
  end
  if name:match("^[_%-+]") then return bad("must not start with '_', '-', or '+'") end
  if name ~= name:lower() then return bad("must be lowercase") end
  if name == "." or name == ".." then return bad("must not be '.' or '..'") end
  if #name > 255 then
    return es.fail(400, "invalid_index_name_exception",
      "Invalid index name [" .. name .. "], index name is too long, (" .. #name .. " > 255)",
      { index_uuid = "_na_", index = name })
  end
  return nil
end

------------------------------------------------------------------------
-- settings

local function flatten(t, prefix, out)
  for k, v in pairs(t) do
    local key = prefix .. k
    if type(v) == "table" and v ~= json.null and not json.is_array(v) then
      flatten(v, key .. ".", out)
    else
      out[key] = v
    end
  end
  return out
end

-- {"index":{"number_of_shards":3}} / {"number_of_shards":3} /
-- {"index.number_of_shards":3} -> { ["number_of_shards"] = "3" }
function M.flat_settings(body)
  local flat = flatten(body or {}, "", {})
  local out = {}
  for k, v in pairs(flat) do
    k = k:gsub("^index%.", "")
    if v == json.null then out[k] = json.null
    elseif type(v) == "table" then out[k] = json.encode(v)
    else out[k] = tostring(v) end
  end
  return out
end

-- the inverse: { ["a.b"] = v } -> { a = { b = v } }
function M.nest_settings(flat)
  local out = json.object()
  for k, v in pairs(flat) do
    local t = out
    local parts = {}
    for p in k:gmatch("[^.]+") do parts[#parts + 1] = p end
    for i = 1, #parts - 1 do
      if type(t[parts[i]]) ~= "table" then t[parts[i]] = json.object() end
      t = t[parts[i]]
    end
    t[parts[#parts]] = v
  end
  return out
end

function M.parse_interval(s)
  if s == nil or s == json.null then return 1 end
  s = tostring(s)
  if s == "-1" then return -1 end
  local n, unit = s:match("^(%d+%.?%d*)(%a*)$")
  n = tonumber(n)
  local mult = ({ ms = 0.001, s = 1, m = 60, h = 3600, d = 86400, nanos = 1e-9, micros = 1e-6 })[unit]
  if not n or not mult then return nil end
  return n * mult
end

local function int_setting(flat, key, default, min, max)
  local v = flat[key]
  if v == nil or v == json.null then return default end
  local n = tonumber(v)
  if not n or n ~= math.floor(n) then
    return nil, "Failed to parse value [" .. tostring(v) .. "] for setting [index." .. key .. "]"
  end
  if min and n < min then
    return nil, "Failed to parse value [" .. v .. "] for setting [index." .. key .. "] must be >= " .. min
  end
  if max and n > max then
    return nil, "Failed to parse value [" .. v .. "] for setting [index." .. key .. "] must be <= " .. max
  end
  return n
end

-- Derives the numbers the server uses from the flat settings.
local function apply_settings(idx, flat, creating)
  local err
  local shards, rshards, partition
  shards, err = int_setting(flat, "number_of_shards", 1, 1, 1024)
  if not shards then return err end
  local replicas
  replicas, err = int_setting(flat, "number_of_replicas", 1, 0)
  if not replicas then return err end
  partition, err = int_setting(flat, "routing_partition_size", 1, 1)
  if not partition then return err end
  local interval = M.parse_interval(flat.refresh_interval)
  if not interval then
    return "failed to parse setting [index.refresh_interval] with value [" .. tostring(flat.refresh_interval)
      .. "] as a time value: unit is missing or unrecognized"
  end
  local created = tonumber(flat["version.created"] or M.VERSION_CREATED)
  local func = flat["routing.function"]
  if func == nil or func == json.null then
    func = (created and created >= M.MODULO_FROM) and "modulo" or "legacy"
  end
  if func ~= "legacy" and func ~= "modulo" then
    return "unknown value [" .. tostring(func) .. "] for [index.routing.function], expected legacy or modulo"
  end
  if creating and (flat["soft_deletes.enabled"] == "false") then
    return "Creating indices with soft-deletes disabled is no longer supported. Please do not specify a value "
      .. "for setting [index.soft_deletes.enabled]."
  end
  if creating then
    local default_r = routing.default_routing_shards(shards, created and created < 7000099 and 6 or nil)
    rshards, err = int_setting(flat, "number_of_routing_shards", default_r, shards, 1048576)
    if not rshards then return err end
    if rshards % shards ~= 0 then
      return "the number of source shards [" .. shards .. "] must be a factor of [" .. rshards .. "]"
    end
    if partition > 1 and partition >= rshards then
      return "routing partition size [" .. partition .. "] should be a positive number less than the number of routing shards [" .. rshards .. "]"
    end
    idx.nshards = shards
    idx.routing_shards = rshards
    idx.partition = partition
    idx.func = func
    idx.version_created = tostring(created or M.VERSION_CREATED)
  end
  idx.replicas = replicas
  idx.refresh_s = interval
  return nil
end

------------------------------------------------------------------------
-- indices

local function new_shard(idx, n)
  local node = state.next_node % state.node_count
  state.next_node = state.next_node + 1
  return { n = n, node = node, docs = {}, count = 0, tomb = {}, seq = -1, term = 1,
           index_total = 0, delete_total = 0, visible = {}, visible_count = 0, changed = {}, dirty = false, last_refresh = now(),
           index = idx }
end

local function persist_meta(idx)
  if not persist.enabled() then return end
  local aliases = {}
  for a, props in pairs(idx.aliases) do aliases[a] = props end
  state.pending["cluster.log"] = state.pending["cluster.log"] or {}
  local list = state.pending["cluster.log"]
  list[#list + 1] = json.encode {
    op = "index", name = idx.name, uuid = idx.uuid, created = idx.created,
    settings = idx.settings, mappings = mapping.to_table(idx.mapping),
    aliases = json.object(aliases), routing_shards = idx.routing_shards,
    shard_nodes = idx.shard_nodes, check = idx.mapping.check,
  } .. "\n"
end
M.persist_meta = persist_meta

-- create(name, body[, restore]) -> idx | nil, status, error body
function M.create_index(name, body, restore)
  if not restore then
    local s, e = M.validate_index_name(name)
    if s then return nil, s, e end
  end
  local existing = state.indices[name]
  if existing then
    return nil, es.fail(400, "resource_already_exists_exception",
      "index [" .. name .. "/" .. existing.uuid .. "] already exists",
      { index_uuid = existing.uuid, index = name })
  end
  if not restore and M.alias_indices(name) then
    return nil, es.fail(400, "invalid_index_name_exception",
      "Invalid index name [" .. name .. "], an alias with the same name already exists",
      { index_uuid = "_na_", index = name })
  end
  if not restore then body = require("espipe.server.templates").apply(name, body, M.flat_settings) end
  body = body or {}
  if type(body) ~= "table" then return nil, es.parse_error("request body must be an object") end
  local flat = M.flat_settings(body.settings)
  if restore and body.routing_shards then
    flat.number_of_routing_shards = tostring(body.routing_shards)
  end
  local idx = {
    name = name, uuid = restore and body.uuid or M.new_uuid(),
    created = restore and body.created or math.floor(now() * 1000),
    aliases = {}, shards = {}, pending_sources = {},
  }
  local err = apply_settings(idx, flat, true)
  if err then return nil, es.bad_request(err) end
  local m, merr, mkind = mapping.new(body.mappings)
  if not m then return nil, es.fail(400, mkind or "mapper_parsing_exception", merr) end
  if restore and body.check ~= nil then m.check = body.check end
  idx.mapping = m
  flat.number_of_routing_shards = nil -- ES drops it after creation
  flat.number_of_shards = tostring(idx.nshards)
  flat.number_of_replicas = tostring(idx.replicas)
  flat.uuid = idx.uuid
  flat["version.created"] = idx.version_created
  flat.creation_date = tostring(idx.created)
  flat.provided_name = name
  for k, v in pairs(flat) do if v == json.null then flat[k] = nil end end
  idx.settings = flat
  if body.aliases ~= nil then
    if type(body.aliases) ~= "table" then return nil, es.bad_request("[aliases] must be an object") end
    for a, props in pairs(body.aliases) do
      idx.aliases[a] = type(props) == "table" and props or {}
    end
  end
  for i = 0, idx.nshards - 1 do
    idx.shards[i] = new_shard(idx, i)
    if restore and body.shard_nodes then idx.shards[i].node = (body.shard_nodes[i + 1] or 0) % state.node_count end
  end
  idx.shard_nodes = json.array()
  for i = 0, idx.nshards - 1 do idx.shard_nodes[i + 1] = idx.shards[i].node end
  state.indices[name] = idx
  if not restore then persist_meta(idx) end
  return idx
end

function M.delete_index(idx)
  state.indices[idx.name] = nil
  if persist.enabled() then
    state.pending["cluster.log"] = state.pending["cluster.log"] or {}
    local list = state.pending["cluster.log"]
    list[#list + 1] = json.encode { op = "delete", name = idx.name, uuid = idx.uuid } .. "\n"
    persist.remove(idx.uuid .. ".log")
    state.pending[idx.uuid .. ".log"] = nil
  end
end

function M.update_settings(idx, body)
  local flat = M.flat_settings(body)
  if flat.number_of_shards ~= nil then
    return es.bad_request("final " .. idx.name .. " setting [index.number_of_shards], not updateable")
  end
  if flat.number_of_routing_shards ~= nil or flat.routing_partition_size ~= nil then
    return es.bad_request("final " .. idx.name .. " setting [index.number_of_routing_shards], not updateable")
  end
  local merged = {}
  for k, v in pairs(idx.settings) do merged[k] = v end
  for k, v in pairs(flat) do
    if v == json.null then merged[k] = nil else merged[k] = v end
  end
  local err = apply_settings(idx, merged, false)
  if err then return es.bad_request(err) end
  if merged.number_of_replicas == nil then merged.number_of_replicas = "1" end
  idx.settings = merged
  persist_meta(idx)
  return nil
end

-- index names an alias points to, or nil
function M.alias_indices(alias)
  local list
  for name, idx in pairs(state.indices) do
    if idx.aliases[alias] then
      list = list or {}
      list[#list + 1] = name
    end
  end
  if list then table.sort(list) end
  return list
end

local function sorted_names()
  local names = {}
  for name in pairs(state.indices) do names[#names + 1] = name end
  table.sort(names)
  return names
end
M.sorted_names = sorted_names

-- resolve(expr[, opts]) -> list of indices (sorted, unique) | nil, status,
-- body. expr: "a,b*,alias,<logs-{now/d}>" / "_all" / "*" / nil; opts: the
-- index options (espipe.server.index_names).
function M.resolve(expr, opts)
  return index_names.resolve(state.indices, M.alias_indices, expr, opts)
end

-- the index options of a request (query parameters over an API's defaults)
function M.index_options(req, defaults)
  return index_names.options(req.args, defaults)
end

-- Write target for a name: an index, or an alias's write index. Returns
-- idx, alias props (for index_routing) | nil, status, body | false (absent).
function M.write_target(name)
  local idx = state.indices[name]
  if idx then return idx end
  local names = M.alias_indices(name)
  if not names then return false end
  local target
  if #names == 1 then
    local props = state.indices[names[1]].aliases[name]
    if props.is_write_index ~= false then target = names[1] end
  else
    for _, n in ipairs(names) do
      if state.indices[n].aliases[name].is_write_index == true then target = n end
    end
  end
  if not target then
    return nil, es.bad_request("no write index is defined for alias [" .. name .. "]. The write index may be "
      .. "explicitly disabled using is_write_index=false or the alias points to multiple indices without one "
      .. "being designated as a write index")
  end
  return state.indices[target], state.indices[target].aliases[name]
end

-- index for writing a document, auto-creating it. -> idx, alias | nil, status, body
function M.index_for_write(name, auto_create)
  local idx, a, b = M.write_target(name)
  if idx then return idx, a end
  if idx == nil then return nil, a, b end
  if not auto_create then return nil, es.index_not_found(name) end
  local created, s, e = M.create_index(name, nil)
  if not created then return nil, s, e end
  return created
end

------------------------------------------------------------------------
-- routing

-- shard number for a document, or nil, reason
function M.shard_for(idx, id, route)
  if idx.partition > 1 then
    if not route then return nil, "A routing value is required for gets from a partitioned index" end
    local h, err = routing.partitioned_hash(route, id, idx.partition)
    if not h then return nil, err end
    return routing.shard_for_hash(h, idx.nshards, idx.routing_shards, idx.func)
  end
  return routing.shard(route or id, idx.nshards, idx.routing_shards, idx.func)
end

-- shards a search with routing values reaches (set of shard numbers)
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
-- documents

local function queue(idx, line)
  local name = idx.uuid .. ".log"
  local list = state.pending[name]
  if not list then
    list = {}
    state.pending[name] = list
  end
  list[#list + 1] = line
end

-- Writes what the request changed, one write per log. Returns true | nil, err.
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

local function mark(shard, id)
  shard.changed[id] = true
  shard.dirty = true
end

local function shards_info(idx)
  local total = 1 + idx.replicas
  local ok = 1 + math.min(idx.replicas, state.node_count - 1)
  return total, ok
end
M.shards_info = shards_info

local function conflict(idx, shard, id, detail)
  return 409, es.version_conflict_cause(idx, shard.n, id, detail)
end

-- Optimistic concurrency and versioning checks shared by index and delete.
-- o: if_seq_no, if_primary_term, version, version_type
local function check_versions(idx, shard, id, cur, o, op)
  if o.if_seq_no ~= nil then
    if not cur then
      return conflict(idx, shard, id, "required seqNo [" .. o.if_seq_no .. "], primary term ["
        .. o.if_primary_term .. "]. but no document was found")
    end
    if cur.s ~= o.if_seq_no or cur.t ~= o.if_primary_term then
      return conflict(idx, shard, id, "required seqNo [" .. o.if_seq_no .. "], primary term ["
        .. o.if_primary_term .. "]. current document has seqNo [" .. cur.s .. "] and primary term ["
        .. cur.t .. "]")
    end
  end
  local vt = o.version_type
  if vt == "external" or vt == "external_gt" or vt == "external_gte" then
    local curv = cur and cur.v or shard.tomb[id]
    if curv then
      if vt == "external_gte" and curv > o.version then
        return conflict(idx, shard, id, "current version [" .. curv .. "] is higher than the one provided ["
          .. o.version .. "]")
      elseif vt ~= "external_gte" and curv >= o.version then
        return conflict(idx, shard, id, "current version [" .. curv .. "] is higher or equal to the one provided ["
          .. o.version .. "]")
      end
    end
  elseif o.version ~= nil and op == "delete" then
    if not cur then
      return conflict(idx, shard, id, "document does not exist (expected version [" .. o.version .. "])")
    end
    if cur.v ~= o.version then
      return conflict(idx, shard, id, "current version [" .. cur.v .. "] is different than the one provided ["
        .. o.version .. "]")
    end
  end
  return nil
end

-- put(idx, shard_no, id, src, o) -> rec, created | nil, status, cause
-- o: create, routing, if_seq_no, if_primary_term, version, version_type
function M.put(idx, sh, id, src, o)
  local shard = idx.shards[sh]
  local cur = shard.docs[id]
  if o.create and cur then
    return nil, conflict(idx, shard, id, "document already exists (current version [" .. cur.v .. "])")
  end
  local s, c = check_versions(idx, shard, id, cur, o, "index")
  if s then return nil, s, c end
  local v
  if o.version_type and o.version_type ~= "internal" then
    v = o.version
  else
    v = (cur and cur.v or shard.tomb[id] or 0) + 1
  end
  shard.seq = shard.seq + 1
  local rec = { id = id, src = src, v = v, s = shard.seq, t = shard.term, r = o.routing }
  shard.docs[id] = rec
  shard.tomb[id] = nil
  shard.index_total = shard.index_total + 1
  if not cur then shard.count = shard.count + 1 end
  mark(shard, id)
  if persist.enabled() then queue(idx, persist.doc_record("I", sh, rec)) end
  return rec, cur == nil
end

-- remove(idx, shard_no, id, o) -> rec(with v, s), found | nil, status, cause
function M.remove(idx, sh, id, o)
  local shard = idx.shards[sh]
  local cur = shard.docs[id]
  local s, c = check_versions(idx, shard, id, cur, o, "delete")
  if s then return nil, s, c end
  local v
  if o.version_type == "external" or o.version_type == "external_gte" or o.version_type == "external_gt" then
    v = o.version
  else
    v = (cur and cur.v or shard.tomb[id] or 0) + 1
  end
  shard.seq = shard.seq + 1
  local rec = { id = id, v = v, s = shard.seq, t = shard.term, r = o.routing }
  if cur then
    shard.docs[id] = nil
    shard.count = shard.count - 1
    shard.delete_total = shard.delete_total + 1
    mark(shard, id)
  end
  shard.tomb[id] = v
  if persist.enabled() then queue(idx, persist.doc_record("D", sh, rec)) end
  return rec, cur ~= nil
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
  persist_meta(idx)
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

------------------------------------------------------------------------
-- restart from --data

function M.restore()
  if not persist.enabled() then return end
  local defs = {}
  persist.replay_meta(function(rec)
    if rec.op == "index" then defs[rec.name] = rec
    elseif rec.op == "delete" and defs[rec.name] and defs[rec.name].uuid == rec.uuid then defs[rec.name] = nil
    elseif rec.op == "template" then require("espipe.server.templates").restore(rec)
    elseif rec.op == "stored_script" then require("espipe.server.api_scripts").restore(rec) end
  end)
  for name, def in pairs(defs) do
    local idx = M.create_index(name, def, true)
    if idx then
      idx.settings = M.flat_settings(def.settings)
      apply_settings(idx, idx.settings, false)
      persist.replay_docs(idx.uuid .. ".log", function(op, sh, seq, ver, id, route, src)
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
        shard.changed[id] = true
        shard.dirty = true
      end)
      M.refresh(idx)
    end
  end
end

return M
