-- The dev server's indices: names, creation (templates, settings, mappings,
-- aliases, shards), deletion, settings updates, aliases and the resolution
-- of index expressions and write targets, with ES's errors.
--
-- create_index(name, body[, restore]) -> idx | nil, status, error body
-- resolve(expr[, opts]) -> list of indices (sorted, unique) | nil, status, body
--   expr: "a,b*,alias,<logs-{now/d}>" / "_all" / "*" / nil; opts: the index
--   options (espipe.server.index_names)
-- of_request(req[, defaults]) -> resolve of the request's {index} and options
-- write_target(name) -> idx, alias props | nil, status, body | false (absent)
-- index_for_write(name, auto_create) -> idx, alias props | nil, status, body
local json = require("espipe.server.json")
local mapping = require("espipe.server.mapping")
local persist = require("espipe.server.persist")
local es = require("espipe.server.es_errors")
local index_names = require("espipe.server.index_names")
local index_settings = require("espipe.server.index_settings")
local templates = require("espipe.server.templates")
local cluster = require("espipe.server.cluster")
local cluster_shards = require("espipe.server.cluster_shards")

local M = {}

local state = cluster.state

------------------------------------------------------------------------
-- names

local BAD_CHARS = '[\\/%*%?"<>| ,#:]'

local function bad_name(name, why)
  return es.fail(400, "invalid_index_name_exception", "Invalid index name [" .. name .. "], " .. why,
    { index_uuid = "_na_", index = name })
end

-- nil, or the 400 status and body naming what is wrong with the name
function M.validate_index_name(name)
  if name == "" then return bad_name(name, "must not be empty") end
  if name:find(BAD_CHARS) then
    return bad_name(name,
      'must not contain the following characters [\' \',\'"\',\'*\',\'\\\',\'<\',\'|\',\',\',\'>\',\'/\',\'?\']')
  end
  if name:match("^[_%-+]") then return bad_name(name, "must not start with '_', '-', or '+'") end
  if name ~= name:lower() then return bad_name(name, "must be lowercase") end
  if name == "." or name == ".." then return bad_name(name, "must not be '.' or '..'") end
  if #name > 255 then
    return bad_name(name, "index name is too long, (" .. #name .. " > 255)")
  end
  return nil
end

------------------------------------------------------------------------
-- creation

-- nil, or why a new index cannot have this name (restore: only if taken)
local function refuse_name(name, restore)
  if not restore then
    local s, e = M.validate_index_name(name)
    if s then return s, e end
  end
  local existing = state.indices[name]
  if existing then
    return es.fail(400, "resource_already_exists_exception",
      "index [" .. name .. "/" .. existing.uuid .. "] already exists",
      { index_uuid = existing.uuid, index = name })
  end
  if not restore and M.alias_indices(name) then
    return bad_name(name, "an alias with the same name already exists")
  end
end

-- the settings an index shows after creation
local function shown_settings(idx, flat, name)
  flat.number_of_routing_shards = nil -- ES drops it after creation
  flat.number_of_shards = tostring(idx.nshards)
  flat.number_of_replicas = tostring(idx.replicas)
  flat.uuid = idx.uuid
  flat["version.created"] = idx.version_created
  flat.creation_date = tostring(idx.created)
  flat.provided_name = name
  for k, v in pairs(flat) do if v == json.null then flat[k] = nil end end
  return flat
end

local function add_aliases(idx, aliases)
  if aliases == nil then return true end
  if type(aliases) ~= "table" then return nil, es.bad_request("[aliases] must be an object") end
  for a, props in pairs(aliases) do
    idx.aliases[a] = type(props) == "table" and props or {}
  end
  return true
end

-- shard_nodes: the nodes a restored index's shards were on
local function add_shards(idx, shard_nodes)
  for i = 0, idx.nshards - 1 do
    idx.shards[i] = cluster_shards.new_shard(idx, i)
    if shard_nodes then idx.shards[i].node = (shard_nodes[i + 1] or 0) % state.node_count end
  end
  idx.shard_nodes = json.array()
  for i = 0, idx.nshards - 1 do idx.shard_nodes[i + 1] = idx.shards[i].node end
end

-- restore: the definition comes from --data (no name checks, no templates)
function M.create_index(name, body, restore)
  local s, e = refuse_name(name, restore)
  if s then return nil, s, e end
  if not restore then body = templates.apply(name, body) end
  body = body or {}
  if type(body) ~= "table" then return nil, es.parse_error("request body must be an object") end
  local flat = index_settings.flat_settings(body.settings)
  if restore and body.routing_shards then
    flat.number_of_routing_shards = tostring(body.routing_shards)
  end
  local idx = {
    name = name, uuid = restore and body.uuid or cluster.new_uuid(),
    created = restore and body.created or math.floor(cluster.now() * 1000),
    aliases = {}, shards = {}, pending_sources = {},
  }
  local err = index_settings.apply(idx, flat, true)
  if err then return nil, es.bad_request(err) end
  local m, merr, mkind = mapping.new(body.mappings)
  if not m then return nil, es.fail(400, mkind or "mapper_parsing_exception", merr) end
  if restore and body.check ~= nil then m.check = body.check end
  idx.mapping = m
  idx.settings = shown_settings(idx, flat, name)
  local ok
  ok, s, e = add_aliases(idx, body.aliases)
  if not ok then return nil, s, e end
  add_shards(idx, restore and body.shard_nodes)
  state.indices[name] = idx
  if not restore then cluster.persist_meta(idx) end
  return idx
end

function M.delete_index(idx)
  state.indices[idx.name] = nil
  if persist.enabled() then
    cluster.queue_meta { op = "delete", name = idx.name, uuid = idx.uuid }
    persist.remove(idx.uuid .. ".log")
    state.pending[idx.uuid .. ".log"] = nil
  end
end

-- nil, or the 400 status and body of a refused update
function M.update_settings(idx, body)
  local flat = index_settings.flat_settings(body)
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
  local err = index_settings.apply(idx, merged, false)
  if err then return es.bad_request(err) end
  if merged.number_of_replicas == nil then merged.number_of_replicas = "1" end
  idx.settings = merged
  cluster.persist_meta(idx)
  return nil
end

------------------------------------------------------------------------
-- aliases and expressions

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

function M.sorted_names()
  local names = {}
  for name in pairs(state.indices) do names[#names + 1] = name end
  table.sort(names)
  return names
end

function M.resolve(expr, opts)
  return index_names.resolve(state.indices, M.alias_indices, expr, opts)
end

-- the indices a request's {index} names, under its index options (query
-- parameters over an API's defaults)
function M.of_request(req, defaults)
  return M.resolve(req.params.index, index_names.options(req.args, defaults))
end

-- the write index of an alias pointing at names | nil
local function alias_write_index(name, names)
  if #names == 1 then
    local props = state.indices[names[1]].aliases[name]
    if props.is_write_index ~= false then return names[1] end
    return nil
  end
  local target
  for _, n in ipairs(names) do
    if state.indices[n].aliases[name].is_write_index == true then target = n end
  end
  return target
end

function M.write_target(name)
  local idx = state.indices[name]
  if idx then return idx end
  local names = M.alias_indices(name)
  if not names then return false end
  local target = alias_write_index(name, names)
  if not target then
    return nil, es.bad_request("no write index is defined for alias [" .. name .. "]. The write index may be "
      .. "explicitly disabled using is_write_index=false or the alias points to multiple indices without one "
      .. "being designated as a write index")
  end
  return state.indices[target], state.indices[target].aliases[name]
end

function M.index_for_write(name, auto_create)
  local idx, a, b = M.write_target(name)
  if idx then return idx, a end
  if idx == nil then return nil, a, b end
  if not auto_create then return nil, es.index_not_found(name) end
  local created, s, e = M.create_index(name, nil)
  if not created then return nil, s, e end
  return created
end

return M
