-- Dates and time values as ES reads them in queries, aggregations and
-- index names.
--
-- parse_date(v[, now_ms]) -> epoch millis | nil: a number, epoch-millis
--   digits, an ISO-8601 date/time, or date math "now[+-N<unit>][/unit]"
-- parse_time("1m") -> seconds | nil, err (a time value such as a keep_alive)
-- days_from_civil(y, m, d) -> days since 1970-01-01 (proleptic Gregorian)
local es = require("espipe.server.es_errors")

local M = {}

local type, tostring, tonumber = type, tostring, tonumber
local floor = math.floor

function M.days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end
local days_from_civil = M.days_from_civil

-- the inverse: days since the epoch -> year, month
local function civil_from_days(days)
  local z = days + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return y, m
end

local DAY = 86400000
local UNIT_MS = { y = 365 * DAY, M = 30 * DAY, w = 7 * DAY, d = DAY,
  h = 3600000, H = 3600000, m = 60000, s = 1000 }

-- date math's "/unit": the start of the unit containing ms
local function round_down(ms, unit)
  if unit == "w" then -- weeks start on Monday; 1970-01-01 was a Thursday
    return floor((ms + 3 * DAY) / UNIT_MS.w) * UNIT_MS.w - 3 * DAY
  end
  if unit ~= "M" and unit ~= "y" then
    return floor(ms / UNIT_MS[unit]) * UNIT_MS[unit]
  end
  local y, m = civil_from_days(floor(ms / DAY))
  return days_from_civil(y, unit == "M" and m or 1, 1) * DAY
end

-- "now" followed by rest, e.g. "+1d/d"
local function date_math(rest, now_ms)
  local ms = now_ms or floor(os.time() * 1000)
  while rest ~= "" do
    local sign, n, unit, r = rest:match("^([+-])(%d+)([yMwdhHms])(.*)$")
    if sign then
      ms = ms + (sign == "+" and 1 or -1) * tonumber(n) * UNIT_MS[unit]
      rest = r
    else
      local u, r2 = rest:match("^/([yMwdhHms])(.*)$")
      if not u then return nil end
      ms = round_down(ms, u)
      rest = r2
    end
  end
  return ms
end

-- the time of day and zone after an ISO date: "THH:MM[:SS[.fff]][Z|+HH:MM]"
local function time_of_day(rest)
  local hh, mi, tail = rest:match("^[T ](%d%d):(%d%d)(.*)$")
  if not hh then return nil end
  local ms = tonumber(hh) * 3600000 + tonumber(mi) * 60000
  local ss, t2 = tail:match("^:(%d%d)(.*)$")
  if ss then ms = ms + tonumber(ss) * 1000; tail = t2 end
  local frac, t3 = tail:match("^[.,](%d+)(.*)$")
  if frac then ms = ms + floor(tonumber("0." .. frac) * 1000 + 0.5); tail = t3 end
  if tail == "" or tail == "Z" then return ms end
  local zs, zh, zm = tail:match("^([+-])(%d%d):?(%d%d)$")
  if not zs then return nil end
  local off = (tonumber(zh) * 60 + tonumber(zm)) * 60000
  return zs == "+" and ms - off or ms + off
end

local function iso_date(v)
  local y, mo, d, rest = v:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then
    y, rest = v:match("^(%d%d%d%d)(.*)$")
    if not y or rest ~= "" then return nil end
    mo, d = "01", "01"
  end
  local ms = days_from_civil(tonumber(y), tonumber(mo), tonumber(d)) * DAY
  if rest == "" then return ms end
  local tod = time_of_day(rest)
  return tod and ms + tod
end

function M.parse_date(v, now_ms)
  if type(v) == "number" then return v end
  if type(v) ~= "string" then return nil end
  if v:find("^%-?%d+$") and #v > 4 then return tonumber(v) end
  if v:sub(1, 3) == "now" then return date_math(v:sub(4), now_ms) end
  return iso_date(v)
end

local TIME_UNITS = { d = 86400, h = 3600, m = 60, s = 1, ms = 0.001, micros = 1e-6, nanos = 1e-9 }

function M.parse_time(s)
  if type(s) == "number" then s = tostring(s) end
  if type(s) ~= "string" then
    return nil, es.query("failed to parse time value [" .. tostring(s) .. "]", "illegal_argument_exception")
  end
  local n, unit = s:match("^%s*(%d+%.?%d*)%s*(%a+)%s*$")
  if s == "-1" or s == "0" then return tonumber(s) end
  local f = unit and TIME_UNITS[unit:lower()]
  if not f then
    return nil, es.query("failed to parse setting [time] with value [" .. s
      .. "] as a time value: unit is missing or unrecognized", "illegal_argument_exception")
  end
  return tonumber(n) * f
end

return M
