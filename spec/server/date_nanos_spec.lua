-- date_nanos and date fields in searches: sort values keep nanoseconds,
-- search_after pages through documents that share a millisecond, format on
-- sort and on docvalue_fields. (Runs on Lua 5.4: the client reads and
-- writes 64-bit integers exactly.)
local devserver = require("spec.support.devserver")
local http = require("spec.support.http")

-- five documents: three in one millisecond, apart by nanoseconds, inserted
-- out of order (so neither _id nor insertion order is the nanosecond order)
local DOCS = {
  { "e", "2015-01-01T12:10:30.123000004Z" },
  { "a", "2015-01-01T12:10:30.123000001Z" },
  { "f", "2015-01-01T12:10:30.124Z" },
  { "c", "2015-01-01T12:10:30.123000003Z" },
  { "d", 1420114230000 },                      -- epoch millis
}

describe("espipe serve #server: date_nanos", function()
  local server, url
  setup(function()
    server = devserver.start()
    url = server.url
    http.json("PUT", url .. "/dn", { settings = { number_of_shards = 2 },
      mappings = { properties = { ts = { type = "date_nanos" }, day = { type = "date" } } } })
    local lines = {}
    for _, d in ipairs(DOCS) do
      lines[#lines + 1] = { index = { _index = "dn", _id = d[1] } }
      lines[#lines + 1] = { ts = d[2], day = "2015-01-01" }
    end
    local status = http.bulk(url, lines, "?refresh=true")
    assert.equal(200, status)
  end)
  teardown(function() server.stop() end)

  it("gives nanoseconds since the epoch as the sort value, exact beyond 2^53", function()
    local status, res = http.json("POST", url .. "/dn/_search", { sort = { { ts = "asc" } } })
    assert.equal(200, status)
    local ids, sorts = {}, {}
    for i, h in ipairs(res.hits.hits) do ids[i], sorts[i] = h._id, h.sort[1] end
    assert.same({ "d", "a", "c", "e", "f" }, ids)
    assert.same({ 1420114230000000000, 1420114230123000001, 1420114230123000003, 1420114230123000004,
                  1420114230124000000 }, sorts)
    assert.equal(math.type(sorts[2]), "integer")
  end)

  it("pages with search_after through documents sharing a millisecond, none skipped or repeated", function()
    local seen, after = {}, nil
    for _ = 1, 10 do
      local body = { size = 1, sort = { { ts = "asc" } }, search_after = after }
      local status, res = http.json("POST", url .. "/dn/_search", body)
      assert.equal(200, status)
      local hit = res.hits.hits[1]
      if not hit then break end
      seen[#seen + 1] = hit._id
      after = hit.sort
    end
    assert.same({ "d", "a", "c", "e", "f" }, seen)
  end)

  it("exports through a point in time in nanosecond order", function()
    local _, pit = http.json("POST", url .. "/dn/_pit?keep_alive=1m")
    local seen, after = {}, nil
    for _ = 1, 10 do
      local status, res = http.json("POST", url .. "/_search",
        { size = 2, pit = { id = pit.id }, sort = { { ts = "desc" } }, search_after = after })
      assert.equal(200, status)
      local hits = res.hits.hits
      if #hits == 0 then break end
      for _, h in ipairs(hits) do seen[#seen + 1] = h._id end
      after = hits[#hits].sort
      assert.equal(2, #after) -- the value and the _shard_doc tiebreaker
    end
    http.json("DELETE", url .. "/_pit", { id = pit.id })
    assert.same({ "f", "e", "c", "a", "d" }, seen)
  end)

  it("formats sort values when the sort asks, and takes the formatted value back in search_after", function()
    local _, res = http.json("POST", url .. "/dn/_search", { size = 2,
      sort = { { ts = { order = "asc", format = "strict_date_optional_time_nanos" } } } })
    assert.same({ "2015-01-01T12:10:30.000Z" }, res.hits.hits[1].sort)
    assert.same({ "2015-01-01T12:10:30.123000001Z" }, res.hits.hits[2].sort)
    local _, next_page = http.json("POST", url .. "/dn/_search", { size = 1, search_after = res.hits.hits[2].sort,
      sort = { { ts = { order = "asc", format = "strict_date_optional_time_nanos" } } } })
    assert.equal("c", next_page.hits.hits[1]._id)
    local _, by_day = http.json("POST", url .. "/dn/_search", { size = 1,
      sort = { { day = { format = "yyyy/MM/dd" } }, { ts = "asc" } } })
    assert.same({ "2015/01/01", 1420114230000000000 }, by_day.hits.hits[1].sort)
  end)

  it("prints docvalue_fields of date and date_nanos fields as ES does, in a format when asked", function()
    local _, res = http.json("POST", url .. "/dn/_search", { query = { ids = { values = { "a" } } },
      docvalue_fields = { "ts", "day", { field = "ts", format = "strict_date_optional_time" },
                          { field = "day", format = "epoch_millis" } } })
    local fields = res.hits.hits[1].fields
    -- one entry per field name: the last request for a name wins
    assert.same({ "2015-01-01T12:10:30.123Z" }, fields.ts)
    assert.same({ "1420070400000" }, fields.day)
    _, res = http.json("POST", url .. "/dn/_search", { query = { ids = { values = { "a", "d" } } },
      sort = { { ts = "asc" } }, docvalue_fields = { "ts", "day" } })
    assert.same({ "2015-01-01T12:10:30.000Z" }, res.hits.hits[1].fields.ts)
    assert.same({ "2015-01-01T12:10:30.123000001Z" }, res.hits.hits[2].fields.ts)
    assert.same({ "2015-01-01T00:00:00.000Z" }, res.hits.hits[2].fields.day)
  end)
end)
