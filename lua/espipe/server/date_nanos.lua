-- date_nanos values: nanoseconds since the epoch, exact. ES keeps them as a
-- long (1970 to 2262); a double cannot hold them, so they are json.int
-- values (ordered with < and ==, encoded as JSON integers).
--
--   value(v) -> json.int | nil      a source value: an ISO-8601 string with
--                                   up to 9 fraction digits, or epoch millis
--                                   (a number or its digits), as ES reads them
--   from_sort(v) -> json.int | nil  a search_after value: nanoseconds (a
--                                   number, json.int or digits), else a date string
--   format(n, pattern) -> string | nil, err    (date_format's patterns)
local json = require("espipe.server.json")
local date_math = require("espipe.server.date_math")
local date_format = require("espipe.server.date_format")

local M = {}

local floor, format = math.floor, string.format
local math_type = math.type -- nil before 5.3
local parse_date = date_math.parse_date

-- the json.int of secs * 1e9 + frac (0 <= frac < 1e9) | nil before 1970
local function of(secs, frac)
  if secs < 0 then return nil end
  if secs == 0 then return json.int(format("%d", frac)) end
  return json.int(format("%d%09d", secs, frac))
end

local function from_millis(ms)
  local secs = floor(ms / 1000)
  return of(secs, floor((ms - secs * 1000) * 1e6 + 0.5))
end

function M.value(v)
  if type(v) == "number" then return from_millis(v) end
  if type(v) ~= "string" then return nil end
  if v:find("^%-?%d+$") then return from_millis(tonumber(v)) end
  -- the fraction of the seconds apart: parse_date keeps milliseconds only
  local base, frac, zone = v:match("^(%d%d%d%d%-%d%d%-%d%d[T ]%d%d:%d%d:%d%d)[.,](%d+)(.*)$")
  if not base then
    local ms = parse_date(v)
    return ms and from_millis(ms)
  end
  if #frac > 9 then return nil end
  local ms = parse_date(base .. zone)
  if not ms then return nil end
  return of(floor(ms / 1000), tonumber((frac .. "00000000"):sub(1, 9)))
end

function M.from_sort(v)
  if json.is_int(v) then return v end
  if math_type and math_type(v) == "integer" then return v >= 0 and json.int(format("%d", v)) or nil end
  if type(v) == "number" then return of(floor(v / 1e9), floor(v % 1e9)) end
  if type(v) ~= "string" then return nil end
  if v:find("^%d+$") then
    local digits = v:gsub("^0+(%d)", "%1")
    return json.int(digits)
  end
  return M.value(v)
end

function M.format(n, pattern)
  local text = n[1]
  local secs = tonumber(text:sub(1, -10)) or 0
  local frac = tonumber(text:sub(-9))
  local ms_in = floor(frac / 1e6)
  return date_format.format(secs * 1000 + ms_in, pattern or "strict_date_optional_time_nanos", 0,
    frac - ms_in * 1e6)
end

return M
