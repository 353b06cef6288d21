-- _search, _count, scroll, point in time and slices: refresh-gated
-- visibility, ES-shaped pages and the search_context_missing envelope.
local devserver = require("spec.support.devserver")
local http = require("spec.support.http")

local function poll(deadline_s, fn)
  local deadline = os.time() + deadline_s
  repeat
    local v = fn()
    if v then return v end
    os.execute("sleep 0.05")
  until os.time() > deadline
  return nil
end

describe("espipe serve #server: search", function()
  local server, url
  setup(function()
    server = devserver.start()
    url = server.url
    http.json("PUT", url .. "/s", { settings = { number_of_shards = 3, refresh_interval = "-1" } })
    local lines = {}
    for i = 1, 25 do
      lines[#lines + 1] = { index = { _index = "s", _id = tostring(i) } }
      lines[#lines + 1] = { n = i, tag = (i % 2 == 0) and "even" or "odd", name = "doc " .. i }
    end
    http.bulk(url, lines)
  end)
  teardown(function() server.stop() end)

  it("sees only refreshed documents", function()
    local _, body = http.json("POST", url .. "/s/_search", { size = 0 })
    assert.equal(0, body.hits.total.value)
    assert.equal(200, (http.json("POST", url .. "/s/_refresh")))
    _, body = http.json("POST", url .. "/s/_search", { size = 0 })
    assert.same({ value = 25, relation = "eq" }, body.hits.total)
    assert.same({ total = 3, successful = 3, skipped = 0, failed = 0 }, body._shards)
  end)

  it("refreshes lazily once refresh_interval has passed", function()
    http.json("PUT", url .. "/lazy", { settings = { refresh_interval = "200ms" } })
    http.json("PUT", url .. "/lazy/_doc/1", { a = 1 })
    local seen = poll(5, function()
      local _, b = http.json("GET", url .. "/lazy/_count")
      return b.count == 1
    end)
    assert.is_true(seen)
  end)

  it("filters, sorts and pages", function()
    local _, body = http.json("POST", url .. "/s/_search", {
      query = { bool = { filter = { { term = { tag = "even" } }, { range = { n = { gte = 10 } } } } } },
      sort = { { n = "desc" } }, from = 1, size = 3, _source = { "n" } })
    assert.equal(8, body.hits.total.value)
    local ids, sorts = {}, {}
    for i, h in ipairs(body.hits.hits) do ids[i], sorts[i] = h._id, h.sort[1] end
    assert.same({ "22", "20", "18" }, ids)
    assert.same({ 22, 20, 18 }, sorts)
    assert.same({ n = 22 }, body.hits.hits[1]._source)
    assert.equal(require("espipe.server.json").null, body.hits.max_score)
  end)

  it("honours track_total_hits", function()
    local _, body = http.json("POST", url .. "/s/_search", { size = 0, track_total_hits = 4 })
    assert.same({ value = 4, relation = "gte" }, body.hits.total)
    _, body = http.json("POST", url .. "/s/_search", { size = 0, track_total_hits = false })
    assert.is_nil(body.hits.total)
    local status
    status, body = http.json("POST", url .. "/s/_search", { track_total_hits = -2 })
    assert.equal(400, status)
    assert.equal("[track_total_hits] parameter must be positive or equals to -1, got -2", body.error.reason)
    _, body = http.json("POST", url .. "/s/_search?rest_total_hits_as_int=true", { size = 0 })
    assert.equal(25, body.hits.total)
  end)

  it("counts", function()
    local status, body = http.json("POST", url .. "/s/_count", { query = { term = { tag = "odd" } } })
    assert.equal(200, status)
    assert.equal(13, body.count)
  end)

  it("scrolls through every document once, then clears the context", function()
    local status, body = http.json("POST", url .. "/s/_search?scroll=1m", { size = 10, sort = { "_doc" } })
    assert.equal(200, status)
    local seen, pages = {}, 0
    local id = body._scroll_id
    while #body.hits.hits > 0 do
      pages = pages + 1
      assert.equal(25, body.hits.total.value)
      for _, h in ipairs(body.hits.hits) do
        assert.is_nil(seen[h._id])
        seen[h._id] = true
      end
      status, body = http.json("POST", url .. "/_search/scroll", { scroll = "1m", scroll_id = id })
      assert.equal(200, status)
    end
    assert.equal(3, pages)
    local n = 0
    for _ in pairs(seen) do n = n + 1 end
    assert.equal(25, n)
    status, body = http.json("DELETE", url .. "/_search/scroll", { scroll_id = id })
    assert.equal(200, status)
    assert.same({ succeeded = true, num_freed = 1 }, body)
    status, body = http.json("DELETE", url .. "/_search/scroll", { scroll_id = id })
    assert.equal(404, status)
    assert.same({ succeeded = true, num_freed = 0 }, body)
    status, body = http.json("POST", url .. "/_search/scroll", { scroll = "1m", scroll_id = id })
    assert.equal(404, status)
    assert.equal("search_phase_execution_exception", body.error.type)
    assert.equal("all shards failed", body.error.reason)
    assert.equal("search_context_missing_exception", body.error.root_cause[1].type)
    assert.matches("^No search context found for id %[%d+%]$", body.error.caused_by.reason)
    assert.equal(-1, body.error.failed_shards[1].shard)
    assert.is_true(body.error.grouped)
  end)

  it("expires scroll contexts after their keep_alive", function()
    local _, body = http.json("POST", url .. "/s/_search?scroll=100ms", { size = 5 })
    local id = body._scroll_id
    local gone = poll(5, function()
      -- (no scroll= here: that would extend the keep_alive)
      return (http.json("GET", url .. "/_search/scroll?scroll_id=" .. id)) == 404
    end)
    assert.is_true(gone)
  end)

  it("lets the scroll body win over query parameters", function()
    local _, body = http.json("POST", url .. "/s/_search?scroll=1m", { size = 5 })
    local status = http.json("POST", url .. "/_search/scroll?scroll_id=bogus", { scroll = "1m", scroll_id = body._scroll_id })
    assert.equal(200, status)
  end)

  it("splits scroll and PIT slices disjointly and completely", function()
    for _, max in ipairs({ 2, 5 }) do
      local seen, total = {}, 0
      for slice = 0, max - 1 do
        local _, body = http.json("POST", url .. "/s/_search?scroll=1m", { size = 100, slice = { id = slice, max = max } })
        for _, h in ipairs(body.hits.hits) do
          assert.is_nil(seen[h._id], "doc " .. h._id .. " in two slices")
          seen[h._id] = true
          total = total + 1
        end
      end
      assert.equal(25, total)
    end
  end)

  it("pages a point in time with search_after and the _shard_doc tiebreaker", function()
    local status, pit = http.json("POST", url .. "/s/_pit?keep_alive=1m")
    assert.equal(200, status)
    assert.is_string(pit.id)
    -- documents written after the PIT opened stay invisible to it
    http.json("PUT", url .. "/s/_doc/late?refresh=true", { n = 100 })
    local seen, after, pages = {}, nil, 0
    repeat
      local body
      status, body = http.json("POST", url .. "/_search",
        { size = 7, pit = { id = pit.id, keep_alive = "1m" }, sort = { { ["tag.keyword"] = "asc" } }, search_after = after })
      assert.equal(200, status)
      assert.is_string(body.pit_id)
      for _, h in ipairs(body.hits.hits) do
        assert.is_nil(seen[h._id])
        seen[h._id] = true
        assert.equal(2, #h.sort)
        after = h.sort
      end
      pages = pages + 1
    until #body.hits.hits == 0
    assert.is_nil(seen.late)
    local n = 0
    for _ in pairs(seen) do n = n + 1 end
    assert.equal(25, n)
    assert.equal(5, pages)
    status = http.json("POST", url .. "/s/_search", { pit = { id = pit.id } })
    assert.equal(400, status)
    status = http.json("DELETE", url .. "/_pit", { id = pit.id })
    assert.equal(200, status)
    status = http.json("DELETE", url .. "/_pit", { id = pit.id })
    assert.equal(404, status)
    local body
    status, body = http.json("POST", url .. "/_search", { pit = { id = pit.id } })
    assert.equal(404, status)
    assert.equal("search_context_missing_exception", body.error.caused_by.type)
    http.json("DELETE", url .. "/s/_doc/late?refresh=true")
  end)

  it("refuses size 0 in a scroll context", function()
    local status, body = http.json("POST", url .. "/s/_search?scroll=1m", { size = 0 })
    assert.equal(400, status)
    assert.matches("%[size%] cannot be %[0%] in a scroll context", body.error.reason)
  end)
end)
