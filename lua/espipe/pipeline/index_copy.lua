-- Destination indices made from the source's own settings and mappings
-- (reindex --create-index-from-source), across releases: what the
-- destination's release does not know or refuses is left out, and named.
--
--   index_copy.run(src_setup, dst_setup, source, dest) -> report | nil, err
--     source: an index, alias or pattern (logs-*) on the source cluster
--     dest:   one destination index for all of them (created from the first
--             source index in name order), or nil: one per source index,
--             under the same name
--     report = { created = { { name =, from = }, ... }, existing = { name, ... },
--                dropped = { "index.uuid", "mappings: type level [doc]", ... } }
--   Both clients' versions must be known (espipe.pipeline.versions.read).
--   An index that exists already is left as it is (listed in existing).
local version = require "espipe.client.version"
local wire = require "espipe.client.wire"
local segment = require("espipe.client.url").segment

local M = {}

-- Settings an index gets from its cluster, which a create request may not
-- set (private to Elasticsearch) or which describe the source index itself.
local OWN = { "index.uuid", "index.creation_date", "index.provided_name", "index.version.",
  "index.resize.", "index.shrink.", "index.routing.allocation.initial_recovery.",
  "index.verified_before_close", "index.history.uuid", "index.blocks.write" }

local function own_setting(key)
  for _, p in ipairs(OWN) do
    if key == p or (p:sub(-1) == "." and key:sub(1, #p) == p) then return true end
  end
  return false
end

local function elasticsearch_from(dest, major, minor)
  return dest.distribution ~= "opensearch" and (dest.major > major or dest.major == major and dest.minor >= minor)
end

-- What the destination's release refuses or would misread: soft deletes
-- can no longer be turned off from Elasticsearch 8 and OpenSearch 2; data
-- tiers (_tier_preference, Elasticsearch 7.10+) elsewhere read as a node
-- attribute no node has, leaving every shard unassigned; OpenSearch has no
-- index lifecycle (index.lifecycle.*, Elasticsearch's ILM) settings.
local function refused_by(dest, key, value)
  if key == "index.soft_deletes.enabled" and tostring(value) == "false" then
    return dest.distribution == "opensearch" and dest.major >= 2 or elasticsearch_from(dest, 8, 0)
  end
  if key == "index.routing.allocation.include._tier_preference" then return not elasticsearch_from(dest, 7, 10) end
  if key:sub(1, 16) == "index.lifecycle." then return dest.distribution == "opensearch" end
  return false
end

-- A copy of the settings tree without the values the destination must not
-- get (each one's dotted name into dropped); a branch left empty goes too.
local function kept(node, path, dest, dropped)
  local out = {}
  for k, v in pairs(node) do
    local key = path .. k
    if type(v) == "table" and v[1] == nil and next(v) ~= nil then
      local sub = kept(v, key .. ".", dest, dropped)
      if next(sub) ~= nil then out[k] = sub end
    elseif own_setting(key) or refused_by(dest, key, v) then
      dropped[key] = true
    else
      out[k] = v
    end
  end
  return out
end

-- The settings to create with, and the keys left out into dropped (a set).
local function settings_for(dest, settings, dropped)
  return kept(settings or {}, "", dest, dropped)
end

-- 6.x mapping parts that no later release takes
local LEGACY_MAPPING = { "_all", "_default_" }

-- The mappings to create with on dest: without the source's type level
-- (source_type) unless dest keeps types (6.x: under source_type, or _doc).
local function mappings_for(dest, mappings, source_type, dropped)
  local out = {}
  for k, v in pairs(mappings or {}) do out[k] = v end
  local keeps_types = wire.bulk_type(dest) ~= nil
  if not keeps_types then
    for _, k in ipairs(LEGACY_MAPPING) do
      if out[k] ~= nil then out[k], dropped["mappings." .. k] = nil, true end
    end
    if source_type then dropped["mappings: type level [" .. source_type .. "]"] = true end
    return out
  end
  return { [source_type or wire.bulk_type(dest)] = out }
end

-- GET /{source}/_mapping as sent: index -> mappings, and the type each sat under (6.x)
local function source_mappings(src, source)
  local answer, err = src.client:json_request_retrying({ method = "GET",
    path = "/" .. segment(source, "index", 4) .. "/_mapping" }, src.policy)
  if not answer then return nil, err end
  local types = {}
  if wire.bulk_type(version.known(src.client)) then
    for name, entry in pairs(answer) do
      local m = type(entry) == "table" and entry.mappings
      if type(m) == "table" then types[name] = next(m) end
    end
    wire.untyped_mappings(version.known(src.client), answer)
  end
  return answer, types
end

local function sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- Creates target from source index `name`, unless it exists.
local function copy_one(src_entry, dst, target, name, source_type, report, dropped)
  local exists, err = dst:exists(target)
  if exists == nil then return nil, err end
  if exists then
    report.existing[#report.existing + 1] = target
    return true
  end
  local dest = version.known(dst.client)
  local body = { settings = settings_for(dest, src_entry.settings, dropped),
                 mappings = mappings_for(dest, src_entry.mappings, source_type, dropped) }
  local ok, cerr = dst:create(target, body)
  if not ok then return nil, cerr end
  report.created[#report.created + 1] = { name = target, from = name }
  return true
end

function M.run(src, dst, source, dest)
  local settings, serr = src:get(source, "_settings")
  if not settings then return nil, serr end
  local mappings, types = source_mappings(src, source)
  if not mappings then return nil, types end
  local report, dropped = { created = {}, existing = {} }, {}
  local names = sorted_keys(settings)
  if #names == 0 then
    return nil, require("espipe.client.errors").new { kind = "config", message = "no source index matches " .. source }
  end
  for i, name in ipairs(names) do
    if dest and i > 1 then break end -- one destination: made from the first
    local entry = { settings = settings[name].settings, mappings = (mappings[name] or {}).mappings }
    local ok, err = copy_one(entry, dst, dest or name, name, types[name], report, dropped)
    if not ok then return nil, err end
  end
  report.dropped = sorted_keys(dropped)
  return report
end

return M
