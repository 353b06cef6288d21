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

  it("writes hits as ES does: escaped ids, routing, _source filtering, sort values, filter_path", function()
    http.json("PUT", url .. "/shape", { settings = { number_of_shards = 2, refresh_interval = "-1" } })
    local odd = 'q"b\\c\1e'
    http.bulk(url, {
      { index = { _index = "shape", _id = odd } }, { a = 1, b = { c = "x", d = "y" }, e = {} },
      { index = { _index = "shape", _id = "r", routing = 'u"1' } }, { a = 2, b = { c = "z" } },
      { index = { _index = "shape", _id = "plain" } }, { a = 3 },
    })
    http.json("POST", url .. "/shape/_refresh")
    local _, body = http.json("POST", url .. "/shape/_search", { size = 10, sort = { { a = "asc" } } })
    local hits = body.hits.hits
    assert.equal(3, #hits)
    assert.same({ odd, "r", "plain" }, { hits[1]._id, hits[2]._id, hits[3]._id })
    assert.equal("shape", hits[1]._index)
    assert.is_nil(hits[1]._routing)
    assert.equal('u"1', hits[2]._routing)
    assert.same({ 1 }, hits[1].sort)
    assert.same({ c = "x", d = "y" }, hits[1]._source.b)
    assert.same({}, hits[1]._source.e)
    _, body = http.json("POST", url .. "/shape/_search",
      { size = 10, sort = { "_doc" }, _source = { includes = { "b.*" }, excludes = { "b.d" } } })
    for _, h in ipairs(body.hits.hits) do
      assert.equal("number", type(h.sort[1]))
      if h._id == odd then assert.same({ b = { c = "x" } }, h._source) end
      if h._id == "plain" then assert.same({}, h._source) end
    end
    _, body = http.json("POST", url .. "/shape/_search?scroll=1m", { size = 2, _source = false })
    assert.equal(2, #body.hits.hits)
    assert.is_nil(body.hits.hits[1]._source)
    assert.equal(1, body.hits.max_score)
    assert.same({ value = 3, relation = "eq" }, body.hits.total)
    _, body = http.json("POST", url .. "/_search/scroll?filter_path=hits.hits._id,_scroll_id",
      { scroll = "1m", scroll_id = body._scroll_id })
    assert.same({ "_id" }, (function()
      local keys = {}
      for k in pairs(body.hits.hits[1]) do keys[#keys + 1] = k end
      return keys
    end)())
    assert.is_string(body._scroll_id)
    assert.is_nil(body.took)
    http.json("DELETE", url .. "/shape")
  end)

  it("refuses size 0 in a scroll context", function()
    local status, body = http.json("POST", url .. "/s/_search?scroll=1m", { size = 0 })
    assert.equal(400, status)
    assert.matches("%[size%] cannot be %[0%] in a scroll context", body.error.reason)
  end)
end)

-- Scans over an index large enough that a context which re-read the whole
-- index on every page would show: each document once, with and without
-- slices, the snapshot frozen at open, exact resumption, context counting.
describe("espipe serve #server: scanning a large index", function()
  local N = 20000
  local server, url
  setup(function()
    server = devserver.start()
    url = server.url
    http.json("PUT", url .. "/big", { settings = { number_of_shards = 3, refresh_interval = "-1" } })
    local lines = {}
    for i = 1, N do
      lines[#lines + 1] = { index = { _index = "big", _id = "d" .. i } }
      lines[#lines + 1] = { n = i, tag = (i % 2 == 0) and "even" or "odd" }
    end
    local status, body = http.bulk(url, lines, "?refresh=true")
    assert.equal(200, status)
    assert.is_false(body.errors)
  end)
  teardown(function() server.stop() end)

  local function open_contexts()
    local status, body = http.json("GET", url .. "/_espipe/stats")
    assert.equal(200, status)
    return body.search
  end

  -- every hit of a PIT scan, in order: list of { id =, sort = }
  local function pit_scan(extra, size)
    local status, pit = http.json("POST", url .. "/big/_pit?keep_alive=1m")
    assert.equal(200, status)
    local out, after, id, pages = {}, nil, pit.id, 0
    while true do
      -- a context that does not advance would loop forever: bound the pages
      pages = pages + 1
      assert.is_true(pages <= N / (size or 1000) + 2, "the scan does not end")
      local body = { size = size or 1000, pit = { id = id, keep_alive = "1m" }, search_after = after }
      for k, v in pairs(extra or {}) do body[k] = v end
      local r
      status, r = http.json("POST", url .. "/_search", body)
      assert.equal(200, status)
      id = r.pit_id
      if #r.hits.hits == 0 then break end
      for _, h in ipairs(r.hits.hits) do out[#out + 1] = { id = h._id, sort = h.sort, n = h._source.n } end
      after = r.hits.hits[#r.hits.hits].sort
    end
    assert.equal(200, (http.json("DELETE", url .. "/_pit", { id = id })))
    return out
  end

  local function scroll_scan(extra)
    local body = { size = 1000, sort = { "_doc" } }
    for k, v in pairs(extra or {}) do body[k] = v end
    local status, r = http.json("POST", url .. "/big/_search?scroll=1m", body)
    assert.equal(200, status)
    local out, id = {}, r._scroll_id
    while #r.hits.hits > 0 do
      assert.is_true(#out <= N, "the scroll does not end")
      for _, h in ipairs(r.hits.hits) do out[#out + 1] = { id = h._id } end
      status, r = http.json("POST", url .. "/_search/scroll", { scroll = "1m", scroll_id = id })
      assert.equal(200, status)
    end
    assert.equal(200, (http.json("DELETE", url .. "/_search/scroll", { scroll_id = id })))
    return out
  end

  -- asserts that the hits hold each of the expected ids exactly once
  local function assert_each_once(hits, expected_ids)
    local seen, n = {}, 0
    for _, h in ipairs(hits) do
      assert.is_nil(seen[h.id], "doc " .. h.id .. " seen twice")
      seen[h.id] = true
      n = n + 1
    end
    assert.equal(#expected_ids, n)
    for _, id in ipairs(expected_ids) do assert.is_true(seen[id], "doc " .. id .. " missing") end
  end

  local all_ids = {}
  for i = 1, N do all_ids[i] = "d" .. i end

  it("returns every document once from a PIT scan, whole and in 3 slices", function()
    local whole = pit_scan()
    assert_each_once(whole, all_ids)
    -- the implicit _shard_doc tiebreaker: strictly increasing across pages
    for i = 2, #whole do assert.is_true(whole[i].sort[1] > whole[i - 1].sort[1]) end
    local sliced = {}
    for slice = 0, 2 do
      local part = pit_scan({ slice = { id = slice, max = 3 } })
      assert.is_true(#part > 0)
      for _, h in ipairs(part) do sliced[#sliced + 1] = h end
    end
    assert_each_once(sliced, all_ids)
  end)

  it("returns every document once from a scroll, whole and in 3 slices", function()
    assert_each_once(scroll_scan(), all_ids)
    local sliced = {}
    for slice = 0, 2 do
      for _, h in ipairs(scroll_scan({ slice = { id = slice, max = 3 } })) do sliced[#sliced + 1] = h end
    end
    assert_each_once(sliced, all_ids)
  end)

  it("scans a query through a PIT: only the matches, each once, and their exact total", function()
    local evens = {}
    for i = 2, N, 2 do evens[#evens + 1] = "d" .. i end
    local hits = pit_scan({ query = { term = { tag = "even" } } }, 700)
    assert_each_once(hits, evens)
    for _, h in ipairs(hits) do assert.equal(0, h.n % 2) end
    local status, pit = http.json("POST", url .. "/big/_pit?keep_alive=1m")
    assert.equal(200, status)
    local _, r = http.json("POST", url .. "/_search",
      { size = 1, pit = { id = pit.id }, query = { term = { tag = "even" } }, track_total_hits = true })
    assert.same({ value = N / 2, relation = "eq" }, r.hits.total)
    _, r = http.json("POST", url .. "/_search", { size = 1, pit = { id = pit.id } })
    assert.same({ value = 10000, relation = "gte" }, r.hits.total)
    _, r = http.json("POST", url .. "/_search", { size = 1, pit = { id = pit.id }, track_total_hits = true })
    assert.same({ value = N, relation = "eq" }, r.hits.total)
    assert.equal(200, (http.json("DELETE", url .. "/_pit", { id = r.pit_id })))
  end)

  it("resumes a PIT exactly after a _shard_doc sort value", function()
    local whole = pit_scan()
    local status, pit = http.json("POST", url .. "/big/_pit?keep_alive=1m")
    assert.equal(200, status)
    for _, at in ipairs({ 1, 1500, 6667, N - 3, N }) do
      local r
      status, r = http.json("POST", url .. "/_search",
        { size = 700, pit = { id = pit.id }, sort = { "_shard_doc" }, search_after = whole[at].sort })
      assert.equal(200, status)
      local want = math.min(700, N - at)
      assert.equal(want, #r.hits.hits)
      for i, h in ipairs(r.hits.hits) do
        assert.equal(whole[at + i].id, h._id)
        assert.same(whole[at + i].sort, h.sort)
      end
    end
    assert.equal(200, (http.json("DELETE", url .. "/_pit", { id = pit.id })))
  end)

  it("keeps documents written after the PIT opened out of it, and deleted ones in", function()
    local status, pit = http.json("POST", url .. "/big/_pit?keep_alive=1m")
    assert.equal(200, status)
    local _, first = http.json("POST", url .. "/_search", { size = 10, pit = { id = pit.id } })
    assert.equal(201, (http.json("PUT", url .. "/big/_doc/late?refresh=true", { n = 0, tag = "late" })))
    assert.equal(200, (http.json("DELETE", url .. "/big/_doc/d7?refresh=true")))
    local _, now = http.json("POST", url .. "/big/_search", { size = 0, query = { ids = { values = { "late", "d7" } } } })
    assert.equal(1, now.hits.total.value)
    local seen, after, id, pages = {}, nil, pit.id, 0
    repeat
      pages = pages + 1
      assert.is_true(pages <= N / 1000 + 2, "the scan does not end")
      local r
      status, r = http.json("POST", url .. "/_search", { size = 1000, pit = { id = id }, search_after = after })
      assert.equal(200, status)
      id = r.pit_id
      for _, h in ipairs(r.hits.hits) do
        seen[h._id] = true
        after = h.sort
      end
    until #r.hits.hits == 0
    assert.is_nil(seen.late)
    assert.is_true(seen.d7)
    local n = 0
    for _ in pairs(seen) do n = n + 1 end
    assert.equal(N, n)
    assert.is_string(first.hits.hits[1]._id)
    assert.equal(200, (http.json("DELETE", url .. "/_pit", { id = id })))
    http.json("DELETE", url .. "/big/_doc/late?refresh=true")
    http.json("PUT", url .. "/big/_doc/d7?refresh=true", { n = 7, tag = "odd" })
  end)

  it("counts open scroll and PIT contexts until they are cleared", function()
    assert.same({ open_contexts = 0, open_scrolls = 0, open_pits = 0 }, open_contexts())
    local _, pit = http.json("POST", url .. "/big/_pit?keep_alive=1m")
    local _, s1 = http.json("POST", url .. "/big/_search?scroll=1m", { size = 10 })
    local _, s2 = http.json("POST", url .. "/big/_search?scroll=1m", { size = 10, query = { term = { tag = "odd" } } })
    assert.same({ open_contexts = 3, open_scrolls = 2, open_pits = 1 }, open_contexts())
    assert.equal(200, (http.json("DELETE", url .. "/_search/scroll", { scroll_id = { s1._scroll_id, s2._scroll_id } })))
    assert.same({ open_contexts = 1, open_scrolls = 0, open_pits = 1 }, open_contexts())
    assert.equal(200, (http.json("DELETE", url .. "/_pit", { id = pit.id })))
    assert.same({ open_contexts = 0, open_scrolls = 0, open_pits = 0 }, open_contexts())
    -- an expired context stops counting without being cleared
    http.json("POST", url .. "/big/_search?scroll=100ms", { size = 1 })
    assert.equal(1, open_contexts().open_scrolls)
    assert.is_true(poll(5, function() return open_contexts().open_contexts == 0 end))
  end)
end)
