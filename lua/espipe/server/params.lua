-- Reading request bodies and query parameters the way ES does (booleans as
-- "true"/"false"/"", integers, refresh modes), with ES's errors.
local json = require("espipe.server.json")
local es = require("espipe.server.es_errors")

local M = {}

-- body(req[, required]) -> table | nil (no body) | false, status, body
function M.body(req, required)
  if req.decoded ~= nil then return req.decoded end
  if not req.body or req.body:match("^%s*$") then
    if required then return false, es.parse_error("request body is required") end
    return nil
  end
  local v, err = json.decode(req.body)
  if v == nil then
    return false, es.fail(400, "x_content_parse_exception", "[1:1] failed to parse the request body: " .. tostring(err))
  end
  if type(v) ~= "table" or json.is_array(v) then
    return false, es.parse_error("request body must be a JSON object")
  end
  req.decoded = v
  return v
end

-- query flag: ?x, ?x=true -> true; ?x=false -> false; absent -> default
function M.flag(args, name, default)
  local v = args[name]
  if v == nil then return default end
  if v == true or v == "" or v == "true" then return true end
  if v == "false" then return false end
  return nil, es.bad_request("Failed to parse value [" .. tostring(v) .. "] as only [true] or [false] are allowed.")
end

function M.int(args, name, default)
  local v = args[name]
  if v == nil or v == true then return default end
  local n = tonumber(v)
  if not n or n ~= math.floor(n) then
    return nil, es.bad_request("Failed to parse int parameter [" .. name .. "] with value [" .. tostring(v) .. "]")
  end
  return n
end

function M.str(args, name)
  local v = args[name]
  if type(v) == "table" then v = v[#v] end
  if v == true then return "" end
  return v
end

-- refresh=true|""|wait_for|false -> "true" | "wait_for" | nil
function M.refresh(args)
  local v = args.refresh
  if v == nil or v == "false" then return nil end
  if v == true or v == "" or v == "true" then return "true" end
  if v == "wait_for" then return "wait_for" end
  return nil, es.bad_request("Unknown value for refresh: [" .. tostring(v) .. "].")
end

return M
