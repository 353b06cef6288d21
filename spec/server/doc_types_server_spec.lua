-- Mapping types per --flavor (espipe.server.doc_types): 6.x wants a
-- `_type` in every bulk action and keeps one per index, with a type level in
-- its mappings; 7.x accepts and answers one; 8.x and OpenSearch 2 refuse it.
local devserver = require("spec.support.devserver")
local http = require("spec.support.http")

local function action(id, doc_type)
  return { index = { _index = "t", _id = id, _type = doc_type } }
end

describe("mapping types per flavour #server", function()
  local servers = {}
  setup(function()
    for _, f in ipairs { "es-6.8", "es-7.17", "es-8.15", "opensearch-2" } do
      servers[f] = devserver.start { args = { "--flavor", f } }
    end
  end)
  teardown(function()
    for _, s in pairs(servers) do s.stop() end
  end)

  describe("es-6.8", function()
    local url
    setup(function() url = servers["es-6.8"].url end)

    it("refuses a bulk body whose actions do not all name a type, as a whole", function()
      local s, body = http.bulk(url, { action("1"), { n = 1 }, action("2", "_doc"), { n = 2 }, action("3"), { n = 3 } })
      assert.equal(400, s)
      assert.equal("action_request_validation_exception", body.error.type)
      assert.equal("Validation Failed: 1: type is missing;2: type is missing;", body.error.reason)
      assert.equal(404, (http.json("GET", url .. "/t/_doc/2")))
    end)

    it("answers each item with its type, and refuses a second type in the index", function()
      local s, body = http.bulk(url, { action("1", "doc"), { n = 1 }, action("2", "other"), { n = 2 } })
      assert.equal(200, s)
      assert.equal("doc", body.items[1].index._type)
      assert.equal(201, body.items[1].index.status)
      local refused = body.items[2].index
      assert.equal(400, refused.status)
      assert.equal("illegal_argument_exception", refused.error.type)
      assert.matches("more than 1 type: %[doc, other%]", refused.error.reason)
    end)

    it("reads and writes mappings with the type as their top level", function()
      local s = http.json("PUT", url .. "/typed", { mappings = { doc = { properties = { n = { type = "long" } } } } })
      assert.equal(200, s)
      local _, m = http.json("GET", url .. "/typed/_mapping")
      assert.same({ type = "long" }, m.typed.mappings.doc.properties.n)
      local _, plain = http.json("GET", url .. "/typed/_mapping?include_type_name=false")
      assert.same({ type = "long" }, plain.typed.mappings.properties.n)
      -- the type the index was created with is the one bulk must name
      local _, b = http.bulk(url, { { index = { _index = "typed", _id = "1", _type = "_doc" } }, { n = 1 } })
      assert.equal(400, b.items[1].index.status)
    end)

    it("reads a typeless mappings body as a type named properties, and refuses it", function()
      local s, body = http.json("PUT", url .. "/untyped", { mappings = { properties = { n = { type = "long" } } } })
      assert.equal(400, s)
      assert.equal("mapper_parsing_exception", body.error.type)
      assert.equal(200, (http.json("PUT", url .. "/untyped?include_type_name=false",
        { mappings = { properties = { n = { type = "long" } } } })))
    end)
  end)

  it("es-6.8 with --data keeps each index's type across a restart", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local first = devserver.start { data = dir, args = { "--flavor", "es-6.8" } }
    assert.equal(200, (http.json("PUT", first.url .. "/made", { mappings = { doc = { properties = {} } } })))
    local _, b = http.bulk(first.url, { { index = { _index = "bulked", _id = "1", _type = "kind" } }, { n = 1 } })
    assert.equal(201, b.items[1].index.status)
    first.stop()
    local again = devserver.start { data = dir, args = { "--flavor", "es-6.8" } }
    finally(function()
      again.stop()
      os.execute("rm -rf " .. dir)
    end)
    for index, want in pairs { made = "doc", bulked = "kind" } do
      local _, r = http.bulk(again.url, { { index = { _index = index, _id = "2", _type = "other" } }, { n = 2 } })
      assert.matches("%[" .. want .. ", other%]", r.items[1].index.error.reason)
    end
  end)

  it("es-7.17 takes a _type and answers _doc", function()
    local s, body = http.bulk(servers["es-7.17"].url, { action("1", "_doc"), { n = 1 }, action("2"), { n = 2 } })
    assert.equal(200, s)
    assert.equal("_doc", body.items[1].index._type)
    assert.equal("_doc", body.items[2].index._type)
    local _, m = http.json("GET", servers["es-7.17"].url .. "/t/_mapping")
    assert.is_table(m.t.mappings.properties)
  end)

  for _, f in ipairs { "es-8.15", "opensearch-2" } do
    it(f .. " refuses _type as an unknown parameter and answers without one", function()
      local s, body = http.bulk(servers[f].url, { action("1", "_doc"), { n = 1 } })
      assert.equal(400, s)
      assert.equal("Action/metadata line [1] contains an unknown parameter [_type]", body.error.reason)
      local s2, ok = http.bulk(servers[f].url, { action("1"), { n = 1 } })
      assert.equal(200, s2)
      assert.is_nil(ok.items[1].index._type)
    end)
  end
end)
