-- Index management APIs: create/get/exists/delete, _settings, _mapping,
-- _refresh, _forcemerge and aliases (_aliases, _alias).
local json = require("espipe.server.json")
local es = require("espipe.server.es_errors")
local cluster = require("espipe.server.cluster")
local cluster_indices = require("espipe.server.cluster_indices")
local cluster_shards = require("espipe.server.cluster_shards")
local index_settings = require("espipe.server.index_settings")
local index_names = require("espipe.server.index_names")
local mapping = require("espipe.server.mapping")
local doc_types = require("espipe.server.doc_types")
local params = require("espipe.server.params")

local M = {}

local function nested_settings(idx)
  return index_settings.nest_settings(idx.settings)
end
M.nested_settings = nested_settings

-- 200 and { [index name] = view(idx) } over the indices the request names
-- | status, error body
function M.views(req, view)
  local indices, s, e = cluster_indices.of_request(req)
  if not indices then return s, e end
  local out = json.object()
  for _, idx in ipairs(indices) do out[idx.name] = view(idx) end
  return 200, out
end

-- the body and the indices of a PUT | nil, status, error body
local function body_and_indices(req)
  local body, s, e = params.body(req, true)
  if not body then return nil, s, e end
  local indices
  indices, s, e = cluster_indices.of_request(req)
  if not indices then return nil, s, e end
  return body, indices
end

local function settings_of(idx, flat)
  if flat then
    local out = json.object()
    for k, v in pairs(idx.settings) do out["index." .. k] = v end
    return out
  end
  return { index = nested_settings(idx) }
end

local function aliases_of(idx)
  local out = json.object()
  for a, props in pairs(idx.aliases) do out[a] = next(props) and props or json.object() end
  return out
end

local ALIAS_PROPS = { "filter", "routing", "index_routing", "search_routing", "is_write_index", "is_hidden" }

-- an alias name as MetadataCreateIndexService/AliasValidator check it
local function invalid_alias(name)
  local function bad(why)
    return es.fail(400, "invalid_alias_name_exception", "Invalid alias name [" .. name .. "]" .. why,
      { index_uuid = "_na_", index = name })
  end
  if cluster.state.indices[name] then
    return bad(", an index or data stream exists with the same name as the alias")
  end
  local s, e = cluster_indices.validate_index_name(name)
  if s then
    local why = e.error.reason:match("^Invalid index name %[.-%](, .*)$") or ""
    -- aliases may hold upper case letters
    if not why:find("lowercase", 1, true) then return bad(why) end
  end
  return nil
end
M.invalid_alias = invalid_alias

local function alias_props(a)
  local props = {}
  for _, k in ipairs(ALIAS_PROPS) do if a[k] ~= nil then props[k] = a[k] end end
  if props.routing then
    props.index_routing = props.index_routing or props.routing
    props.search_routing = props.search_routing or props.routing
    props.routing = nil
  end
  return props
end

function M.create(req)
  local name, derr = index_names.date_math(req.params.index)
  if not name then return es.bad_request(derr) end
  local body, s, e = params.body(req)
  if body == false then return s, e end
  if type(body) == "table" and type(body.aliases) == "table" then
    local aliases = {}
    for a, props in pairs(body.aliases) do
      local resolved, aerr = index_names.date_math(a)
      if not resolved then return es.bad_request(aerr) end
      s, e = invalid_alias(resolved)
      if s then return s, e end
      aliases[resolved] = type(props) == "table" and alias_props(props) or props
    end
    body.aliases = aliases
  end
  local doc_type
  if type(body) == "table" then
    local m, t, eb = doc_types.untyped(req, body.mappings)
    if m == nil and eb then return t, eb end
    body.mappings, doc_type = m, t
  end
  local idx
  idx, s, e = cluster_indices.create_index(name, body)
  if not idx then return s, e end
  if doc_type then
    idx.doc_type = doc_type
    cluster.persist_meta(idx)
  end
  return 200, { acknowledged = true, shards_acknowledged = true, index = name }
end

function M.get(req)
  local indices, s, e = cluster_indices.of_request(req)
  if not indices then return s, e end
  local flat = params.flag(req.args, "flat_settings", false)
  local out = json.object()
  for _, idx in ipairs(indices) do
    cluster_shards.settle_mapping(idx)
    out[idx.name] = { aliases = aliases_of(idx), mappings = doc_types.answer(req, idx, mapping.to_table(idx.mapping)),
                      settings = settings_of(idx, flat) }
  end
  return 200, out
end

function M.exists(req)
  local indices = cluster_indices.of_request(req)
  if not indices or #indices == 0 then return 404, "" end
  return 200, ""
end

-- Deleting never reaches an index through an alias: an alias named outright
-- is refused, and wildcards match index names only (open and closed).
function M.delete(req)
  local indices, s, e = cluster_indices.of_request(req,
    { expand_wildcards = "open,closed", wildcard_aliases = false, concrete_aliases = false })
  if not indices then return s, e end
  for _, idx in ipairs(indices) do cluster_indices.delete_index(idx) end
  return 200, { acknowledged = true }
end

-- _close / _open: a closed index keeps its documents and refuses reads and
-- writes with index_closed_exception
local function set_closed(req, closed)
  local indices, s, e = cluster_indices.of_request(req, { expand_wildcards = closed and "open" or "closed" })
  if not indices then return s, e end
  local shards_acked = json.object()
  for _, idx in ipairs(indices) do
    idx.closed = closed or nil
    shards_acked[idx.name] = { closed = true }
  end
  if closed then
    return 200, { acknowledged = true, shards_acknowledged = true, indices = shards_acked }
  end
  return 200, { acknowledged = true, shards_acknowledged = true }
end

function M.close(req) return set_closed(req, true) end
function M.open(req) return set_closed(req, false) end

function M.get_settings(req)
  local flat = params.flag(req.args, "flat_settings", false)
  return M.views(req, function(idx) return { settings = settings_of(idx, flat) } end)
end

function M.put_settings(req)
  local body, indices, e = body_and_indices(req)
  if not body then return indices, e end
  local settings = body.settings or body
  for _, idx in ipairs(indices) do
    local s, c = cluster_indices.update_settings(idx, settings)
    if s then return s, c end
  end
  return 200, { acknowledged = true }
end

function M.get_mapping(req)
  return M.views(req, function(idx)
    cluster_shards.settle_mapping(idx)
    return { mappings = doc_types.answer(req, idx, mapping.to_table(idx.mapping)) }
  end)
end

function M.put_mapping(req)
  local body, indices, e = body_and_indices(req)
  if not body then return indices, e end
  for _, idx in ipairs(indices) do
    cluster_shards.settle_mapping(idx)
    local err, kind = mapping.put(idx.mapping, body)
    if err then return es.fail(400, kind or "illegal_argument_exception", err) end
    cluster.persist_meta(idx)
  end
  return 200, { acknowledged = true }
end

local function shards_header(indices)
  local total, ok = 0, 0
  for _, idx in ipairs(indices) do
    local t, o = cluster.shards_info(idx)
    total = total + idx.nshards * t
    ok = ok + idx.nshards * o
  end
  return { total = total, successful = ok, failed = 0 }
end

function M.refresh(req)
  local indices, s, e = cluster_indices.of_request(req)
  if not indices then return s, e end
  for _, idx in ipairs(indices) do cluster_shards.refresh(idx) end
  return 200, { _shards = shards_header(indices) }
end

function M.forcemerge(req)
  local indices, s, e = cluster_indices.of_request(req)
  if not indices then return s, e end
  if req.args.wait_for_completion == "false" then
    return 200, { task = "espipe-node-0:1" }
  end
  return 200, { _shards = shards_header(indices) }
end

------------------------------------------------------------------------
-- aliases

local function list_of(v)
  if v == nil then return {} end
  if type(v) == "table" then return v end
  return { v }
end


-- the indices an alias action names (expressions resolved) | nil, status, body
local function action_indices(given)
  local indices = {}
  for _, n in ipairs(given) do
    local found, s, e = cluster_indices.resolve(n)
    if not found then return nil, s, e end
    for _, idx in ipairs(found) do indices[#indices + 1] = idx end
  end
  if #indices == 0 then return nil, es.validation({ "One of [index] or [indices] is required" }) end
  return indices
end

-- a remove naming no alias any of its indices has: nil when some has one,
-- else the action's error (a 404 response with must_exist)
local function missing_aliases(indices, alias_names, must_exist)
  for _, idx in ipairs(indices) do
    for _, an in ipairs(alias_names) do if idx.aliases[an] then return nil end end
  end
  local names = table.concat(alias_names, ",")
  if must_exist == true then
    return true, es.fail(404, "aliases_not_found_exception", "aliases [" .. names .. "] missing",
      { ["resource.type"] = "aliases", ["resource.id"] = names })
  end
  return { type = "aliases_not_found_exception", reason = "aliases [" .. names .. "] missing" }
end

-- one action checked: its step and its result | nil, status, body
local function check_action(action)
  local kind, a = next(action)
  if kind ~= "add" and kind ~= "remove" and kind ~= "remove_index" then
    return nil, es.bad_request("Unknown action [" .. tostring(kind) .. "]")
  end
  local given, alias_names = list_of(a.indices or a.index), list_of(a.aliases or a.alias)
  if kind == "add" then
    for _, an in ipairs(alias_names) do
      local s, e = invalid_alias(an)
      if s then return nil, s, e end
    end
  end
  local indices, s, e = action_indices(given)
  if not indices then return nil, s, e end
  if kind ~= "remove_index" and #alias_names == 0 then
    return nil, es.validation({ "One of [alias] or [aliases] is required" })
  end
  local result = { action = { type = kind, indices = given, aliases = alias_names }, status = 200 }
  if kind == "remove" then
    local missing, ms, mb = missing_aliases(indices, alias_names, a.must_exist)
    if missing == true then return nil, ms, mb end
    if missing then result.status, result.error = 404, missing end
  end
  return { kind = kind, indices = indices, aliases = alias_names, props = alias_props(a) }, result
end

local function apply_step(step)
  for _, idx in ipairs(step.indices) do
    if step.kind == "add" then
      for _, an in ipairs(step.aliases) do idx.aliases[an] = step.props end
    elseif step.kind == "remove" then
      for _, an in ipairs(step.aliases) do idx.aliases[an] = nil end
    else
      cluster_indices.delete_index(idx)
    end
    if step.kind ~= "remove_index" then cluster.persist_meta(idx) end
  end
end

function M.update_aliases(req)
  local body, s, e = params.body(req, true)
  if not body then return s, e end
  if type(body.actions) ~= "table" then
    return es.validation({ "no alias actions specified" })
  end
  -- check everything first: the request applies atomically
  local plan, results, errors = {}, json.array(), false
  for _, action in ipairs(body.actions) do
    local step, result, b = check_action(action)
    if not step then return result, b end
    errors = errors or result.status ~= 200
    results[#results + 1] = result
    plan[#plan + 1] = step
  end
  for _, step in ipairs(plan) do apply_step(step) end
  if errors then return 200, { acknowledged = true, errors = true, action_results = results } end
  return 200, { acknowledged = true, errors = false }
end

-- GET _alias: every index (open or closed) with the aliases asked for; names
-- (not patterns) that match no alias make it a 404 that still lists the rest
function M.get_alias(req)
  local indices, s, e = cluster_indices.of_request(req, { expand_wildcards = "all" })
  if not indices then return s, e end
  local want = req.params.name
  local any_alias = want == "_all" or want == "*"
  if any_alias then want = nil end
  local pats, seen = {}, {}
  for w in (want or ""):gmatch("[^,]+") do
    pats[#pats + 1] = { name = w, pat = "^" .. w:gsub("[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0"):gsub("%*", ".*") .. "$" }
  end
  local out = json.object()
  for _, idx in ipairs(indices) do
    local aliases = json.object()
    for a, props in pairs(idx.aliases) do
      local hit = not want
      for _, p in ipairs(pats) do if a:match(p.pat) then hit = true; seen[p.name] = true end end
      if hit then aliases[a] = next(props) and props or json.object() end
    end
    if (not want and not any_alias) or next(aliases) then out[idx.name] = { aliases = aliases } end
  end
  local missing = {}
  for _, p in ipairs(pats) do
    if not seen[p.name] and not p.name:find("*", 1, true) then missing[#missing + 1] = p.name end
  end
  if want and (#missing > 0 or not next(out)) then
    if req.method == "HEAD" then return 404, "" end
    table.sort(missing)
    if #missing == 0 then missing = { want } end
    out.error = (#missing > 1 and "aliases [" or "alias [") .. table.concat(missing, ",") .. "] missing"
    out.status = 404
    return 404, out
  end
  if req.method == "HEAD" then return 200, "" end
  return 200, out
end

function M.put_alias(req)
  local body, s, e = params.body(req)
  if body == false then return s, e end
  local indices
  indices, s, e = cluster_indices.of_request(req)
  if not indices then return s, e end
  s, e = invalid_alias(req.params.name)
  if s then return s, e end
  for _, idx in ipairs(indices) do
    idx.aliases[req.params.name] = alias_props(body or {})
    cluster.persist_meta(idx)
  end
  return 200, { acknowledged = true }
end

function M.delete_alias(req)
  local indices, s, e = cluster_indices.of_request(req)
  if not indices then return s, e end
  local any = false
  for _, idx in ipairs(indices) do
    for an in req.params.name:gmatch("[^,]+") do
      if idx.aliases[an] then
        idx.aliases[an] = nil
        any = true
        cluster.persist_meta(idx)
      end
    end
  end
  if not any then
    return es.fail(404, "aliases_not_found_exception", "aliases [" .. req.params.name .. "] missing",
      { ["resource.type"] = "aliases", ["resource.id"] = req.params.name })
  end
  return 200, { acknowledged = true }
end

return M
