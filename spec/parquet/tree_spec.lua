-- espipe.parquet.tree and .names: the nested columns an export writes, from
-- a mapping plus sample documents (arrays seen there) or from documents alone.
local tree = require "espipe.parquet.tree"
local names = require "espipe.parquet.names"
local json = require "espipe.json"

local MAPPING = { logs = { mappings = { properties = {
  ["@timestamp"] = { type = "date" }, seen = { type = "date_nanos" }, big = { type = "unsigned_long" },
  ip = { type = "ip" }, tags = { type = "keyword" }, geo = { type = "geo_point" }, spots = { type = "geo_point" },
  labels = { type = "flattened" }, shape = { type = "geo_shape" }, alias_f = { type = "alias", path = "ip" },
  user = { properties = { name = { type = "keyword" }, Name = { type = "keyword" },
    addr = { properties = { city = { type = "keyword" } } } } },
  items = { type = "nested", properties = { sku = { type = "keyword" } } },
  ["a:b"] = { type = "long" },
} } } }

local function types(columns)
  local t = {}
  for _, c in ipairs(columns) do t[c.name] = tree.type_string(c) end
  return t
end

describe("espipe.parquet.tree", function()
  it("types fields the way analytics engines expect, lists where the sample holds arrays", function()
    local sample = json.decode [=[ [ {"tags":["a","b"],"geo":[1.5,2.5],"spots":[[1,2],"3,4"]}, {"tags":"c"} ] ]=]
    local columns, renamed = tree.from_mapping(MAPPING, { sample = sample, meta = { "_id" }, prefix = "_source" })
    assert.same({
      _id = "string", ["@timestamp"] = "timestamp", seen = "timestamp", big = "decimal(20,0)", ip = "string",
      tags = "array<string>", geo = "struct<lat:double,lon:double>",
      spots = "array<struct<lat:double,lon:double>>", labels = "map<string,string>", shape = "string",
      user = "struct<Name:string,addr:struct<city:string>,name_2:string>", items = "array<struct<sku:string>>",
      a_b = "bigint",
    }, types(columns))
    assert.same({ { field = "a:b", column = "a_b" }, { field = "user.name", column = "name_2" } }, renamed)
    for _, c in ipairs(columns) do
      if c.name == "seen" then assert.equal("timestamp_ns", c.type) end
      if c.name ~= "_id" then assert.same({ "_source", c.key }, c.path) end
    end
  end)

  it("keeps only the selected fields, inside structs too, and takes --rename", function()
    local columns, renamed = tree.from_mapping(MAPPING,
      { fields = { "user.addr", "@timestamp" }, rename = { ["user.addr"] = "where", ["@timestamp"] = "ts" } })
    assert.same({ user = "struct<where:struct<city:string>>", ts = "timestamp" }, types(columns))
    assert.same({ { field = "user.addr", column = "where" }, { field = "@timestamp", column = "ts" } }, renamed)
  end)

  it("infers lists, structs and lists of structs from documents alone", function()
    local docs = json.decode [[ [
      {"a":[{"x":1},{"x":2.5,"y":"s"}],"b":{"c":{"d":"2024-01-01T00:00:00Z"}},"e":[1,2],"mixed":1},
      {"mixed":"one","e":3,"n":null} ] ]]
    assert.same({ a = "array<struct<x:double,y:string>>", b = "struct<c:struct<d:timestamp>>",
      e = "array<bigint>", mixed = "string", n = "string" }, types((tree.infer(docs))))
  end)

  it("raises on wrong arguments", function()
    assert.has_error(function() tree.from_mapping("x") end,
      "from_mapping expects the decoded mapping table, got string")
    assert.has_error(function() tree.infer({}, { rename = 1 }) end,
      "rename must be a table of field = column name, got number")
  end)
end)

describe("espipe.parquet.names", function()
  it("keeps what Athena, Glue and DuckDB take and renames the rest", function()
    assert.equal("@timestamp", names.acceptable("@timestamp"))
    assert.equal("caf\195\169", names.acceptable("caf\195\169"))
    assert.equal("host_name", names.acceptable("host.name"))
    assert.equal("a_b_c_d_e_", names.acceptable("a:b,c<d>e`"))
    assert.equal("_", names.acceptable(""))
    assert.equal(255, #names.acceptable(string.rep("x", 300)))
  end)
end)
