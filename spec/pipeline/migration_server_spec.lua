-- Cross-version migration end to end: `espipe reindex` from each source
-- flavour of the dev server into each destination flavour, passthrough and
-- through a transform; the destination is read back and compared with the
-- source document by document, routing included. Then `espipe export` of
-- each flavour to Parquet, read back by DuckDB.
local devserver = require "spec.support.devserver"
local client_mod = require "espipe.client"
local version = require "espipe.client.version"
local duckdb = require "parquet.duckdb"
local J = require "pipeline.jobs"
local S = require "pipeline.support"

local N = 50000
local FLAVORS = { "es-6.8", "es-7.17", "es-8.15", "opensearch-2" }
local ROUTES = {
  { "es-6.8", "es-8.15" }, { "es-7.17", "es-8.15" }, { "es-8.15", "opensearch-2" },
  { "opensearch-2", "es-8.15" }, { "es-6.8", "opensearch-2" }, { "es-8.15", "es-6.8" },
}

-- document i: every 7th has its own routing; text with escapes and UTF-8
local function source_doc(i)
  return { n = i, name = "doc \"" .. i .. "\" é", tags = { "t" .. (i % 5), "all" }, nested = { k = i % 3 } }
end
local function routing_of(i) return i % 7 == 0 and ("r" .. (i % 11)) or nil end

-- what the transform below makes of a source document
local function transformed(doc)
  local out = {}
  for k, v in pairs(doc) do out[k] = v end
  out.n2 = doc.n * 2
  return out
end
local TRANSFORM = "return function(doc) doc.n2 = doc.n * 2 return doc end\n"

-- plain deep equality: assert.same's machinery costs seconds over 50k documents,
-- so it is called only to report a difference
local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- every hit of an index: id -> { source, routing }
local function read_all(client, index)
  local out, count = {}, 0
  local s = client:scan(index, nil, { size = 1000, slices = 2 })
  while true do
    local hit, err = s:next_hit()
    assert.is_nil(err)
    if not hit then break end
    assert.is_nil(out[hit._id], "twice: " .. hit._id)
    out[hit._id], count = { source = hit._source, routing = hit._routing }, count + 1
  end
  s:close()
  return out, count
end

describe("cross-version migration #server", function()
  local servers, clients, dir = {}, {}, nil

  setup(function()
    dir = S.tmpdir()
    S.write(dir .. "/transform.lua", TRANSFORM)
    for _, f in ipairs(FLAVORS) do
      servers[f] = devserver.start { args = { "--flavor", f } }
      clients[f] = client_mod.new { hosts = { servers[f].url } }
      assert(clients[f].indices:create { index = "src", settings = { number_of_shards = 3 } })
      assert(version.of(clients[f])) -- (the indexer names the type 6.x wants once the client knows the version)
      local bi = clients[f]:bulk_indexer { index = "src", batch_docs = 2000 }
      for i = 1, N do bi:index(source_doc(i), { id = "d" .. i, routing = routing_of(i) }) end
      assert.equal(N, bi:close().ok)
      clients[f]:refresh { index = "src" }
    end
  end)
  teardown(function()
    for _, c in pairs(clients) do c:close() end
    for _, s in pairs(servers) do s.stop() end
    S.cleanup()
  end)

  for r, route in ipairs(ROUTES) do
    for _, mode in ipairs { "passthrough", "transform" } do
      local from, to = route[1], route[2]
      it(from .. " -> " .. to .. ", " .. mode .. ": the destination equals the source", function()
        local dest = "m" .. r .. "-" .. mode
        local code, out, err = J.espipe("reindex " .. S.q(servers[from].url .. "/src") .. " "
          .. S.q(servers[to].url .. "/" .. dest) .. " --slices 2 --quiet"
          .. (mode == "transform" and (" --transform " .. S.q(dir .. "/transform.lua")) or ""))
        assert.equal(0, code, out .. err)
        local got, count = read_all(clients[to], dest)
        assert.equal(N, count)
        for i = 1, N do
          local want = source_doc(i)
          if mode == "transform" then want = transformed(want) end
          local g = got["d" .. i]
          if not (g and same(want, g.source)) then assert.same(want, g and g.source, "d" .. i) end
          if g.routing ~= routing_of(i) then assert.equal(routing_of(i), g.routing, "routing of d" .. i) end
        end
      end)
    end
  end

  it("es-8.15 -> es-6.8 into an existing index writes under the type of its mapping", function()
    local dest = clients["es-6.8"]
    assert(dest:json_request { method = "PUT", path = "/typed", headers = { ["Content-Type"] = "application/json" },
      body = '{"mappings":{"doc":{"properties":{"n":{"type":"long"}}}}}' })
    local code, out, err = J.espipe("reindex " .. S.q(servers["es-8.15"].url .. "/src") .. " "
      .. S.q(servers["es-6.8"].url .. "/typed") .. " --query '{\"range\":{\"n\":{\"lte\":100}}}' --quiet")
    assert.equal(0, code, out .. err)
    local got, count = read_all(dest, "typed")
    assert.equal(100, count)
    assert.equal(100, got.d100.source.n)
    -- what the 6.8 server answers items with is the type they were written under
    local r = assert(dest:json_request { method = "POST", path = "/typed/_search", query = "q=n:7",
      headers = { ["Content-Type"] = "application/json" }, body = "{}" })
    assert.equal(1, r.hits.total)
  end)

  for _, f in ipairs(FLAVORS) do
    it("exports " .. f .. " to Parquet that DuckDB reads back exactly", function()
      local out = dir .. "/" .. f .. ".parquet"
      local code, o, e = J.espipe("export " .. S.q(servers[f].url .. "/src") .. " --format parquet --to "
        .. S.q(out) .. " --quiet")
      assert.equal(0, code, o .. e)
      local rows = duckdb.query { "SELECT count(*) AS c, sum(n) AS s, count(DISTINCT _id) AS ids FROM read_parquet("
        .. duckdb.quote(out) .. ")" }[1]
      assert.same({ c = tostring(N), s = string.format("%d", N * (N + 1) / 2), ids = tostring(N) },
                  { c = tostring(rows[1].c), s = tostring(rows[1].s), ids = tostring(rows[1].ids) })
    end)
  end
end)
