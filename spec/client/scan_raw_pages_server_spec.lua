-- client:scan in the mode Parquet export uses (raw_pages, advance = true): each
-- page is parsed once by the consumer, which reports the position back; a
-- slice's next page is requested only then; every document comes out exactly
-- once; a page not advanced is advanced by the scan itself; positions resume.
local devserver = require "support.devserver"
local client_mod = require "espipe.client"
local core = require "espipe.core"
local parquet = require "espipe.parquet"
local S = require "pipeline.support"

local N = 730

local MAPPING = { properties = { n = { type = "long" }, name = { type = "keyword" } } }

-- ids and last sort values read by the test itself, with the decoding core
-- (the curl transport hands raw pages over as response bodies: tostring
-- copies their bytes)
local function read_page(body)
  local v = assert(core.search_response(tostring(body)))
  local ids = {}
  for i, hit in ipairs(v.hits.hits) do ids[i] = hit._id end
  local last = v.hits.hits[#ids]
  return ids, last and last.sort
end

describe("scan raw_pages with advance #server", function()
  local server, client, dir

  setup(function()
    server = devserver.start { nodes = 1 }
    client = client_mod.new { hosts = { server.url } }
    assert(client.indices:create { index = "docs", mappings = MAPPING, settings = { number_of_shards = 3 } })
    local bi = client:bulk_indexer { index = "docs", batch_docs = 200 }
    for i = 1, N do bi:index({ n = i, name = "d" .. i }, { id = "d" .. i }) end
    assert.equal(N, bi:close().ok)
    assert(client.indices:create { index = "empty", mappings = MAPPING })
    client:refresh { index = "docs,empty" }
  end)
  teardown(function()
    if client then client:close() end
    if server then server.stop() end
    S.cleanup()
  end)
  before_each(function() dir = S.tmpdir() end)

  local columns = parquet.schema.from_mapping({ properties = MAPPING.properties },
    { prefix = "_source", meta = { "_id" } })

  for _, slices in ipairs { 1, 3 } do
    it("hands each page out once, parsed by write_page, with " .. slices .. " slice(s)", function()
      local w = assert(parquet.open(dir .. "/out.parquet", columns, { codec = "none" }))
      local r = client:scan("docs", nil, { slices = slices, size = 100, raw_pages = true, advance = true })
      local seen, count, pages = {}, 0, 0
      for page in r:pages() do
        assert.is_true(page.waiting)
        assert.is_nil(page.n)
        if slices == 1 then
          -- the slice's next request waits for the position
          assert.equal(0, client:inflight())
        end
        local n, pos = assert(w:write_page(page.body))
        assert.is_equal(page, r:advance(page, pos))
        local ids, last_sort = read_page(page.body)
        assert.equal(#ids, n)
        assert.equal(#ids, page.n)
        assert.is_nil(page.waiting)
        if #ids > 0 then assert.same(last_sort, page.search_after) end
        assert.equal(#ids < 100, page.last)
        for _, id in ipairs(ids) do
          assert.is_nil(seen[id], id .. " twice")
          seen[id] = true
        end
        count, pages = count + #ids, pages + 1
      end
      assert.equal(N, count)
      assert.is_true(pages >= 8)
      assert.equal(N, assert(w:close()).rows)
    end)
  end

  it("advances a page the consumer did not advance, reading its position itself", function()
    local r = client:scan("docs", nil, { slices = 2, size = 50, raw_pages = true, advance = true })
    local held, count = {}, 0
    for page in r:pages() do
      -- a body is only valid until the next page is asked for: read it now
      local ids, last_sort = read_page(page.body)
      held[#held + 1] = { page = page, ids = ids, last_sort = last_sort }
    end
    for _, h in ipairs(held) do
      local page = h.page
      assert.is_nil(page.waiting)
      assert.equal(#h.ids, page.n)
      if #h.ids > 0 then assert.same(h.last_sort, page.search_after) end
      -- the scan freed the bytes once it moved on
      assert.has_error(function() return #page.body end, "the response body was released")
      count = count + page.n
    end
    assert.equal(N, count)
  end)

  it("resumes from an advanced page's position without repeating it", function()
    local r = client:scan("docs", nil, { size = 100, raw_pages = true, advance = true, keep_pit = true })
    local first = {}
    local page = r:next_page()
    r:advance(page, assert(parquet.page_position(page.body)))
    for _, id in ipairs(read_page(page.body)) do first[id] = true end
    local saved, pit_id = page.search_after, page.pit_id
    r:close()
    local r2 = client:scan("docs", nil, { size = 100, raw_pages = true, advance = true,
      pit_id = pit_id, resume = { ["0"] = { search_after = saved } } })
    local count = 100
    for p in r2:pages() do
      local n = assert(parquet.open(dir .. "/x.parquet", columns, {})) -- a writer per page is fine here
      local _, pos = assert(n:write_page(p.body))
      n:close()
      r2:advance(p, pos)
      for _, id in ipairs(read_page(p.body)) do
        assert.is_nil(first[id], id .. " repeated")
        first[id] = true
      end
      count = count + p.n
    end
    assert.is_nil(r2.restarted)
    assert.equal(N, count)
  end)

  it("rejects what is not a page or a position", function()
    local r = client:scan("docs", nil, { size = 100, raw_pages = true, advance = true })
    local page = r:next_page()
    assert.has_error(function() r:advance({}, { hits = 1 }) end, "advance: page must be a page of this scan")
    assert.has_error(function() r:advance(page, { hits = "7" }) end,
      "advance: position must be a table with an integer hits count, as write_page returns")
    assert.is_true(page.waiting)
    r:close()
  end)

  it("exports an empty index to a manifest without part files", function()
    local export = require "espipe.pipeline.export"
    local out = dir .. "/empty"
    local m = assert(export.run { client = client, index = "empty", to = out, format = "parquet" })
    assert.equal(0, m.rows)
    assert.same({ "manifest.json" }, S.listdir(out))
  end)
end)
