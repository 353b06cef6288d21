-- Dates for aggregations: epoch millis <-> civil time in a fixed-offset
-- time zone, calendar rounding, and Java DateTimeFormatter patterns as ES
-- prints them (key_as_string, value_as_string).
--
--   zone(spec) -> offset millis | nil, err   ("UTC", "Z", "+01:00", "-0530")
--   civil(ms) -> { y, mo, d, h, mi, s, ms, dow (1 = Monday) }
--   from_civil(y, mo, d) -> epoch millis of that day's midnight (UTC)
--   format(ms, pattern, offset, ns) -> string | nil, err   (ns: nanoseconds
--     within the millisecond, for date_nanos: S up to SSSSSSSSS prints them)
--   round(ms, unit, offset) -> start of the calendar unit holding ms
--   next_unit(ms, unit, offset) -> start of the following unit
--   (unit: minute hour day week month quarter year)
local date_math = require("espipe.server.date_math")

local M = {}

local floor, format = math.floor, string.format
local days_from_civil = date_math.days_from_civil
local DAY = 86400000

function M.zone(spec)
  if spec == nil or spec == "UTC" or spec == "Z" or spec == "GMT" or spec == "Etc/UTC" then return 0 end
  if type(spec) ~= "string" then return nil, "time_zone must be a string" end
  local sign, h, m = spec:match("^([+-])(%d%d?):?(%d?%d?)$")
  if not sign then
    return nil, "unsupported time zone [" .. spec .. "]: espipe serve knows UTC and fixed offsets (+01:00) only"
  end
  local off = (tonumber(h) * 60 + (tonumber(m) or 0)) * 60000
  return sign == "-" and -off or off
end

function M.civil(ms)
  local secs = floor(ms / 1000)
  local t = os.date("!*t", secs)
  return { y = t.year, mo = t.month, d = t.day, h = t.hour, mi = t.min, s = t.sec, ms = ms - secs * 1000,
           dow = (t.wday + 5) % 7 + 1 }
end

function M.from_civil(y, mo, d)
  -- months beyond 12 roll into the next years
  y = y + floor((mo - 1) / 12)
  mo = (mo - 1) % 12 + 1
  return days_from_civil(y, mo, d) * DAY
end

local function zone_text(off, colon)
  if off == 0 then return "Z" end
  local a = off < 0 and -off or off
  local h, m = floor(a / 3600000), floor(a / 60000) % 60
  return format(colon and "%s%02d:%02d" or "%s%02d%02d", off < 0 and "-" or "+", h, m)
end

local MONTHS = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" }
local DAYS = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" }

local FIELDS = {
  y = function(c, n) return n == 2 and format("%02d", c.y % 100) or format("%0" .. n .. "d", c.y) end,
  u = function(c, n) return n == 2 and format("%02d", c.y % 100) or format("%0" .. n .. "d", c.y) end,
  M = function(c, n)
    if n >= 3 then return MONTHS[c.mo] end
    return format("%0" .. n .. "d", c.mo)
  end,
  d = function(c, n) return format("%0" .. n .. "d", c.d) end,
  H = function(c, n) return format("%0" .. n .. "d", c.h) end,
  m = function(c, n) return format("%0" .. n .. "d", c.mi) end,
  s = function(c, n) return format("%0" .. n .. "d", c.s) end,
  S = function(c, n) return (format("%03d%06d", c.ms, c.ns)):sub(1, n) end,
  E = function(c) return DAYS[c.dow] end,
  X = function(c, n) return zone_text(c.off, n >= 3) end,
  x = function(c, n) return c.off == 0 and (n >= 3 and "+00:00" or "+0000") or zone_text(c.off, n >= 3) end,
  Z = function(c) return c.off == 0 and "Z" or zone_text(c.off, false) end,
}

local NAMED = {
  strict_date_optional_time = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
  date_optional_time = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
  strict_date_optional_time_nanos = "yyyy-MM-dd'T'HH:mm:ss.SSSSSSSSSXXX",
  strict_date_time = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX", date_time = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
  strict_date_time_no_millis = "yyyy-MM-dd'T'HH:mm:ssXXX", date_time_no_millis = "yyyy-MM-dd'T'HH:mm:ssXXX",
  strict_date = "yyyy-MM-dd", date = "yyyy-MM-dd",
  strict_year_month = "yyyy-MM", year_month = "yyyy-MM", strict_year = "yyyy", year = "yyyy",
  strict_date_hour_minute_second = "yyyy-MM-dd'T'HH:mm:ss", date_hour_minute_second = "yyyy-MM-dd'T'HH:mm:ss",
  strict_hour_minute_second = "HH:mm:ss", hour_minute_second = "HH:mm:ss",
  basic_date = "yyyyMMdd",
}

-- named formats whose fraction prints 3 to 9 digits, trailing zeros dropped
local TRIMMED = { strict_date_optional_time_nanos = true }

local format_pattern

function M.format(ms, pattern, off, ns)
  off = off or 0
  pattern = (pattern or "strict_date_optional_time"):match("^([^|]*)")
  if pattern == "epoch_millis" then return format("%d", ms) end
  if pattern == "epoch_second" then return format("%d", floor(ms / 1000)) end
  local out, err = format_pattern(ms, NAMED[pattern] or pattern, off, ns)
  if out and TRIMMED[pattern] then out = out:gsub("%.(%d%d%d%d-)0*([Z%+%-])", ".%1%2", 1) end
  return out, err
end

format_pattern = function(ms, pattern, off, ns)
  local c = M.civil(ms + off)
  c.off, c.ns = off, ns or 0
  local out, i, n = {}, 1, #pattern
  while i <= n do
    local ch = pattern:sub(i, i)
    if ch == "'" then
      local j = pattern:find("'", i + 1, true)
      if not j then return nil, "unterminated quote in date format [" .. pattern .. "]" end
      out[#out + 1] = j == i + 1 and "'" or pattern:sub(i + 1, j - 1)
      i = j + 1
    elseif ch:find("%a") then
      local j = i
      while pattern:sub(j + 1, j + 1) == ch do j = j + 1 end
      local f = FIELDS[ch]
      if not f then return nil, "unsupported letter [" .. ch .. "] in date format [" .. pattern .. "]" end
      out[#out + 1] = f(c, j - i + 1)
      i = j + 1
    else
      out[#out + 1] = ch
      i = i + 1
    end
  end
  return table.concat(out)
end

local FIXED = { minute = 60000, hour = 3600000, day = DAY, week = 7 * DAY }

function M.round(ms, unit, off)
  off = off or 0
  local lt = ms + off
  local u = FIXED[unit]
  if unit == "week" then
    return floor((lt + 3 * DAY) / u) * u - 3 * DAY - off
  elseif u then
    return floor(lt / u) * u - off
  end
  local c = M.civil(lt)
  if unit == "month" then return M.from_civil(c.y, c.mo, 1) - off end
  if unit == "quarter" then return M.from_civil(c.y, c.mo - (c.mo - 1) % 3, 1) - off end
  return M.from_civil(c.y, 1, 1) - off
end

function M.next_unit(ms, unit, off)
  off = off or 0
  local u = FIXED[unit]
  if u then return ms + u end
  local c = M.civil(ms + off)
  local step = unit == "month" and 1 or unit == "quarter" and 3 or 12
  return M.from_civil(c.y, c.mo + step, 1) - off
end

return M
