-- espipe.server.flavors: the GET / blocks of `espipe serve --flavor`.
local flavors = require("espipe.server.flavors")
local version = require("espipe.client.version")

describe("server.flavors", function()
  it("knows the wires and defaults to Elasticsearch 8", function()
    assert.same({ "es-6.8", "es-7.10", "es-7.12", "es-7.17", "es-8.15", "es-9", "opensearch-2" }, flavors.names())
    assert.equal("8.15.0", flavors.get().version.number)
  end)

  it("answers as each release line would, and the client reads it back as that line", function()
    local want = { ["es-6.8"] = 6, ["es-7.10"] = 7, ["es-7.12"] = 7, ["es-7.17"] = 7, ["es-8.15"] = 8, ["es-9"] = 9, ["opensearch-2"] = 2 }
    for _, name in ipairs(flavors.names()) do
      local f = assert(flavors.get(name))
      local v = assert(version.from_info { version = f.version, tagline = f.tagline })
      assert.equal(want[name], v.major, name)
      assert.same(f.wire, v, name)
    end
  end)

  it("marks OpenSearch the way OpenSearch does: distribution, its tagline, no build_flavor", function()
    local f = flavors.get("opensearch-2")
    assert.equal("opensearch", f.version.distribution)
    assert.is_nil(f.version.build_flavor)
    assert.matches("OpenSearch", f.tagline)
    local es = flavors.get("es-7.17")
    assert.is_nil(es.version.distribution)
    assert.equal("default", es.version.build_flavor)
    assert.equal("You Know, for Search", es.tagline)
  end)

  it("has 7.10 and 7.12 open a point in time that takes no slice, 7.12 with _shard_doc", function()
    for name, shard_doc in pairs { ["es-7.10"] = false, ["es-7.12"] = true } do
      local w = flavors.get(name).wire
      assert.equal("elasticsearch", w.pit, name)
      assert.is_false(w.pit_slices, name)
      assert.equal(shard_doc, w.pit_sort[1] == "_shard_doc", name)
    end
  end)

  it("refuses an unknown flavour, naming the valid ones", function()
    local f, err = flavors.get("es-5")
    assert.is_nil(f)
    assert.equal("unknown flavor 'es-5' (one of es-6.8, es-7.10, es-7.12, es-7.17, es-8.15, es-9, opensearch-2)", err)
  end)
end)
