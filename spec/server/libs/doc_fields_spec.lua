-- espipe.server.doc_fields: where a dotted path lives in the mappings, the
-- values it holds in a source, analysis and per-type normalisation.
local json = require("espipe.server.json")
local doc_fields = require("espipe.server.doc_fields")

describe("server doc_fields", function()
  local mappings = { properties = {
    title = { type = "text", fields = { keyword = { type = "keyword" } } },
    ["geo.city"] = { type = "keyword" },
    user = { properties = { name = { type = "keyword" }, age = { type = "integer" } } },
  } }

  it("resolves object paths, dotted property names and multi-fields", function()
    local ty, path = doc_fields.resolve_field(mappings, "user.name")
    assert.same({ "keyword", "user.name" }, { ty, path })
    assert.equal("object", (doc_fields.resolve_field(mappings, "user")))
    assert.equal("keyword", (doc_fields.resolve_field(mappings, "geo.city")))
    local def
    ty, path, def = doc_fields.resolve_field(mappings, "title.keyword")
    assert.same({ "keyword", "title", "keyword" }, { ty, path, def.type })
    assert.same({ nil, "user.nope" }, { doc_fields.resolve_field(mappings, "user.nope") })
    assert.same({ nil, "title.raw" }, { doc_fields.resolve_field(mappings, "title.raw") })
    assert.same({ nil, "a" }, { doc_fields.resolve_field(nil, "a") })
  end)

  it("collects the leaf values of a path through arrays and dotted keys", function()
    local src = assert(json.decode(
      [[{"user":[{"name":"ann"},{"name":["bob","cy"]},{"name":null}],"geo.city":"x","geo":{"city":"y"}}]]))
    assert.same({ "ann", "bob", "cy" }, doc_fields.field_values(src, "user.name"))
    local cities = doc_fields.field_values(src, "geo.city")
    table.sort(cities)
    assert.same({ "x", "y" }, cities)
    assert.same({}, doc_fields.field_values(src, "nope"))
    assert.same({ "7" }, doc_fields.field_values(src, "_id", { _id = "7" }))
  end)

  it("analyzes into lowercase tokens and normalises values by type", function()
    assert.same({ "hello", "wörld", "42" }, doc_fields.analyze("Hello, Wörld! 42"))
    assert.equal(5, doc_fields.norm("long", "5"))
    assert.equal(1704153600000, doc_fields.norm("date", "2024-01-02"))
    assert.is_false(doc_fields.norm("boolean", "false"))
    assert.is_nil(doc_fields.norm("boolean", "no"))
    assert.equal("a", doc_fields.norm("keyword", "a"))
  end)
end)
