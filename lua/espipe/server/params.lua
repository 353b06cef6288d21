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

-- line and column of where a key's value starts in the body text, as ES's
-- parser reports them (1-based); 1, 1 when the key cannot be found
local function position(text, key)
  local at = text and text:find('"' .. key .. '"%s*:')
  if not at then return 1, 1 end
  local value = text:find("[^%s:]", at + #key + 2) or at
  local line, line_start = 1, 1
  for nl in text:sub(1, value - 1):gmatch("()\n") do line, line_start = line + 1, nl + 1 end
  return line, value - line_start + 1
end

local TOKEN = { table = "START_OBJECT", string = "VALUE_STRING", number = "VALUE_NUMBER",
                boolean = "VALUE_BOOLEAN" }

-- check_keys(req, obj, known) -> nil | status, body: ES's parsing_exception
-- for the first key of obj (in name order) that is not in known
function M.check_keys(req, obj, known)
  local bad
  for k in pairs(obj) do
    if not known[k] and (bad == nil or k < bad) then bad = k end
  end
  if bad == nil then return nil end
  local v = obj[bad]
  local token = (v == json.null and "VALUE_NULL") or (json.is_array(v) and "START_ARRAY") or TOKEN[type(v)]
    or "VALUE_STRING"
  if token == "START_OBJECT" and v[1] ~= nil then token = "START_ARRAY" end
  local line, col = position(req.body, bad)
  return es.fail(400, "parsing_exception", "Unknown key for a " .. token .. " in [" .. bad .. "].",
    { line = line, col = col })
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
