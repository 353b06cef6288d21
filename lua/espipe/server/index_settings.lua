-- Index settings: the flat form the dev server keeps ({ number_of_shards =
-- "3" }), the nested form ES shows, and the numbers an index runs by
-- (shards, routing shards and function, replicas, refresh interval), with
-- ES's validation messages.
--
-- flat_settings(body) -> flat; nest_settings(flat) -> nested json object
-- parse_interval(s) -> seconds (-1: never) | nil
-- apply(idx, flat, creating) -> nil | error reason; sets idx.replicas and
--   idx.refresh_s, and when creating nshards, routing_shards, partition,
--   func and version_created
local json = require("espipe.server.json")
local routing = require("espipe.server.routing")

local M = {}

M.VERSION_CREATED = "8512000" -- 8.15.x
M.MODULO_FROM = 9064000       -- ES indices created from 9_064_0_00 route by modulo

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

local INTERVAL_UNITS = { ms = 0.001, s = 1, m = 60, h = 3600, d = 86400, nanos = 1e-9, micros = 1e-6 }

function M.parse_interval(s)
  if s == nil or s == json.null then return 1 end
  s = tostring(s)
  if s == "-1" then return -1 end
  local n, unit = s:match("^(%d+%.?%d*)(%a*)$")
  n = tonumber(n)
  local mult = INTERVAL_UNITS[unit]
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

-- the routing function: given, else by the version the index was created with
local function routing_function(flat, created)
  local func = flat["routing.function"]
  if func == nil or func == json.null then
    func = (created and created >= M.MODULO_FROM) and "modulo" or "legacy"
  end
  if func ~= "legacy" and func ~= "modulo" then
    return nil, "unknown value [" .. tostring(func) .. "] for [index.routing.function], expected legacy or modulo"
  end
  return func
end

-- the settings fixed at creation
local function apply_creation(idx, flat, shards, partition, created, func)
  if flat["soft_deletes.enabled"] == "false" then
    return "Creating indices with soft-deletes disabled is no longer supported. Please do not specify a value "
      .. "for setting [index.soft_deletes.enabled]."
  end
  local default_r = routing.default_routing_shards(shards, created and created < 7000099 and 6 or nil)
  local rshards, err = int_setting(flat, "number_of_routing_shards", default_r, shards, 1048576)
  if not rshards then return err end
  if rshards % shards ~= 0 then
    return "the number of source shards [" .. shards .. "] must be a factor of [" .. rshards .. "]"
  end
  if partition > 1 and partition >= rshards then
    return "routing partition size [" .. partition .. "] should be a positive number less than the number of routing shards [" .. rshards .. "]"
  end
  idx.nshards, idx.routing_shards, idx.partition, idx.func = shards, rshards, partition, func
  idx.version_created = tostring(created or M.VERSION_CREATED)
end

function M.apply(idx, flat, creating)
  local shards, replicas, partition, err
  shards, err = int_setting(flat, "number_of_shards", 1, 1, 1024)
  if not shards then return err end
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
  local func
  func, err = routing_function(flat, created)
  if not func then return err end
  if creating then
    err = apply_creation(idx, flat, shards, partition, created, func)
    if err then return err end
  end
  idx.replicas = replicas
  idx.refresh_s = interval
  return nil
end

return M
