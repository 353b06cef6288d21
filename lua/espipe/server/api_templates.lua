-- REST handlers of _index_template, _component_template and _template
-- (PUT/POST, GET, HEAD, DELETE), over espipe.server.templates.
local json = require("espipe.server.json")
local es = require("espipe.server.es_errors")
local params = require("espipe.server.params")
local templates = require("espipe.server.templates")
local index_settings = require("espipe.server.index_settings")
local meta_records = require("espipe.server.meta_records")

local M = {}

local null = json.null

-- flat settings { number_of_shards = "1" } as ES shows them: { index = { number_of_shards = "1" } }
local function nested_settings(t)
  local shown = {}
  if type(t) == "table" and t ~= null then
    for k, v in pairs(index_settings.flat_settings(t)) do shown["index." .. k] = v end
  end
  return index_settings.nest_settings(shown)
end

local function template_view(t)
  local out = json.object()
  if type(t) ~= "table" or t == null then return out end
  if t.settings ~= nil then out.settings = nested_settings(t.settings) end
  if t.mappings ~= nil then out.mappings = t.mappings end
  if t.aliases ~= nil then out.aliases = t.aliases end
  return out
end

-- a definition (def, nil when deleted) into --data
local function remember(kind, name, def)
  meta_records.queue({ op = "template", kind = kind, name = name, def = def })
end

-- PUT of a template of a kind ("index", "component", "legacy")
local function put_with(kind, store_fn, req)
  local body, s, e = params.body(req, true)
  if not body then return s, e end
  local create, cs, ce = params.flag(req.args, "create", false)
  if create == nil then return cs, ce end
  local name = req.params.name
  local status, cause = store_fn(name, body, create)
  if status then return es.envelope(status, cause) end
  remember(kind, name, templates[kind][name])
  return 200, { acknowledged = true }
end

local function not_found(kind, name)
  return es.fail(404, "resource_not_found_exception", kind .. " matching [" .. name .. "] not found")
end

-- names to show: all, or those matching; nil when a concrete name is missing
local function selected(store, req)
  local expr = req.params.name
  local names = templates.matching_names(store, expr)
  if expr and #names == 0 and not expr:find("*", 1, true) then return nil end
  return names
end

------------------------------------------------------------------------
-- composable index templates

function M.put_index(req) return put_with("index", templates.put_index, req) end

local function index_view(t)
  local view = json.object({ index_patterns = t.index_patterns, composed_of = json.array(t.composed_of or {}) })
  if t.template ~= nil then view.template = template_view(t.template) end
  for _, k in ipairs({ "priority", "version", "_meta", "allow_auto_create" }) do
    if t[k] ~= nil then view[k] = t[k] end
  end
  return view
end

-- GET/HEAD of a composable or component template listing:
-- { <list_key> = [{ name =, <item_key> = view }] }
local function listing(store, req, kind, list_key, item_key, view_of)
  local names = selected(store, req)
  if not names then return not_found(kind, req.params.name) end
  if req.method == "HEAD" then return #names > 0 and 200 or 404, "" end
  local list = json.array()
  for _, name in ipairs(names) do list[#list + 1] = { name = name, [item_key] = view_of(store[name]) } end
  return 200, { [list_key] = list }
end

-- DELETE of the matching names; missing() answers when none matches,
-- blocked(name) may refuse one
local function delete_from(kind, req, missing, blocked)
  local store = templates[kind]
  local names = templates.matching_names(store, req.params.name)
  if #names == 0 then return missing(req.params.name) end
  for _, n in ipairs(names) do
    if blocked then
      local s, e = blocked(n)
      if s then return s, e end
    end
  end
  for _, n in ipairs(names) do
    store[n] = nil
    remember(kind, n, nil)
  end
  return 200, { acknowledged = true }
end

-- the 404 of a DELETE naming no index (or legacy) template
local function missing_template(type_)
  return function(name) return es.fail(404, type_, "index_template [" .. name .. "] missing") end
end

function M.get_index(req)
  return listing(templates.index, req, "index template", "index_templates", "index_template", index_view)
end

function M.delete_index(req)
  return delete_from("index", req, missing_template("resource_not_found_exception"))
end

------------------------------------------------------------------------
-- component templates

function M.put_component(req) return put_with("component", templates.put_component, req) end

local function component_view(t)
  local view = json.object({ template = template_view(t.template) })
  if t.version ~= nil then view.version = t.version end
  if t._meta ~= nil then view._meta = t._meta end
  return view
end

function M.get_component(req)
  return listing(templates.component, req, "component template", "component_templates", "component_template",
    component_view)
end

function M.delete_component(req)
  return delete_from("component", req, function(name)
    return es.fail(404, "resource_not_found_exception", name)
  end, function(n)
    local users = templates.component_users(n)
    if #users == 0 then return nil end
    return es.bad_request("component templates [" .. n .. "] cannot be removed as they are still in use by "
      .. "index templates [" .. table.concat(users, ", ") .. "]")
  end)
end

------------------------------------------------------------------------
-- legacy templates

function M.put_legacy(req) return put_with("legacy", templates.put_legacy, req) end

function M.get_legacy(req)
  local names = selected(templates.legacy, req)
  if req.method == "HEAD" then return names and #names > 0 and 200 or 404, "" end
  if not names then return 404, json.object() end
  local out = json.object()
  for _, name in ipairs(names) do
    local t = templates.legacy[name]
    local view = template_view(t)
    out[name] = { order = t.order or 0, version = t.version, index_patterns = t.index_patterns,
                  settings = view.settings or json.object(), mappings = view.mappings or json.object(),
                  aliases = view.aliases or json.object() }
  end
  return 200, out
end

function M.delete_legacy(req)
  return delete_from("legacy", req, missing_template("index_template_missing_exception"))
end

return M
