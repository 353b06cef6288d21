-- Index names from a document's date field, for month/day-based indices:
--   local name, fields, pieces = index_pattern.compile("logs-{@timestamp:%Y.%m}")
--   name(doc) -> "logs-2024.03" | nil, err
--   pieces: the pattern's literals and { field =, fmt = } tables, in order
--   (for the C line path of load, csrc/bulk_lines.c, which formats alike)
-- The field holds ISO-8601 text (2024-03-05, 2024-03-05T10:00:00Z, with an
-- offset the local date part is used as written) or epoch milliseconds.
-- Formats: %Y %m %d %H (UTC for epoch millis), %% a percent sign.
-- A pattern that cannot work is a wrong argument, raised before any input
-- is read or any request sent: an unknown % directive, a '{' or '}' outside
-- a {field:format}, a field no document can have (empty, blank, or with an
-- empty path segment such as "a..b"), or text an index name cannot hold
-- (uppercase, \ / * ? " < > | , # : or a space; -, _ or + first).
--   index_pattern.fields_missing(fields, columns) -> name | nil   (CSV headers)
local errors = require "espipe.client.errors"
local json = require "espipe.json"

local M = {}

local function idiv(a, b) return math.floor(a / b) end

local function days_to_civil(z)
  -- Howard Hinnant's civil-from-days algorithm (proleptic Gregorian)
  z = z + 719468
  local era = idiv(z >= 0 and z or z - 146096, 146097)
  local doe = z - era * 146097
  local yoe = idiv(doe - idiv(doe, 1460) + idiv(doe, 36524) - idiv(doe, 146096), 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + idiv(yoe, 4) - idiv(yoe, 100))
  local mp = idiv(5 * doy + 2, 153)
  local d = doy - idiv(153 * mp + 2, 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  return m <= 2 and y + 1 or y, m, d
end

local function date_parts(v)
  if type(v) == "number" then
    local secs = math.floor(v / 1000)
    local days = math.floor(secs / 86400)
    local y, m, d = days_to_civil(days)
    return y, m, d, math.floor((secs - days * 86400) / 3600)
  elseif type(v) == "string" then
    local y, m, d = v:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)")
    if not y then
      if v:find("^%d+$") then return date_parts(tonumber(v)) end
      return nil
    end
    local h = v:match("^%d%d%d%d%-%d%d%-%d%d[T ](%d%d)")
    return tonumber(y), tonumber(m), tonumber(d), tonumber(h or 0)
  end
  return nil
end

local function lookup(doc, path)
  local v = doc[path]
  if v ~= nil then return v end
  v = doc
  for part in path:gmatch("[^%.]+") do
    if type(v) ~= "table" then return nil end
    v = v[part]
  end
  return v
end

-- A value that is not a date, as a message shows it (not a table's address).
local function shown(v)
  if v == json.null then return "null" end
  if type(v) == "table" then return json.is_array(v) and "an array" or "an object" end
  return tostring(v)
end

local DIRECTIVES = { Y = true, m = true, d = true, H = true, ["%"] = true }

local function check_literal(text, pattern, first, level)
  local bad = text:match('[{}%u\\/%*%?"<>|,#: ]')
  if bad then
    error(("index_pattern: %q cannot be part of an index name (in '%s'; fields go in {field:format})")
      :format(bad, pattern), level + 1)
  end
  if first and text:find("^[%-_+]") then
    error("index_pattern: an index name cannot start with '" .. text:sub(1, 1) .. "' (in '" .. pattern .. "')",
      level + 1)
  end
end

local function check_piece(field, fmt, pattern, level)
  if field:find("^%s*$") or field:find("^%.") or field:find("%.$") or field:find("%.%.") then
    error("index_pattern: no document can have the field '" .. field .. "' (in '" .. pattern .. "')", level + 1)
  end
  for c in fmt:gsub("%%%%", ""):gmatch("%%(.?)") do
    if not DIRECTIVES[c] then
      error("index_pattern: unknown directive '%" .. c .. "' in '" .. pattern
        .. "' (known: %Y %m %d %H %%)", level + 1)
    end
  end
  check_literal((fmt:gsub("%%.", "")), pattern, false, level + 1)
end

-- level: where a wrong pattern is reported (default: compile's caller).
function M.compile(pattern, level)
  level = (level or 1) + 1
  if type(pattern) ~= "string" then error("index_pattern.compile: pattern must be a string", level) end
  local pieces = {}
  local pos = 1
  while true do
    local s, e, field, fmt = pattern:find("{([^:{}]*):([^{}]*)}", pos)
    if not s then break end
    check_literal(pattern:sub(pos, s - 1), pattern, pos == 1, level)
    check_piece(field, fmt, pattern, level)
    pieces[#pieces + 1] = pattern:sub(pos, s - 1)
    pieces[#pieces + 1] = { field = field, fmt = fmt }
    pos = e + 1
  end
  check_literal(pattern:sub(pos), pattern, pos == 1, level)
  pieces[#pieces + 1] = pattern:sub(pos)
  local fields, copy = {}, {}
  for i, p in ipairs(pieces) do
    if type(p) == "table" then
      fields[#fields + 1] = p.field
      copy[i] = { field = p.field, fmt = p.fmt }
    else
      copy[i] = p
    end
  end
  return function(doc)
    local out = {}
    for _, p in ipairs(pieces) do
      if type(p) == "string" then
        out[#out + 1] = p
      else
        local v = lookup(doc, p.field)
        local y, m, d, h = date_parts(v)
        if not y then
          return nil, errors.new { kind = "input", field = p.field,
            message = v == nil and "missing date field for the index pattern"
              or ("not a date for the index pattern: " .. shown(v)) }
        end
        out[#out + 1] = (p.fmt:gsub("%%(.)", function(c)
          if c == "Y" then return string.format("%04d", y) end
          if c == "m" then return string.format("%02d", m) end
          if c == "d" then return string.format("%02d", d) end
          if c == "H" then return string.format("%02d", h) end
          if c == "%" then return "%" end
          return "%" .. c
        end))
      end
    end
    return table.concat(out)
  end, fields, copy
end

-- The first of fields that is not one of columns (a CSV header): no row can have it.
function M.fields_missing(fields, columns)
  local have = {}
  for _, c in ipairs(columns) do have[c] = true end
  for _, f in ipairs(fields) do
    if not have[f] then return f end
  end
  return nil
end

return M
