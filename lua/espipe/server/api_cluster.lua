-- Cluster-level settings: GET/PUT _cluster/settings keep persistent and
-- transient settings (flat keys; null removes one) and echo them as ES
-- does. search.max_keep_alive and search.default_keep_alive are honoured by
-- scroll and point in time (M.setting).
local json = require("espipe.server.json")
local es = require("espipe.server.es_errors")
local index_settings = require("espipe.server.index_settings")
local params = require("espipe.server.params")

local M = {}

local settings = { persistent = {}, transient = {} }

-- a setting's value: transient over persistent, else nil
function M.setting(key)
  local v = settings.transient[key]
  if v == nil then v = settings.persistent[key] end
  return v
end

local function view(flat, as_flat)
  local copy = json.object()
  for k, v in pairs(flat) do copy[k] = v end
  return as_flat and copy or index_settings.nest_settings(copy)
end

function M.get_settings(req)
  local flat = params.flag(req.args, "flat_settings", false)
  return 200, { persistent = view(settings.persistent, flat), transient = view(settings.transient, flat) }
end

function M.put_settings(req)
  local body, s, e = params.body(req, true)
  if not body then return s, e end
  s, e = params.check_keys(req, body, { persistent = true, transient = true })
  if s then return s, e end
  local changed = { persistent = {}, transient = {} }
  for _, scope in ipairs({ "persistent", "transient" }) do
    local given = body[scope]
    if given ~= nil and type(given) ~= "table" then
      return es.bad_request("[" .. scope .. "] must be an object")
    end
    for k, v in pairs(index_settings.flat_settings(given or {})) do
      if v == json.null then
        settings[scope][k] = nil
      else
        settings[scope][k] = v
        changed[scope][k] = v
      end
    end
  end
  local flat = params.flag(req.args, "flat_settings", false)
  return 200, { acknowledged = true, persistent = view(changed.persistent, flat),
                transient = view(changed.transient, flat) }
end

return M
