-- REST routing: path templates to handlers, with ES's answers for an unknown
-- path (400 "no handler found") and a known path with another method (405).
local stats = require("espipe.server.stats")
local url_params = require("espipe.server.url_params")
local flavors = require("espipe.server.flavors")

local M = {}

-- { methods, template, module, function[, needs] }; first match wins, so
-- literal routes come before {index} ones. needs = "pit=<kind>": the route
-- exists only where --flavor's wire has that point-in-time API (elsewhere the
-- path answers as unknown, as it would there).
local ROUTES = {
  { "GET HEAD", "/", "info", "root" },
  { "GET", "/_espipe/stats", "info", "stats" },
  { "POST", "/_espipe/stats/reset", "info", "stats_reset" },
  { "GET", "/_capabilities", "info", "capabilities" },
  { "GET", "/_cluster/settings", "cluster", "get_settings" },
  { "PUT", "/_cluster/settings", "cluster", "put_settings" },
  { "GET", "/_cluster/health", "info", "health" },
  { "GET", "/_cluster/health/{index}", "info", "health" },
  { "GET", "/_cluster/state/metadata/{index}", "info", "state_metadata" },
  { "GET", "/_cluster/state/metadata", "info", "state_metadata" },
  { "GET", "/_nodes", "info", "nodes" },
  { "GET", "/_nodes/http", "info", "nodes" },
  { "GET", "/_nodes/{metric}", "info", "nodes" },
  { "GET", "/_nodes/stats/{metric}", "bulk", "nodes_stats" },
  { "GET", "/_nodes/stats/{metric}/{sub}", "bulk", "nodes_stats" },
  { "GET", "/_cat/shards", "info", "cat_shards" },
  { "GET", "/_cat/shards/{index}", "info", "cat_shards" },
  { "GET", "/_cat/indices", "info", "cat_indices" },
  { "GET", "/_cat/indices/{index}", "info", "cat_indices" },
  { "GET POST", "/_search_shards", "info", "search_shards" },
  { "GET POST", "/{index}/_search_shards", "info", "search_shards" },

  { "POST PUT", "/_security/api_key", "security", "create_api_key" },
  { "DELETE", "/_security/api_key", "security", "invalidate_api_key" },
  { "GET", "/_security/_authenticate", "security", "authenticate_api" },

  { "POST PUT", "/_bulk", "bulk", "bulk" },
  { "POST PUT", "/{index}/_bulk", "bulk", "bulk" },

  { "GET POST", "/_search", "search", "search" },
  { "GET POST", "/{index}/_search", "search", "search" },
  { "GET POST", "/_msearch", "search", "msearch" },
  { "GET POST", "/{index}/_msearch", "search", "msearch" },
  { "GET POST", "/_search/scroll", "search", "scroll" },
  { "GET POST", "/_search/scroll/{scroll_id}", "search", "scroll" },
  { "DELETE", "/_search/scroll", "search", "clear_scroll" },
  { "DELETE", "/_search/scroll/{scroll_id}", "search", "clear_scroll" },
  { "POST", "/{index}/_pit", "search", "open_pit", "pit=elasticsearch" },
  { "DELETE", "/_pit", "search", "close_pit", "pit=elasticsearch" },
  { "POST", "/{index}/_search/point_in_time", "search", "open_pit", "pit=opensearch" },
  { "DELETE", "/_search/point_in_time", "search", "close_pit", "pit=opensearch" },
  { "GET POST", "/_count", "search", "count" },
  { "GET POST", "/{index}/_count", "search", "count" },

  { "POST", "/{index}/_delete_by_query", "by_query", "delete_by_query" },
  { "POST", "/{index}/_update_by_query", "by_query", "update_by_query" },
  { "GET", "/_tasks/{task_id}", "by_query", "get_task" },

  { "GET POST", "/_mget", "docs", "mget" },
  { "GET POST", "/{index}/_mget", "docs", "mget" },
  { "POST PUT", "/{index}/_doc", "docs", "index_auto" },
  { "GET HEAD", "/{index}/_doc/{id}", "docs", "get" },
  { "POST PUT", "/{index}/_doc/{id}", "docs", "index" },
  { "DELETE", "/{index}/_doc/{id}", "docs", "delete" },
  { "POST PUT", "/{index}/_create/{id}", "docs", "create" },
  { "GET HEAD", "/{index}/_source/{id}", "docs", "source" },
  { "POST", "/{index}/_update/{id}", "docs", "update" },

  { "PUT POST", "/_index_template/{name}", "templates", "put_index" },
  { "GET", "/_index_template", "templates", "get_index" },
  { "GET HEAD", "/_index_template/{name}", "templates", "get_index" },
  { "DELETE", "/_index_template/{name}", "templates", "delete_index" },
  { "PUT POST", "/_component_template/{name}", "templates", "put_component" },
  { "GET", "/_component_template", "templates", "get_component" },
  { "GET HEAD", "/_component_template/{name}", "templates", "get_component" },
  { "DELETE", "/_component_template/{name}", "templates", "delete_component" },
  { "PUT POST", "/_template/{name}", "templates", "put_legacy" },
  { "GET", "/_template", "templates", "get_legacy" },
  { "GET HEAD", "/_template/{name}", "templates", "get_legacy" },
  { "DELETE", "/_template/{name}", "templates", "delete_legacy" },
  { "PUT POST", "/_scripts/{id}", "scripts", "put" },
  { "GET", "/_scripts/{id}", "scripts", "get" },
  { "DELETE", "/_scripts/{id}", "scripts", "delete" },

  { "POST", "/_aliases", "indices", "update_aliases" },
  { "GET", "/_alias", "indices", "get_alias" },
  { "GET HEAD", "/_alias/{name}", "indices", "get_alias" },
  { "GET HEAD", "/{index}/_alias", "indices", "get_alias" },
  { "GET HEAD", "/{index}/_alias/{name}", "indices", "get_alias" },
  { "PUT POST", "/{index}/_alias/{name}", "indices", "put_alias" },
  { "PUT POST", "/{index}/_aliases/{name}", "indices", "put_alias" },
  { "DELETE", "/{index}/_alias/{name}", "indices", "delete_alias" },
  { "DELETE", "/{index}/_aliases/{name}", "indices", "delete_alias" },
  { "GET", "/_settings", "indices", "get_settings" },
  { "GET", "/{index}/_settings", "indices", "get_settings" },
  { "GET", "/{index}/_settings/{name}", "indices", "get_settings" },
  { "PUT", "/_settings", "indices", "put_settings" },
  { "PUT", "/{index}/_settings", "indices", "put_settings" },
  { "GET", "/_mapping", "indices", "get_mapping" },
  { "GET", "/{index}/_mapping", "indices", "get_mapping" },
  { "PUT POST", "/{index}/_mapping", "indices", "put_mapping" },
  { "GET POST", "/_refresh", "indices", "refresh" },
  { "GET POST", "/{index}/_refresh", "indices", "refresh" },
  { "POST", "/_forcemerge", "indices", "forcemerge" },
  { "POST", "/{index}/_forcemerge", "indices", "forcemerge" },
  { "GET", "/_stats", "stats", "stats" },
  { "GET", "/{index}/_stats", "stats", "stats" },
  { "POST", "/{index}/_close", "indices", "close" },
  { "POST", "/{index}/_open", "indices", "open" },
  { "PUT", "/{index}", "indices", "create" },
  { "GET", "/{index}", "indices", "get" },
  { "HEAD", "/{index}", "indices", "exists" },
  { "DELETE", "/{index}", "indices", "delete" },
}

local compiled = {}
for i, r in ipairs(ROUTES) do
  local segs = {}
  for seg in r[2]:gmatch("[^/]+") do
    local name = seg:match("^{(.+)}$")
    segs[#segs + 1] = name and { param = name } or { literal = seg }
  end
  local methods = {}
  for m in r[1]:gmatch("%S+") do methods[m] = true end
  compiled[i] = { segs = segs, methods = methods, module = r[3], fn = r[4], allowed = r[1],
                  needs_pit = r[5] and r[5]:match("^pit=(.+)$") }
end

local function split(path)
  local segs = {}
  for seg in path:gmatch("[^/]+") do segs[#segs + 1] = ngx and ngx.unescape_uri(seg) or seg end
  return segs
end

local function match(route, segs)
  if #route.segs ~= #segs then return nil end
  local params = {}
  for i, rs in ipairs(route.segs) do
    local s = segs[i]
    if rs.literal then
      if rs.literal ~= s then return nil end
    else
      -- an {index} never starts with '_' (those are APIs), except _all
      if rs.param == "index" and s:sub(1, 1) == "_" and s ~= "_all" then return nil end
      params[rs.param] = s
    end
  end
  return params
end

local modules = {}

function M.dispatch(req)
  stats.request(req.node)
  local segs = split(req.path)
  local allowed = {}
  local method = req.method
  local pit = flavors.wire_of(req.opts).pit
  for _, route in ipairs(compiled) do
    local params = (route.needs_pit == nil or route.needs_pit == pit) and match(route, segs)
    if params then
      if route.methods[method] then
        local us, ub = url_params.check(route.module, route.fn, req.path, req.args)
        if us then return us, ub end
        req.params = params
        local mod = modules[route.module]
        if not mod then
          mod = require("espipe.server.api_" .. route.module)
          modules[route.module] = mod
        end
        return mod[route.fn](req)
      end
      for m in route.allowed:gmatch("%S+") do allowed[#allowed + 1] = m end
    end
  end
  if #allowed > 0 then
    return 405, { error = "Incorrect HTTP method for uri [" .. req.path .. "] and method [" .. method
      .. "], allowed: [" .. table.concat(allowed, ", ") .. "]", status = 405 }
  end
  return 400, { error = "no handler found for uri [" .. req.path .. "] and method [" .. method .. "]",
                status = 400 }
end

return M
