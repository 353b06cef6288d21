-- Index setup from the command line: --create-index (created when missing,
-- compared when present, --update-mapping), per month index with
-- --index-pattern, for a reindex destination, and --template.
local devserver = require "support.devserver"
local http = require "support.http"
local json = require "espipe.json"
local J = require "pipeline.jobs"
local S = require "pipeline.support"

local function mapping(n_type)
  return { settings = { number_of_shards = 2 }, mappings = { dynamic = "strict",
    properties = { ["@timestamp"] = { type = "date" }, n = { type = n_type } } } }
end

describe("espipe load/reindex --create-index and --template #server", function()
  local server, dir
  setup(function()
    server = devserver.start {}
    dir = S.tmpdir()
    S.write(dir .. "/long.json", json.encode(mapping("long")))
    S.write(dir .. "/keyword.json", json.encode(mapping("keyword")))
    local f = assert(io.open(dir .. "/docs.ndjson", "wb"))
    for i = 1, 40 do f:write('{"@timestamp":"2026-0', i % 2 + 1, '-03T00:00:00Z","n":', i, '}\n') end
    f:close()
  end)
  teardown(function()
    if server then server.stop() end
    S.cleanup()
  end)

  local function espipe(args) return J.espipe(args .. " --url " .. server.url) end
  local function get(path) return select(2, http.json("GET", server.url .. path)) end

  it("creates a missing index with the file's settings and mappings, then accepts the same mapping", function()
    local code, _, err = espipe("load " .. dir .. "/docs.ndjson --index one --create-index " .. dir .. "/long.json --quiet")
    assert.equal(0, code, err)
    assert.equal("long", get("/one/_mapping").one.mappings.properties.n.type)
    assert.equal("strict", get("/one/_mapping").one.mappings.dynamic)
    assert.equal("2", tostring(get("/one/_settings").one.settings.index.number_of_shards))
    code, _, err = espipe("load " .. dir .. "/docs.ndjson --index one --create-index " .. dir .. "/long.json --quiet")
    assert.equal(0, code, err)
  end)

  it("refuses an existing index whose mapping differs, in one line, unless --update-mapping", function()
    assert.equal(200, (http.json("PUT", server.url .. "/two", { mappings = { properties = { other = { type = "long" } } } })))
    local code, _, err = espipe("load " .. dir .. "/docs.ndjson --index two --create-index " .. dir .. "/long.json --quiet")
    assert.equal(2, code)
    assert.equal("espipe load: the mapping of two differs from the --create-index file: two.dynamic is null,"
      .. ' the file says "strict" (--update-mapping puts the file\'s mapping)\n', err)
    code, _, err = espipe("load " .. dir .. "/docs.ndjson --index two --create-index " .. dir .. "/long.json"
      .. " --update-mapping --quiet")
    assert.equal(0, code, err)
    assert.equal("long", get("/two/_mapping").two.mappings.properties.n.type)
  end)

  it("gives every month index of an --index-pattern load the file's mapping", function()
    local code, _, err = espipe("load " .. dir .. "/docs.ndjson --index-pattern 'mon-{@timestamp:%Y.%m}' --create-index "
      .. dir .. "/long.json --quiet")
    assert.equal(0, code, err)
    local m = get("/mon-*/_mapping")
    assert.equal("long", m["mon-2026.01"].mappings.properties.n.type)
    assert.equal("strict", m["mon-2026.02"].mappings.dynamic)
    -- a differing file is refused against the months that exist
    code, _, err = espipe("load " .. dir .. "/docs.ndjson --index-pattern 'mon-{@timestamp:%Y.%m}' --create-index "
      .. dir .. "/keyword.json --quiet")
    assert.equal(2, code)
    assert.matches("the mapping of mon%-2026%.0%d differs from the %-%-create%-index file: mon%-2026%.0%d%.properties%.n%.type", err)
  end)

  it("sets up a reindex destination", function()
    local code, _, err = J.espipe("reindex one copy --source-url " .. server.url .. " --create-index " .. dir
      .. "/long.json --quiet")
    assert.equal(0, code, err)
    assert.equal("strict", get("/copy/_mapping").copy.mappings.dynamic)
  end)

  it("--template installs an index template named after its file before the load", function()
    S.write(dir .. "/weblogs.json", json.encode { index_patterns = { "web-*" },
      template = { mappings = { properties = { n = { type = "keyword" } } } } })
    local code, _, err = espipe("load " .. dir .. "/docs.ndjson --index web-1 --template " .. dir .. "/weblogs.json --quiet")
    assert.equal(0, code, err)
    assert.truthy(get("/_index_template/weblogs").index_templates[1])
    assert.equal("keyword", get("/web-1/_mapping")["web-1"].mappings.properties.n.type)
  end)
end)
