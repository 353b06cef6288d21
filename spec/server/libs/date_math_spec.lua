-- espipe.server.date_math: dates (ISO-8601, epoch millis, date math) and
-- time values as ES reads them.
local date_math = require("espipe.server.date_math")

describe("server date_math", function()
  local day = 86400000
  -- 2024-01-02T00:00:00Z, as ES reports it
  local jan2 = 1704153600000

  it("reads ISO dates and times with fractions and zones, and epoch millis", function()
    assert.equal(jan2, date_math.parse_date("2024-01-02"))
    assert.equal(jan2, date_math.parse_date("2024-01-02T00:00:00Z"))
    assert.equal(jan2 - day, date_math.parse_date("2024"))
    assert.equal(jan2 + 2 * 3600000 + 4 * 60000 + 5500, date_math.parse_date("2024-01-02T03:04:05.5+01:00"))
    assert.equal(jan2 + 3 * 3600000 + 30 * 60000, date_math.parse_date("2024-01-02 01:00-0230"))
    assert.equal(jan2, date_math.parse_date(tostring(jan2)))
    assert.equal(12.5, date_math.parse_date(12.5))
    for _, bad in ipairs({ "2024-01-02T03", "2024-01-02Tx", "24-01-02", "2024-01-02T03:04+1", true }) do
      assert.is_nil(date_math.parse_date(bad), tostring(bad))
    end
  end)

  it("does date math from now: offsets, then rounding down to the unit", function()
    local now = date_math.parse_date("2024-03-14T15:09:26.535Z") -- a Thursday
    assert.equal(now + day - 3600000, date_math.parse_date("now+1d-1h", now))
    assert.equal(date_math.parse_date("2024-03-14"), date_math.parse_date("now/d", now))
    assert.equal(date_math.parse_date("2024-03-13"), date_math.parse_date("now-1d/d", now))
    assert.equal(date_math.parse_date("2024-03-11"), date_math.parse_date("now/w", now)) -- Monday
    assert.equal(date_math.parse_date("2024-03-01"), date_math.parse_date("now/M", now))
    assert.equal(date_math.parse_date("2024-01-01"), date_math.parse_date("now/y", now))
    assert.equal(date_math.parse_date("2024-03-14T15:00Z"), date_math.parse_date("now/h", now))
    assert.is_nil(date_math.parse_date("now+1x", now))
    assert.is_nil(date_math.parse_date("now/", now))
  end)

  it("counts days from the civil calendar across eras", function()
    assert.equal(0, date_math.days_from_civil(1970, 1, 1))
    assert.equal(-1, date_math.days_from_civil(1969, 12, 31))
    assert.equal(11017, date_math.days_from_civil(2000, 3, 1))
    assert.equal(jan2 / day, date_math.days_from_civil(2024, 1, 2))
  end)

  it("parses time values to seconds", function()
    assert.equal(60, date_math.parse_time("1m"))
    assert.equal(30, date_math.parse_time("30s"))
    assert.equal(0.5, date_math.parse_time("500ms"))
    assert.equal(3600, date_math.parse_time("1h"))
    assert.equal(86400, date_math.parse_time("1d"))
    for _, bad in ipairs({ "1x", "m", "", "10" }) do
      local v, err = date_math.parse_time(bad)
      assert.is_nil(v, bad)
      assert.is_truthy(err.reason:find("unit is missing or unrecognized", 1, true))
    end
  end)
end)
