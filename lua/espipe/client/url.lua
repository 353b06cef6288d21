-- Paths and query strings for Elasticsearch requests: ids and index names are
-- percent-encoded (an id may hold '/', '?', '#', spaces or UTF-8), values are
-- written the way Elasticsearch parses them (see espipe.transport.hosts).
local query_string = require("espipe.transport.hosts").query

local M = {}

local concat, format, floor = table.concat, string.format, math.floor
local type, tostring = type, tostring

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

-- Query string (without '?') from a table, keys sorted for stable requests:
-- the transport seam's encoding (espipe.transport.hosts), "" when empty.
-- level: as error's, counted from url.query's caller.
function M.query(params, level)
  return query_string(params, (level or 1) + 1) or ""
end

-- A URL without its userinfo ("http://elastic:secret@host:9200/x" ->
-- "http://host:9200/x"): the form written to files, logs and summaries.
function M.redact(u)
  if type(u) ~= "string" then return u end
  return (u:gsub("^(%a[%w+.-]*://)[^/]*@", "%1", 1))
end

return M
