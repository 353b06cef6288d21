-- Column lists from Elasticsearch mappings and from sample documents.
local schema = require "espipe.parquet.schema"
local json = require "espipe.json"

local function by_field(columns)
  local t = {}
  for _, c in ipairs(columns) do t[c.field] = c end
  return t
end

local MAPPING = {
  ["logs-2024.01"] = { mappings = { properties = {
    ["@timestamp"] = { type = "date" },
    message = { type = "match_only_text" },
    host = { properties = {
      name = { type = "keyword", fields = { text = { type = "text" } } },
      ip = { type = "ip" },
      os = { type = "object", properties = { version = { type = "version" } } },
    } },
    bytes = { type = "long" }, count = { type = "integer" }, small = { type = "short" }, tiny = { type = "byte" },
    ratio = { type = "float" }, price = { type = "scaled_float", scaling_factor = 100 }, h = { type = "half_float" },
    d = { type = "double" }, ok = { type = "boolean" }, nanos = { type = "date_nanos" },
    big = { type = "unsigned_long" }, w = { type = "wildcard" }, ck = { type = "constant_keyword" },
    body = { type = "text" },
    items = { type = "nested", properties = { sku = { type = "keyword" } } },
    labels = { type = "flattened" }, where = { type = "geo_point" }, area = { type = "geo_shape" },
    span = { type = "integer_range" }, vec = { type = "dense_vector", dims = 3 },
    alias_of_bytes = { type = "alias", path = "bytes" },
  } } },
}

describe("parquet.schema.from_mapping", function()
  it("maps every Elasticsearch type to its column type", function()
    local cols = by_field(schema.from_mapping(MAPPING))
    local want = {
      ["@timestamp"] = "timestamp", message = "string", ["host.name"] = "string", ["host.ip"] = "string",
      ["host.os.version"] = "string", bytes = "int64", count = "int64", small = "int64", tiny = "int64",
      ratio = "double", price = "double", h = "double", d = "double", ok = "boolean", nanos = "timestamp",
      big = "string", w = "string", ck = "string", body = "string",
      items = "json", labels = "json", where = "json", area = "json", span = "json", vec = "json",
    }
    for field, t in pairs(want) do
      assert.is_not_nil(cols[field], field)
      assert.are.equal(t, cols[field].type, field)
    end
    assert.is_nil(cols.alias_of_bytes)        -- no value of its own in _source
    assert.is_nil(cols["items.sku"])          -- inside the nested JSON
    assert.is_nil(cols["host.name.text"])     -- multi-fields are not in _source
    local n = 0
    for _ in pairs(cols) do n = n + 1 end
    assert.are.equal(25, n)
  end)

  it("keeps object paths for the walk and names columns for Athena", function()
    local cols = by_field(schema.from_mapping(MAPPING))
    assert.are.same({ "host", "os", "version" }, cols["host.os.version"].path)
    assert.are.equal("host_os_version", cols["host.os.version"].name)
    assert.are.equal("_timestamp", cols["@timestamp"].name)
  end)

  it("accepts a { mappings = } body and a bare { properties = }", function()
    local a = schema.from_mapping({ mappings = { properties = { x = { type = "long" } } } })
    local b = schema.from_mapping({ properties = { x = { type = "long" } } })
    assert.are.same(a, b)
    assert.are.equal("int64", a[1].type)
  end)

  it("makes a field whose type differs between indices a JSON column", function()
    local cols = schema.from_mapping({
      a = { mappings = { properties = { f = { type = "long" }, g = { type = "keyword" } } } },
      b = { mappings = { properties = { f = { type = "keyword" }, g = { type = "keyword" } } } },
    })
    local t = by_field(cols)
    assert.are.equal("json", t.f.type)
    assert.are.equal("string", t.g.type)
  end)

  it("selects fields (and what is under them) in the order given, and forces JSON for arrays", function()
    local cols = schema.from_mapping(MAPPING, { fields = { "host", "bytes", "nope" }, arrays = { "host.ip" } })
    local fields = {}
    for i, c in ipairs(cols) do fields[i] = c.field end
    assert.are.same({ "host.ip", "host.name", "host.os.version", "bytes" }, fields)
    assert.are.equal("json", cols[1].type)
  end)

  it("puts hit metadata first and prefixes document paths when rows are hits", function()
    local cols = schema.from_mapping({ properties = { a = { type = "long" } } }, { meta = { "_id" }, prefix = "_source" })
    assert.are.same({ field = "_id", name = "_id", path = { "_id" }, type = "string", es_type = "keyword" }, cols[1])
    assert.are.same({ "_source", "a" }, cols[2].path)
  end)

  it("raises on wrong arguments", function()
    assert.has_error(function() schema.from_mapping("x") end,
      "from_mapping expects the decoded mapping table, got string")
    assert.has_error(function() schema.from_mapping({}, { fields = "a" }) end,
      "fields must be a list of field paths, got string")
  end)
end)

describe("parquet.schema names", function()
  it("makes names safe for Athena", function()
    assert.are.equal("host_name", schema.safe_name("host.name"))
    assert.are.equal("_timestamp", schema.safe_name("@timestamp"))
    assert.are.equal("user_agent_os", schema.safe_name("User-Agent OS"))
    assert.are.equal("_1st", schema.safe_name("1st"))
    assert.are.equal("caf__", schema.safe_name("caf\195\169"))
    assert.are.equal("_", schema.safe_name(""))
  end)

  it("resolves collisions deterministically with _2, _3 in column order", function()
    local cols = schema.assign_names({ { field = "a.b" }, { field = "a_b" }, { field = "A.B" }, { field = "a_b_2" } })
    assert.are.same({ "a_b", "a_b_2", "a_b_3", "a_b_2_2" },
      { cols[1].name, cols[2].name, cols[3].name, cols[4].name })
  end)
end)

describe("parquet.schema.infer", function()
  it("infers types as dynamic mapping would", function()
    local docs = {
      { n = 1, f = 1.5, s = "x", t = "2024-01-01T00:00:00Z", b = true, o = { p = 2, q = { r = "deep" } },
        arr = { 1, 2 }, mixed = 1, num_or_float = 1, only_null = json.null, empty = {} },
      { n = 2, f = 2, s = "y", t = "2024-01-02", b = false, mixed = "text", num_or_float = 2.5 },
    }
    local cols = by_field(schema.infer(docs))
    local want = { n = "int64", f = "double", s = "string", t = "timestamp", b = "boolean", ["o.p"] = "int64",
                   ["o.q.r"] = "string", arr = "json", mixed = "json", num_or_float = "double",
                   only_null = "string", empty = "string" }
    if not math.type then want.f = "double" end
    for field, t in pairs(want) do
      assert.is_not_nil(cols[field], field)
      assert.are.equal(t, cols[field].type, field)
    end
    assert.is_nil(cols.o)
  end)

  it("turns a field that is an object in one document and a value in another into one JSON column", function()
    local cols = schema.infer({ { a = { b = 1 } }, { a = "flat" } })
    assert.are.equal(1, #cols)
    assert.are.same({ field = "a", name = "a", path = { "a" }, type = "json" }, cols[1])
  end)

  it("looks at the first `sample` documents only", function()
    local cols = schema.infer({ { a = 1 }, { a = "x" } }, { sample = 1 })
    assert.are.equal("int64", cols[1].type)
  end)

  it("does not call a 4-digit or date-less string a date", function()
    local cols = by_field(schema.infer({ { y = "2024", v = "1.2.3", d = "2024-13-01" } }))
    assert.are.equal("string", cols.y.type)
    assert.are.equal("string", cols.v.type)
    assert.are.equal("string", cols.d.type)
  end)
end)
