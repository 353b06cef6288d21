-- Paths and query strings for Elasticsearch requests: ids and index names are
-- percent-encoded (an id may hold '/', '?', '#', spaces or UTF-8), values are
-- written the way Elasticsearch parses them (true/false, integers without
-- a ".0", lists joined by commas).
local M = {}

local concat, sort, format, floor = table.concat, table.sort, string.format, math.floor
local type, tostring, pairs = type, tostring, pairs

local function escape(s, keep)
  return (s:gsub("[^%w%-%._~" .. (keep or "") .. "]", function(c)
    return format("%%%02X", c:byte())
  end))
end

-- One path segment. An index segment keeps ',' and '*' readable.
function M.segment(v, what, level)
  local t = type(v)
  if t == "number" then
    v = (v == floor(v)) and format("%d", v) or tostring(v)
  elseif t == "table" then
    local parts = {}
    for i = 1, #v do parts[i] = M.segment(v[i], what, (level or 2) + 1) end
    if #parts == 0 then error(what .. " must not be an empty list", (level or 2) + 1) end
    return concat(parts, ",")
  elseif t ~= "string" or v == "" then
    error(what .. " must be a non-empty string, got " .. (t == "string" and "\"\"" or t), (level or 2) + 1)
  end
  return escape(v, what == "index" and ",*" or nil)
end

local function value_string(v, key)
  local t = type(v)
  if t == "boolean" then return v and "true" or "false" end
  if t == "number" then
    return (v == floor(v) and v > -2^63 and v < 2^63) and format("%d", v) or tostring(v)
  end
  if t == "string" then return v end
  if t == "table" then
    local parts = {}
    for i = 1, #v do parts[i] = value_string(v[i], key) end
    return concat(parts, ",")
  end
  error("query parameter '" .. key .. "' cannot be a " .. t, 4)
end

-- Query string (without '?') from a table, keys sorted for stable requests.
function M.query(params)
  local parts = {}
  for k, v in pairs(params) do
    parts[#parts + 1] = escape(k) .. "=" .. escape(value_string(v, k), ",*")
  end
  sort(parts)
  return concat(parts, "&")
end

-- A URL without its userinfo ("http://elastic:secret@host:9200/x" ->
-- "http://host:9200/x"): the form written to files, logs and summaries.
function M.redact(u)
  if type(u) ~= "string" then return u end
  return (u:gsub("^(%a[%w+.-]*://)[^/]*@", "%1", 1))
end

return M
