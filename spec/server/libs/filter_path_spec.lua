-- espipe.server.filter_path: ES's ?filter_path= rules. Inputs are parsed from
-- JSON text and results compared as JSON text with sorted keys, so expected
-- values are written by hand from ES's documented examples.
local json = require("espipe.server.json")
local fp = require("espipe.server.filter_path")

-- canonical JSON (sorted keys) written independently of the encoder's order
local function canon(v)
  if json.is_raw(v) then return canon(assert(json.decode(json.raw_text(v)))) end
  if type(v) ~= "table" or v == json.null then return json.encode(v) end
  if json.is_array(v) or (getmetatable(v) ~= json.object_mt and v[1] ~= nil) then
    local out = {}
    for i = 1, #v do out[i] = canon(v[i]) end
    return "[" .. table.concat(out, ",") .. "]"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys)
  local out = {}
  for i, k in ipairs(keys) do out[i] = json.encode(k) .. ":" .. canon(v[k]) end
  return "{" .. table.concat(out, ",") .. "}"
end

local function check(input, spec, expected)
  local v = assert(json.decode(input))
  local got = fp.apply(v, spec)
  assert.equal(canon(assert(json.decode(expected))), canon(got), spec)
end

local bulk = [[{"took":3,"errors":true,"items":[
  {"index":{"_index":"t","_id":"1","status":201,"result":"created"}},
  {"index":{"_index":"t","_id":"2","status":400,"error":{"type":"document_parsing_exception","reason":"bad"}}},
  {"delete":{"_index":"t","_id":"3","status":404,"result":"not_found"}},
  {"create":{"_index":"t","_id":"4","status":409,"error":{"type":"version_conflict_engine_exception","reason":"exists"}}}]}]]

describe("server filter_path", function()
  it("keeps only failed bulk items with items.*.error", function()
    check(bulk, "items.*.error", [[{"items":[
      {"index":{"error":{"type":"document_parsing_exception","reason":"bad"}}},
      {"create":{"error":{"type":"version_conflict_engine_exception","reason":"exists"}}}]}]])
  end)

  it("drops everything when nothing matches, leaving {}", function()
    check([[{"took":1,"errors":false,"items":[{"index":{"status":201}}]}]], "items.*.error", "{}")
  end)

  it("takes several comma-separated paths", function()
    check(bulk, "took,items.*._id", [[{"took":3,"items":[{"index":{"_id":"1"}},{"index":{"_id":"2"}},
      {"delete":{"_id":"3"}},{"create":{"_id":"4"}}]}]])
    check(bulk, { "took", "errors" }, [[{"took":3,"errors":true}]])
  end)

  it("matches partial names with * within one level", function()
    check([[{"nodes":{"n1":{"host":"a","hostname":"b","ip":"c"},"n2":{"host":"d"}}}]], "nodes.*.ho*",
      [[{"nodes":{"n1":{"host":"a","hostname":"b"},"n2":{"host":"d"}}}]])
    check([[{"a":{"b":{"c":1}},"x":{"c":2}}]], "*.c", [[{"x":{"c":2}}]])
  end)

  it("matches any depth with **, including none", function()
    local doc = [[{"routing_table":{"indices":{"i1":{"shards":{"0":[{"state":"STARTED","node":"n"}]}},
      "state":"top"}},"state":"outside"}]]
    check(doc, "routing_table.indices.**.state",
      [[{"routing_table":{"indices":{"i1":{"shards":{"0":[{"state":"STARTED"}]}},"state":"top"}}}]])
    check([[{"a":{"b":{"c":1,"d":2}},"e":3}]], "a.**", [[{"a":{"b":{"c":1,"d":2}}}]])
    check([[{"a":{"x":{"y":{"id":1}}},"id":2}]], "**.id", [[{"a":{"x":{"y":{"id":1}}},"id":2}]])
  end)

  it("excludes with a leading -, dropping objects left empty", function()
    check([[{"took":1,"_shards":{"total":1},"hits":{"total":{"value":2},"hits":[]}}]], "-_shards",
      [[{"took":1,"hits":{"total":{"value":2},"hits":[]}}]])
    check([[{"a":{"b":1},"c":2}]], "-a.b", [[{"c":2}]])
  end)

  it("applies exclusions before inclusions", function()
    check([[{"hits":{"total":5,"hits":[{"_id":"1","_source":{"a":1,"b":2}}]}}]],
      "hits.hits._source,-hits.hits._source.b",
      [[{"hits":{"hits":[{"_source":{"a":1}}]}}]])
  end)

  it("keeps a raw _source verbatim when it is taken whole", function()
    local src = '{"big":12345678901234567890,"x":[]}'
    local v = { hits = { hits = { { _id = "1", _source = json.raw(src) } } } }
    local got = fp.apply(v, "hits.hits._source")
    assert.is_true(json.is_raw(got.hits.hits[1]._source))
    assert.equal('{"hits":{"hits":[{"_source":' .. src .. '}]}}', json.encode(got))
  end)

  it("decodes a raw fragment only to look inside it", function()
    local v = { hits = { hits = { { _id = "1", _source = json.raw('{"a":{"b":1,"c":[]},"d":2}') } } } }
    local got = fp.apply(v, "hits.hits._source.a")
    assert.is_false(json.is_raw(got.hits.hits[1]._source))
    assert.equal(canon(json.decode('{"hits":{"hits":[{"_source":{"a":{"b":1,"c":[]}}}]}}')), canon(got))
    assert.equal("[]", json.encode(got.hits.hits[1]._source.a.c))
    local ex = fp.apply(v, "-hits.hits._source.d,-hits.hits._id")
    assert.equal(canon(json.decode('{"hits":{"hits":[{"_source":{"a":{"b":1,"c":[]}}}]}}')), canon(ex))
  end)

  it("does not change its input", function()
    local v = assert(json.decode(bulk))
    local before = canon(v)
    fp.apply(v, "items.*.error")
    fp.apply(v, "-items.*.status")
    assert.equal(before, canon(v))
  end)

  it("reports empty field names and rejects bad specs", function()
    local v, err = fp.apply({ a = 1 }, "a..b")
    assert.is_nil(v)
    assert.equal("empty field name in filter_path [a..b]", err)
    assert.has_error(function() fp.compile(42) end,
      "filter_path spec must be a string or a list of strings, got number")
  end)
end)
