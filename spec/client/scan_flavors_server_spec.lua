-- client:scan against every dev-server flavour: each cluster's own point in
-- time (or a scroll where it has none), every document exactly once, and no
-- search context left open.
local devserver = require("spec.support.devserver")
local client_mod = require("espipe.client")
local http = require("spec.support.http")
local version = require("espipe.client.version")

local N = 2500

local function fill(client)
  assert(client.indices:create { index = "docs", settings = { number_of_shards = 3 } })
  assert(version.of(client)) -- (the indexer names the type 6.x wants once the client knows the version)
  local bi = client:bulk_indexer { index = "docs", batch_docs = 500 }
  for i = 1, N do bi:index({ n = i }, { id = "d" .. i }) end
  assert.equal(N, bi:close().ok)
  client:refresh { index = "docs" }
end

local function scan_ids(client, opts)
  local s = client:scan("docs", nil, opts)
  local seen, count = {}, 0
  while true do
    local hit, err = s:next_hit()
    assert.is_nil(err)
    if not hit then break end
    assert.is_nil(seen[hit._id], "twice: " .. hit._id)
    seen[hit._id], count = true, count + 1
  end
  s:close()
  return count, s
end

local function open_contexts(url)
  local _, stats = http.json("GET", url .. "/_espipe/stats")
  return stats.search
end

-- A filled dev server of that flavour for the enclosing describe block:
-- env.server, env.client once its setup ran.
local function filled_server(flavor, nodes)
  local env = {}
  setup(function()
    env.server = devserver.start { nodes = nodes, args = { "--flavor", flavor } }
    env.client = client_mod.new { hosts = { env.server.url } }
    fill(env.client)
  end)
  teardown(function()
    if env.client then env.client:close() end
    if env.server then env.server.stop() end
  end)
  return env
end

for _, case in ipairs {
  { flavor = "opensearch-2", method = "pit" },
  { flavor = "es-7.17", method = "pit" },
  { flavor = "es-6.8", method = "scroll" },
} do
  describe("client:scan on " .. case.flavor .. " #server", function()
    local env = filled_server(case.flavor, 2)

    for _, slices in ipairs { 1, 3 } do
      it("reads every document once with " .. slices .. " slice(s), by " .. case.method, function()
        -- small pages: many page boundaries, where a wrong tiebreaker skips hits
        local count, s = scan_ids(env.client, { slices = slices, size = 7 })
        assert.equal(N, count)
        assert.equal(case.method, s.method)
        assert.equal(0, open_contexts(env.server.url).open_contexts)
      end)
    end

    it("hands out raw pages (as exports read them) with every document once", function()
      local s = env.client:scan("docs", nil, { slices = 2, size = 100, raw_pages = true, advance = true })
      local total = 0
      while true do
        local page, err = s:next_page()
        assert.is_nil(err)
        if not page then break end
        local v = assert(require("espipe.core").search_response(tostring(page.body)))
        total = total + #v.hits.hits
        assert.truthy(total <= N, "more hits than documents: a page came twice")
        assert(s:advance(page))
      end
      s:close()
      assert.equal(N, total)
      assert.equal(case.method, s.method)
    end)

    it("knows the cluster once it has asked", function()
      local v = assert(version.of(env.client))
      assert.equal(case.flavor:match("^opensearch") and "opensearch" or "elasticsearch", v.distribution)
      -- a scan started now uses what is known without asking again
      local count = scan_ids(env.client, { size = 500 })
      assert.equal(N, count)
    end)
  end)
end

describe("client:scan asked for a PIT where there is none #server", function()
  local env = filled_server("es-6.8", 1)

  it("fails loudly, naming the version, instead of scrolling", function()
    assert(version.of(env.client))
    local s = env.client:scan("docs", nil, { method = "pit" })
    local hit, err = s:next_hit()
    assert.is_nil(hit)
    assert.matches("elasticsearch 6.8.23 has no point%-in%-time API", tostring(err))
  end)
end)

-- Elasticsearch 7.10-7.14 open a point in time but refuse a slice in it
-- (7.15 brought sliced PITs): a sliced scan scrolls there, a single one
-- keeps its PIT (on _doc,_id where _shard_doc is missing, 7.10-7.11).
for _, flavor in ipairs { "es-7.10", "es-7.12" } do
  describe("client:scan on " .. flavor .. ", a PIT without slices #server", function()
    local env = filled_server(flavor, 2)

    it("reads by sliced scrolls when sliced, from the first request on", function()
      local fresh = client_mod.new { hosts = { env.server.url } } -- (its version not read yet)
      local count, s = scan_ids(fresh, { slices = 3, size = 7 })
      fresh:close()
      assert.equal(N, count)
      assert.equal("scroll", s.method)
      local _, stats = http.json("GET", env.server.url .. "/_espipe/stats")
      assert.equal(0, stats.search.open_contexts)
    end)

    it("keeps its point in time when not sliced", function()
      local count, s = scan_ids(env.client, { size = 7 })
      assert.equal(N, count)
      assert.equal("pit", s.method)
    end)

    it("refuses a sliced PIT asked for, naming the version", function()
      local s = env.client:scan("docs", nil, { method = "pit", slices = 2 })
      local hit, err = s:next_hit()
      assert.is_nil(hit)
      assert.matches("cannot slice a point in time", tostring(err))
      s:close()
    end)

    it("is refused by the server when it slices a PIT anyway", function()
      local _, pit = http.json("POST", env.server.url .. "/docs/_pit?keep_alive=1m")
      local st, body = http.json("POST", env.server.url .. "/_search",
        { pit = { id = pit.id }, slice = { id = 0, max = 2 }, size = 1 })
      assert.equal(400, st)
      assert.equal("Validation Failed: 1: [slice] can only be used with [scroll] requests;", body.error.reason)
      http.json("DELETE", env.server.url .. "/_pit", { id = pit.id })
    end)
  end)
end
