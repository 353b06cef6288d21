-- `espipe serve --auth user:password`: basic authentication and API keys as
-- an ES 8 node with security on answers them (401 security_exception with
-- WWW-Authenticate; POST /_security/api_key; Authorization: ApiKey ...;
-- GET /_security/_authenticate). API keys live in memory.
local es = require("espipe.server.es_errors")
local json = require("espipe.server.json")

local M = {}

local keys = {} -- id -> { name =, key =, creator =, created =, expiration = }
M.keys = keys

local CHALLENGE = { 'Basic realm="security", charset="UTF-8"', "ApiKey" }

local function unauthorized(reason)
  local status, body = es.fail(401, "security_exception", reason,
    { header = { ["WWW-Authenticate"] = json.array({ CHALLENGE[1], CHALLENGE[2] }) } })
  return status, body, CHALLENGE
end

local function random_token(n)
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
  local out = {}
  for i = 1, n do
    local r = math.random(1, #alphabet)
    out[i] = alphabet:sub(r, r)
  end
  return table.concat(out)
end

-- the principal of a request: { username =, api_key = } | nil, status, body, challenge
function M.authenticate(req, auth)
  local user, password = auth:match("^([^:]+):(.*)$")
  local header = req.headers["authorization"]
  if type(header) == "table" then header = header[1] end
  local what = "REST request [" .. req.path .. "]"
  if not header then return nil, unauthorized("missing authentication credentials for " .. what) end
  local scheme, cred = header:match("^%s*(%S+)%s+(%S+)%s*$")
  scheme = scheme and scheme:lower()
  local decoded = cred and ngx.decode_base64(cred)
  if scheme == "basic" and decoded then
    local u, p = decoded:match("^([^:]*):(.*)$")
    if u == user and p == password then return { username = u } end
    return nil, unauthorized("unable to authenticate user [" .. tostring(u) .. "] for " .. what)
  end
  if scheme == "apikey" and decoded then
    local id, key = decoded:match("^([^:]*):(.*)$")
    local k = id and keys[id]
    if k and k.key == key and not k.invalidated and (not k.expiration or k.expiration > ngx.now() * 1000) then
      return { username = k.creator, api_key = { id = id, name = k.name } }
    end
    return nil, unauthorized("unable to authenticate with provided credentials and anonymous access is not "
      .. "allowed for this request")
  end
  return nil, unauthorized("missing authentication credentials for " .. what)
end

function M.create_api_key(req)
  local body, s, e = require("espipe.server.params").body(req)
  if body == false then return s, e end
  body = body or {}
  if type(body.name) ~= "string" or body.name == "" then
    return es.validation({ "api key name is required" })
  end
  local id, key = random_token(20), random_token(22)
  local now = math.floor(ngx.now() * 1000)
  local expiration
  if body.expiration ~= nil then
    local secs, err = require("espipe.server.date_math").parse_time(body.expiration)
    if not secs then return es.bad_request(err.reason or tostring(err)) end
    expiration = now + math.floor(secs * 1000)
  end
  local creator = req.principal and req.principal.username or "_anonymous"
  keys[id] = { name = body.name, key = key, creator = creator, created = now, expiration = expiration }
  return 200, { id = id, name = body.name, expiration = expiration, api_key = key,
                encoded = ngx.encode_base64(id .. ":" .. key) }
end

function M.invalidate_api_key(req)
  local body, s, e = require("espipe.server.params").body(req, true)
  if not body then return s, e end
  local ids = body.ids or (body.id and { body.id }) or {}
  local done, gone = json.array(), json.array()
  for id, k in pairs(keys) do
    if (body.name and k.name == body.name) then ids[#ids + 1] = id end
  end
  for _, id in ipairs(ids) do
    if keys[id] and not keys[id].invalidated then
      keys[id].invalidated = true
      done[#done + 1] = id
    else
      gone[#gone + 1] = id
    end
  end
  return 200, { invalidated_api_keys = done, previously_invalidated_api_keys = gone, error_count = 0 }
end

function M.authenticate_api(req)
  local p = req.principal or { username = "_anonymous" }
  local out = { username = p.username, roles = json.array({ "superuser" }), full_name = json.null,
                email = json.null, metadata = json.object(), enabled = true,
                authentication_realm = { name = p.api_key and "_es_api_key" or "default_file",
                                         type = p.api_key and "_es_api_key" or "file" },
                lookup_realm = { name = p.api_key and "_es_api_key" or "default_file",
                                 type = p.api_key and "_es_api_key" or "file" },
                authentication_type = p.api_key and "api_key" or "realm" }
  if p.api_key then out.api_key = p.api_key end
  return 200, out
end

return M
