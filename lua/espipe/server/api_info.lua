-- Cluster-level read APIs: GET /, _cluster/health, _cluster/state/metadata,
-- _nodes, _cat/shards, _cat/indices, _search_shards, and /_espipe/stats.
local json = require("espipe.server.json")
local cluster = require("espipe.server.cluster")
local cluster_indices = require("espipe.server.cluster_indices")
local cluster_shards = require("espipe.server.cluster_shards")
local stats = require("espipe.server.stats")
local params = require("espipe.server.params")
local flavors = require("espipe.server.flavors")
local mapping = require("espipe.server.mapping")
local api_indices = require("espipe.server.api_indices")

local M = {}

M.CLUSTER_NAME = "espipe"

local function node_id(i) return "espipe-node-" .. i end
local function node_name(i) return "espipe-" .. i end

function M.root(req)
  local flavor = assert(flavors.get(req.opts and req.opts.flavor))
  return 200, {
    name = node_name(req.node), cluster_name = M.CLUSTER_NAME, cluster_uuid = cluster.state.cluster_uuid,
    version = flavor.version, tagline = flavor.tagline,
  }
end

function M.stats(req)
  local snapshot = stats.snapshot(req.opts.port or 9200)
  -- open scroll and PIT contexts (expired ones are pruned first)
  snapshot.search = require("espipe.server.search_context").counts()
  return 200, snapshot
end

function M.stats_reset()
  stats.reset()
  return 200, { acknowledged = true }
end

local function health_of(indices)
  local nodes = cluster.state.node_count
  local status, shards, primaries, unassigned = "green", 0, 0, 0
  for _, idx in ipairs(indices) do
    primaries = primaries + idx.nshards
    local copies = math.min(idx.replicas, nodes - 1)
    shards = shards + idx.nshards * (1 + copies)
    if idx.replicas > nodes - 1 then
      status = "yellow"
      unassigned = unassigned + idx.nshards * (idx.replicas - copies)
    end
  end
  return status, primaries, shards, unassigned
end

local RANK = { green = 0, yellow = 1, red = 2 }

-- level=indices|shards: the health of each index (and of its shards)
local function health_levels(indices, level)
  local out = json.object()
  for _, idx in ipairs(indices) do
    local status, primaries, shards, unassigned = health_of({ idx })
    local h = { status = status, number_of_shards = idx.nshards, number_of_replicas = idx.replicas,
                active_primary_shards = primaries, active_shards = shards, relocating_shards = 0,
                initializing_shards = 0, unassigned_shards = unassigned, unassigned_primary_shards = 0 }
    if level == "shards" then
      h.shards = json.object()
      local per = shards / idx.nshards
      for i = 0, idx.nshards - 1 do
        h.shards[tostring(i)] = { status = status, primary_active = true, active_shards = per,
          relocating_shards = 0, initializing_shards = 0, unassigned_shards = unassigned / idx.nshards,
          unassigned_primary_shards = 0 }
      end
    end
    out[idx.name] = h
  end
  return out
end

-- GET /_capabilities?method=&path=&capabilities=: what the YAML REST tests
-- ask before using a newer behaviour; only what is modelled is supported
local CAPABILITIES = { ["GET /_cluster/health"] = { unassigned_pri_shard_count = true } }

function M.capabilities(req)
  local key = tostring(params.str(req.args, "method") or "GET") .. " " .. tostring(params.str(req.args, "path"))
  local known = CAPABILITIES[key]
  local supported = known ~= nil and (params.str(req.args, "parameters") or "") == ""
  for c in tostring(params.str(req.args, "capabilities") or ""):gmatch("[^,]+") do
    if not (known and known[c]) then supported = false end
  end
  return 200, { supported = supported }
end

function M.health(req)
  -- closed indices are replicated (7.2+): they count like open ones
  local indices, s, e = cluster_indices.of_request(req, { expand_wildcards = "all" })
  if not indices then return s, e end
  local status, primaries, shards, unassigned = health_of(indices)
  local nodes = cluster.state.node_count
  local body = {
    cluster_name = M.CLUSTER_NAME, status = status, timed_out = false, number_of_nodes = nodes,
    number_of_data_nodes = nodes, active_primary_shards = primaries, active_shards = shards,
    relocating_shards = 0, initializing_shards = 0, unassigned_shards = unassigned,
    unassigned_primary_shards = 0, delayed_unassigned_shards = 0, number_of_pending_tasks = 0,
    number_of_in_flight_fetch = 0, task_max_waiting_in_queue_millis = 0,
    active_shards_percent_as_number = (shards + unassigned) > 0 and 100 * shards / (shards + unassigned) or 100.0,
  }
  local level = params.str(req.args, "level")
  if level == "indices" or level == "shards" then body.indices = health_levels(indices, level) end
  local want = params.str(req.args, "wait_for_status")
  if want and RANK[want] and RANK[status] > RANK[want] then
    -- nothing here changes without a request, so waiting cannot help
    body.timed_out = true
    return 408, body
  end
  return 200, body
end

local function index_metadata(idx)
  local aliases = json.array()
  for a in pairs(idx.aliases) do aliases[#aliases + 1] = a end
  table.sort(aliases)
  return {
    version = 1, state = "open", routing_num_shards = idx.routing_shards,
    settings = { index = api_indices.nested_settings(idx) },
    mappings = { _doc = mapping.to_table(idx.mapping) },
    aliases = aliases,
  }
end

function M.state_metadata(req)
  local status, out = api_indices.views(req, index_metadata)
  if status ~= 200 then return status, out end
  return 200, { cluster_name = M.CLUSTER_NAME, cluster_uuid = cluster.state.cluster_uuid,
                metadata = { cluster_uuid = cluster.state.cluster_uuid, indices = out } }
end

local function host_of(req)
  local h = req.opts.host or "127.0.0.1"
  if h == "0.0.0.0" then h = "127.0.0.1" end
  return h
end

-- the version number this server answers as (--flavor)
local function version_number(req)
  return assert(flavors.get(req.opts and req.opts.flavor)).version.number
end

function M.nodes(req)
  local out = json.object()
  local port = req.opts.port or 9200
  for i = 0, cluster.state.node_count - 1 do
    local addr = host_of(req) .. ":" .. (port + i)
    out[node_id(i)] = {
      name = node_name(i), transport_address = addr, host = host_of(req), ip = host_of(req),
      version = version_number(req), roles = { "data", "ingest", "master" },
      http = { bound_address = { addr }, publish_address = addr, max_content_length_in_bytes = req.opts.max_content_length },
    }
  end
  local n = cluster.state.node_count
  return 200, { _nodes = { total = n, successful = n, failed = 0 }, cluster_name = M.CLUSTER_NAME, nodes = out }
end

local function cat(req, columns, rows)
  local fmt = params.str(req.args, "format")
  local wanted = params.str(req.args, "h")
  if wanted then
    columns = {}
    for c in wanted:gmatch("[^,]+") do columns[#columns + 1] = c end
  end
  if fmt == "json" then
    local out = json.array()
    for _, r in ipairs(rows) do
      local o = json.object()
      for _, c in ipairs(columns) do if r[c] ~= nil then o[c] = r[c] end end
      out[#out + 1] = o
    end
    return 200, out
  end
  local width = {}
  local verbose = req.args.v ~= nil
  for _, c in ipairs(columns) do width[c] = verbose and #c or 0 end
  for _, r in ipairs(rows) do
    for _, c in ipairs(columns) do width[c] = math.max(width[c], #tostring(r[c] or "")) end
  end
  local lines = {}
  local function line(get)
    local cells = {}
    for _, c in ipairs(columns) do cells[#cells + 1] = string.format("%-" .. width[c] .. "s", get(c)) end
    lines[#lines + 1] = (table.concat(cells, " "):gsub("%s+$", ""))
  end
  if verbose then line(function(c) return c end) end
  for _, r in ipairs(rows) do line(function(c) return tostring(r[c] or "") end) end
  return 200, table.concat(lines, "\n") .. (#lines > 0 and "\n" or ""), "text/plain; charset=UTF-8"
end

function M.cat_shards(req)
  local indices, s, e = cluster_indices.of_request(req)
  if not indices then return s, e end
  local rows = {}
  local host = host_of(req)
  for _, idx in ipairs(indices) do
    for i = 0, idx.nshards - 1 do
      local shard = idx.shards[i]
      rows[#rows + 1] = { index = idx.name, shard = tostring(i), prirep = "p", state = "STARTED",
        docs = tostring(shard.visible_count), store = "0b", dataset = "0b", ip = host,
        node = node_name(shard.node), id = node_id(shard.node) }
      local copies = math.min(idx.replicas, cluster.state.node_count - 1)
      for c = 1, idx.replicas do
        if c <= copies then
          local n = (shard.node + c) % cluster.state.node_count
          rows[#rows + 1] = { index = idx.name, shard = tostring(i), prirep = "r", state = "STARTED",
            docs = tostring(shard.visible_count), store = "0b", dataset = "0b", ip = host,
            node = node_name(n), id = node_id(n) }
        else
          rows[#rows + 1] = { index = idx.name, shard = tostring(i), prirep = "r", state = "UNASSIGNED" }
        end
      end
    end
  end
  return cat(req, { "index", "shard", "prirep", "state", "docs", "store", "dataset", "ip", "node" }, rows)
end

function M.cat_indices(req)
  local indices, s, e = cluster_indices.of_request(req)
  if not indices then return s, e end
  local rows = {}
  for _, idx in ipairs(indices) do
    local docs = 0
    for i = 0, idx.nshards - 1 do
      cluster_shards.lazy_refresh(idx)
      docs = docs + idx.shards[i].visible_count
    end
    local health = health_of({ idx })
    rows[#rows + 1] = { health = health, status = "open", index = idx.name, uuid = idx.uuid,
      pri = tostring(idx.nshards), rep = tostring(idx.replicas), ["docs.count"] = tostring(docs),
      ["docs.deleted"] = "0", ["store.size"] = "0b", ["pri.store.size"] = "0b", ["dataset.size"] = "0b" }
  end
  return cat(req, { "health", "status", "index", "uuid", "pri", "rep", "docs.count", "docs.deleted",
                    "store.size", "pri.store.size", "dataset.size" }, rows)
end

function M.search_shards(req)
  local indices, s, e = cluster_indices.of_request(req)
  if not indices then return s, e end
  local nodes = json.object()
  local port = req.opts.port or 9200
  local groups = json.array()
  local out_indices = json.object()
  local route = params.str(req.args, "routing")
  for _, idx in ipairs(indices) do
    out_indices[idx.name] = json.object()
    local only = route and cluster_shards.search_shards(idx, route)
    for i = 0, idx.nshards - 1 do
      if not only or only[i] then
        local shard = idx.shards[i]
        local addr = host_of(req) .. ":" .. (port + shard.node)
        nodes[node_id(shard.node)] = { name = node_name(shard.node), ephemeral_id = node_id(shard.node) .. "-e",
          transport_address = addr, external_id = "", attributes = json.object(), roles = { "data", "master" },
          version = version_number(req), min_index_version = 7000099, max_index_version = 8512000 }
        groups[#groups + 1] = { { index = idx.name, node = node_id(shard.node), relocating_node = json.null,
          primary = true, shard = i, state = "STARTED",
          allocation_id = { id = idx.uuid .. "-" .. i } } }
      end
    end
  end
  return 200, { nodes = nodes, indices = out_indices, shards = groups }
end

M.node_id = node_id
M.node_name = node_name
return M
