-- client.indices: create/delete/exists/get, settings, mappings, aliases.
-- Bound to a client: client.indices:create{ index =, settings =, mappings = }.
local api = require("espipe.client.api")
local url = require("espipe.client.url")

local setmetatable = setmetatable
local define, index_path, need, plus, segment = api.define, api.index_path, api.need, api.plus, url.segment

local Indices = {}
Indices.__index = Indices

local M = {}

function M.bind(client)
  return setmetatable({ client = client }, Indices)
end

local MASTER = { "timeout", "master_timeout" }
local WILDCARDS = { "allow_no_indices", "ignore_unavailable", "expand_wildcards" }

-- {index}/{what}[/{name}]: the optional index, then the optional name.
local function named_path(api_name, what)
  return function(p)
    local path = index_path(p, api_name, true) .. what
    if p.name ~= nil then path = path .. "/" .. segment(p.name, "index", 3) end
    return path
  end
end

-- indices:create{ index =, settings =, mappings =, aliases = } or { index =, body = }
define(Indices, "create", {
  method = "PUT", taken = { "index", "body", "settings", "mappings", "aliases" },
  query = plus(MASTER, { "wait_for_active_shards" }),
  path = function(p) return index_path(p, "indices.create") end,
  body = function(p)
    if p.body ~= nil then return p.body end
    if p.settings == nil and p.mappings == nil and p.aliases == nil then return nil end
    return { settings = p.settings, mappings = p.mappings, aliases = p.aliases }
  end,
})

define(Indices, "delete", {
  method = "DELETE", taken = { "index" }, query = plus(MASTER, WILDCARDS),
  path = function(p) return index_path(p, "indices.delete") end,
})

define(Indices, "exists", {
  method = "HEAD", taken = { "index" }, exists = true,
  query = plus(WILDCARDS, { "local", "flat_settings", "include_defaults" }),
  path = function(p) return index_path(p, "indices.exists") end,
})

define(Indices, "get", {
  method = "GET", taken = { "index" },
  query = plus(WILDCARDS, { "local", "flat_settings", "include_defaults", "master_timeout" }),
  path = function(p) return index_path(p, "indices.get") end,
})

define(Indices, "get_settings", {
  method = "GET", taken = { "index", "name" },
  query = plus(WILDCARDS, { "local", "flat_settings", "include_defaults", "master_timeout" }),
  path = named_path("indices.get_settings", "/_settings"),
})

define(Indices, "put_settings", {
  method = "PUT", taken = { "index", "body", "settings" },
  query = plus(plus(MASTER, WILDCARDS), { "preserve_existing", "flat_settings" }),
  path = function(p) return index_path(p, "indices.put_settings", true) .. "/_settings" end,
  body = function(p)
    local b = p.body or p.settings
    if b == nil then error("client:indices.put_settings needs settings or body", 4) end
    return b
  end,
})

define(Indices, "get_mapping", {
  method = "GET", taken = { "index" }, query = plus(WILDCARDS, { "local", "master_timeout" }),
  path = function(p) return index_path(p, "indices.get_mapping", true) .. "/_mapping" end,
})

define(Indices, "put_mapping", {
  method = "PUT", taken = { "index", "body", "properties", "dynamic" },
  query = plus(plus(MASTER, WILDCARDS), { "write_index_only" }),
  path = function(p) return index_path(p, "indices.put_mapping") .. "/_mapping" end,
  body = function(p)
    if p.body ~= nil then return p.body end
    if p.properties == nil and p.dynamic == nil then
      error("client:indices.put_mapping needs properties, dynamic or body", 4)
    end
    return { properties = p.properties, dynamic = p.dynamic }
  end,
})

-- indices:update_aliases{ actions = { { add = { index =, alias = } }, ... } }
define(Indices, "update_aliases", {
  method = "POST", taken = { "actions", "body" }, query = MASTER,
  path = function() return "/_aliases" end,
  body = function(p)
    if p.body ~= nil then return p.body end
    return { actions = need(p, "actions", "indices.update_aliases") }
  end,
})

-- indices:get_alias{ index =?, name =? }
define(Indices, "get_alias", {
  method = "GET", taken = { "index", "name" }, query = plus(WILDCARDS, { "local" }),
  path = named_path("indices.get_alias", "/_alias"),
})

define(Indices, "refresh", {
  method = "POST", taken = { "index" }, query = WILDCARDS,
  path = function(p) return index_path(p, "indices.refresh", true) .. "/_refresh" end,
})

return M
