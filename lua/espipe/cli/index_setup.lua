-- Index setup before a load or reindex: --create-index FILE (settings and
-- mappings: the index is created when missing, its mapping compared when
-- present, a difference refused unless --update-mapping), for a pattern
-- load as an index template over the pattern's indices; --template FILE
-- installs an index template as it is.
--
--   index_setup.apply(setup, { index =, pattern =, create_index = FILE, update_mapping =,
--                              template = FILE }) -> true | nil, message
local json = require "espipe.json"
local segment = require("espipe.client.url").segment

local M = {}

local function read_json(path, what)
  local f, err = io.open(path, "rb")
  if not f then return nil, "cannot read " .. what .. " " .. tostring(err) end
  local text = f:read("*a")
  f:close()
  local v, derr = json.decode(text)
  if type(v) ~= "table" then return nil, what .. " " .. path .. " is not a JSON object: " .. tostring(derr) end
  return v
end

local function send(setup, method, path, body)
  return setup.client:json_request_retrying({ method = method, path = path,
    headers = { ["Content-Type"] = "application/json" }, body = body and json.encode(body) or nil }, setup.policy)
end

-- The first place where want (a mapping, or part of one) and have differ:
-- nil when every field want defines is there, defined the same (have may hold more).
local function difference(want, have, where)
  if type(want) ~= "table" then
    if tostring(want) ~= tostring(have) then
      return where .. " is " .. json.encode(have == nil and json.null or have) .. ", the file says " .. json.encode(want)
    end
    return nil
  end
  if type(have) ~= "table" then return where .. " is missing" end
  local keys = {}
  for k in pairs(want) do keys[#keys + 1] = k end
  -- the same first difference on every run and every Lua (arrays have number keys)
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local d = difference(want[k], have[k], where .. "." .. k)
    if d then return d end
  end
  return nil
end

local function check_existing(setup, name, body, update)
  local have, err = send(setup, "GET", "/" .. segment(name, "index", 3) .. "/_mapping")
  if not have then return nil, tostring(err) end
  for index, m in pairs(have) do
    local d = difference(body.mappings or {}, m.mappings or {}, index)
    if d and not update then
      return nil, "the mapping of " .. index .. " differs from the --create-index file: " .. d
        .. " (--update-mapping puts the file's mapping)"
    elseif d then
      local ok, perr = send(setup, "PUT", "/" .. segment(index, "index", 3) .. "/_mapping", body.mappings)
      if not ok then return nil, "cannot update the mapping of " .. index .. ": " .. tostring(perr) end
    end
  end
  return true
end

-- index NAME: created with the file's body, or its mapping checked
local function one_index(setup, name, body, update)
  local exists, err = setup:exists(name)
  if exists == nil then return nil, tostring(err) end
  if not exists then
    local ok, cerr = setup:create(name, body)
    if not ok then return nil, "cannot create " .. name .. ": " .. tostring(cerr) end
    return true
  end
  return check_existing(setup, name, body, update)
end

-- logs-{@timestamp:%Y.%m} -> "logs-*": the indices the pattern can name
local function wildcard(pattern)
  return (pattern:match("^([^{]*)") or "") .. "*"
end

local function put_template(setup, name, body)
  local ok, err = send(setup, "PUT", "/_index_template/" .. segment(name, "template", 3), body)
  if not ok then return nil, "cannot install the index template " .. name .. ": " .. tostring(err) end
  return true
end

-- a pattern: a template (priority above the default 0) gives every month
-- index the file's settings and mappings as bulk creates it; the months
-- that exist already are checked like one index
local function pattern_indices(setup, pattern, body, update)
  local glob = wildcard(pattern)
  local name = "espipe-" .. glob:gsub("[^%w_.-]", "")
  local ok, err = put_template(setup, name, { index_patterns = { glob }, priority = 100,
    template = { settings = body.settings, mappings = body.mappings } })
  if not ok then return nil, err end
  return check_existing(setup, glob, body, update)
end

function M.apply(setup, o)
  if o.template then
    local body, err = read_json(o.template, "--template")
    if not body then return nil, err end
    local name = o.template:match("([^/]+)$"):gsub("%.json$", "")
    local ok, terr = put_template(setup, name, body)
    if not ok then return nil, terr end
  end
  if not o.create_index then return true end
  local body, err = read_json(o.create_index, "--create-index")
  if not body then return nil, err end
  if o.pattern then return pattern_indices(setup, o.pattern, body, o.update_mapping) end
  return one_index(setup, o.index, body, o.update_mapping)
end

return M
