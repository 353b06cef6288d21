-- Index names from date fields (month-based indices). Expected dates come
-- from the system `date` command, not from the code under test.
local index_pattern = require "espipe.pipeline.index_pattern"
local S = require "pipeline.support"

describe("index_pattern", function()
  it("formats ISO-8601 dates and epoch millis like date(1) does in UTC", function()
    local name = index_pattern.compile("logs-{@timestamp:%Y.%m.%d}")
    for _, secs in ipairs { 0, 951782400, 1709633000, 4102444799, -86400, 1234567890 } do
      local want = "logs-" .. S.sh("date -u -d @" .. secs .. " +%Y.%m.%d"):gsub("\n", "")
      assert.equal(want, name { ["@timestamp"] = secs * 1000 })
      local iso = S.sh("date -u -d @" .. secs .. " +%Y-%m-%dT%H:%M:%SZ"):gsub("\n", "")
      assert.equal(want, name { ["@timestamp"] = iso })
    end
  end)

  it("reads nested fields by dotted path and supports several placeholders", function()
    local name, fields = index_pattern.compile("{event.created:%%%Y}-m{event.created:%m}")
    assert.same({ "event.created", "event.created" }, fields)
    assert.equal("%2021-m07", name { event = { created = "2021-07-04" } })
    assert.equal("%2021-m08", name { ["event.created"] = "2021-08-04" })
  end)

  it("returns an error naming the field when the date is missing or unreadable", function()
    local name = index_pattern.compile("logs-{ts:%Y.%m}")
    local v, err = name { other = 1 }
    assert.is_nil(v)
    assert.equal("ts", err.field)
    v, err = name { ts = "yesterday" }
    assert.is_nil(v)
    assert.matches("not a date", tostring(err))
  end)

  it("rejects, when compiled, a pattern that cannot name an index", function()
    local cases = {
      { "logs-{ts:%Y.%q}", "unknown directive '%q'" },
      { "logs-{ts:%Y.%}", "unknown directive '%'" },
      { "logs-{:%Y}", "no document can have the field ''" },
      { "logs-{ :%Y}", "no document can have the field ' '" },
      { "logs-{a..b:%Y}", "no document can have the field 'a..b'" },
      { "logs-{a.:%Y}", "no document can have the field 'a.'" },
      { "logs-{ts}", "cannot be part of an index name" },
      { "logs-{ts:%Y", "cannot be part of an index name" },
      { "Logs-{ts:%Y}", "cannot be part of an index name" },
      { "logs {ts:%Y}", "cannot be part of an index name" },
      { "logs-{ts:%Y/%m}", "cannot be part of an index name" },
      { "_logs-{ts:%Y}", "cannot start with '_'" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(index_pattern.compile, c[1])
      assert.is_false(ok, c[1])
      assert.matches(c[2], err, 1, true)
    end
  end)

  it("names the first pattern field a CSV header lacks", function()
    local _, fields = index_pattern.compile("logs-{ts:%Y}-{kind:%m}")
    assert.is_nil(index_pattern.fields_missing(fields, { "kind", "ts", "x" }))
    assert.equal("kind", index_pattern.fields_missing(fields, { "ts", "x" }))
  end)

  it("says what a value that is not a date is, never a table's address", function()
    local json = require "espipe.json"
    local name = index_pattern.compile("logs-{ts:%Y}")
    local cases = { { {}, "an object" }, { json.decode("[1]"), "an array" }, { json.null, "null" }, { true, "true" } }
    for _, c in ipairs(cases) do
      local v, err = name { ts = c[1] }
      assert.is_nil(v)
      assert.equal("not a date for the index pattern: " .. c[2], err.message)
    end
  end)

  it("hands its pieces, in order, to the C line path", function()
    local _, _, pieces = index_pattern.compile("logs-{ts:%Y}.x{a.b:%m%%}")
    assert.same({ "logs-", { field = "ts", fmt = "%Y" }, ".x", { field = "a.b", fmt = "%m%%" }, "" }, pieces)
  end)
end)
