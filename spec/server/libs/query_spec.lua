-- espipe.server.query: the query DSL subset, sorting, _source filtering,
-- time values and slices, on documents decoded from JSON text.
local json = require("espipe.server.json")
local query = require("espipe.server.query")

local mappings = { properties = {
  title = { type = "text", fields = { keyword = { type = "keyword" } } },
  tag = { type = "keyword" },
  n = { type = "long" },
  price = { type = "double" },
  ok = { type = "boolean" },
  at = { type = "date" },
  user = { properties = { name = { type = "keyword" }, age = { type = "integer" } } },
} }

local docs = {
  ["1"] = [[{"title":"Hello World","tag":"a","n":5,"price":1.5,"ok":true,"at":"2024-01-02T00:00:00Z",
            "user":{"name":"ann","age":30}}]],
  ["2"] = [[{"title":"hello there, world!","tag":["b","c"],"n":10,"ok":false,"at":1704240000000,
            "user":[{"name":"bob","age":20},{"name":"cy","age":40}]}]],
  ["3"] = [[{"title":"Goodbye","tag":"a","n":-1,"at":"2023-12-31","user":{"name":null}}]],
  ["4"] = [[{"other":1}]],
}
local decoded = {}
for id, text in pairs(docs) do decoded[id] = assert(json.decode(text)) end

-- the ids (sorted) of the docs a query matches
local function ids(q, maps)
  local m, err = query.compile(assert(json.decode(q)), maps == nil and mappings or maps)
  assert(m, err and tostring(err))
  local out = {}
  for id, src in pairs(decoded) do
    if m(src, { _id = id, _index = "i" }) then out[#out + 1] = id end
  end
  table.sort(out)
  return table.concat(out, ",")
end

describe("server query compile", function()
  it("matches all or none", function()
    assert.equal("1,2,3,4", ids('{"match_all":{}}'))
    assert.equal("", ids('{"match_none":{}}'))
    assert.equal("1,2,3,4", ids("null"))
  end)

  it("term compares keywords and numbers whole and text by token", function()
    assert.equal("1,3", ids('{"term":{"tag":"a"}}'))
    assert.equal("2", ids('{"term":{"tag":{"value":"c"}}}'))
    assert.equal("2", ids('{"term":{"n":10}}'))
    assert.equal("2", ids('{"term":{"n":"10"}}'))
    assert.equal("1,2", ids('{"term":{"title":"hello"}}'))
    assert.equal("", ids('{"term":{"title":"Hello"}}'))         -- term queries are not analysed
    assert.equal("1", ids('{"term":{"title.keyword":"Hello World"}}'))
    assert.equal("2", ids('{"term":{"ok":false}}'))
    assert.equal("1", ids('{"term":{"ok":"true"}}'))
    assert.equal("1", ids('{"term":{"at":"2024-01-02"}}'))
    assert.equal("1,3", ids('{"term":{"tag":{"value":"A","case_insensitive":true}}}'))
  end)

  it("terms, ids, exists and prefix", function()
    assert.equal("2,3", ids('{"terms":{"n":[10,-1,99]}}'))
    assert.equal("1,2,3", ids('{"terms":{"tag":["a","b"]}}'))
    assert.equal("1,4", ids('{"ids":{"values":["1","4","nope"]}}'))
    assert.equal("2", ids('{"term":{"_id":"2"}}'))
    assert.equal("1,2", ids('{"exists":{"field":"user.name"}}'))
    assert.equal("1,2,3", ids('{"exists":{"field":"at"}}'))
    assert.equal("1,2", ids('{"prefix":{"title":"hel"}}'))
    assert.equal("2", ids('{"prefix":{"user.name":{"value":"b"}}}'))
  end)

  it("range on numbers, dates (ISO and epoch millis) and keywords", function()
    assert.equal("1,2", ids('{"range":{"n":{"gte":5}}}'))
    assert.equal("1", ids('{"range":{"n":{"gt":-1,"lt":10}}}'))
    assert.equal("1", ids('{"range":{"price":{"lte":1.5}}}'))
    assert.equal("1,2", ids('{"range":{"at":{"gte":"2024-01-01"}}}'))
    assert.equal("1", ids('{"range":{"at":{"gte":"2024-01-01","lt":1704240000000}}}'))
    assert.equal("3", ids('{"range":{"at":{"lt":"2024-01-01T00:00:00+00:00"}}}'))
    assert.equal("2", ids('{"range":{"tag":{"gt":"a"}}}'))
    assert.equal("1,2,3", ids('{"range":{"at":{"lte":"now"}}}'))
    assert.equal("", ids('{"range":{"at":{"gte":"now-1d/d"}}}'))
  end)

  it("reaches into nested objects and arrays of objects", function()
    assert.equal("2", ids('{"term":{"user.name":"cy"}}'))
    assert.equal("2", ids('{"range":{"user.age":{"gt":35}}}'))
    assert.equal("1,2", ids('{"range":{"user.age":{"gte":20,"lte":30}}}'))
  end)

  it("match analyses the query; operator and", function()
    assert.equal("1,2", ids('{"match":{"title":"WORLD"}}'))
    assert.equal("1,2,3", ids('{"match":{"title":"goodbye world"}}'))
    assert.equal("1,2", ids('{"match":{"title":{"query":"hello, world","operator":"and"}}}'))
    assert.equal("2", ids('{"match":{"title":{"query":"world there","operator":"AND"}}}'))
    assert.equal("1,3", ids('{"match":{"tag":"a"}}'))
  end)

  it("bool: must, filter, should, must_not and minimum_should_match", function()
    assert.equal("1", ids('{"bool":{"must":{"term":{"tag":"a"}},"filter":[{"range":{"n":{"gt":0}}}]}}'))
    assert.equal("1,2,3", ids('{"bool":{"should":[{"term":{"tag":"a"}},{"term":{"n":10}}]}}'))
    assert.equal("3,4", ids('{"bool":{"must_not":[{"match":{"title":"hello"}}]}}'))
    assert.equal("1", ids('{"bool":{"should":[{"term":{"tag":"a"}},{"term":{"n":5}},{"term":{"n":10}}],'
      .. '"minimum_should_match":2}}'))
    assert.equal("1,3", ids('{"bool":{"must":{"term":{"tag":"a"}},"should":[{"term":{"n":99}}]}}'))
    assert.equal("1,2", ids('{"constant_score":{"filter":{"match":{"title":"hello"}}}}'))
  end)

  it("returns ES-like 400 errors for bad queries", function()
    local cases = {
      { '{"foo":{}}', "parsing_exception", "unknown query [foo]" },
      { '{"bool":{"must":[{"nope":{}}]}}', "parsing_exception", "unknown query [nope]" },
      { '{"bool":{"shuld":[]}}', "parsing_exception", "[bool] query does not support [shuld]" },
      { '{"term":{"a":1,"b":2}}', "parsing_exception", "[term] query doesn't support multiple fields" },
      { '{"range":{"n":{"gte":1,"foo":2}}}', "parsing_exception", "[range] query does not support [foo]" },
      { '{"range":{"at":{"gte":"yesterday"}}}', "parse_exception", "failed to parse" },
      { '{"match":{"title":{"query":"x","operator":"xor"}}}', "illegal_argument_exception", "Unknown operator" },
    }
    for _, c in ipairs(cases) do
      local m, err = query.compile(assert(json.decode(c[1])), mappings)
      assert.is_nil(m, c[1])
      assert.equal(400, err.status)
      assert.equal(c[2], err.type, c[1])
      assert.is_truthy(err.reason:find(c[3], 1, true), err.reason)
      assert.is_truthy(tostring(err):find(c[3], 1, true))
    end
  end)

  it("works without mappings, by the type of each value", function()
    assert.equal("1,3", ids('{"term":{"tag":"a"}}', false))
    assert.equal("1,2", ids('{"term":{"title":"hello"}}', false))
    assert.equal("1", ids('{"term":{"title":"Hello World"}}', false))
    assert.equal("2", ids('{"range":{"n":{"gt":5}}}', false))
    assert.equal("1,2", ids('{"range":{"at":{"gte":"2024-01-01"}}}', false))
  end)
end)

describe("server query sorting", function()
  local function hits()
    local list = {}
    for i, id in ipairs({ "1", "2", "3", "4" }) do
      list[i] = { _id = id, _index = "i", _source = decoded[id], _doc = i - 1, _shard = 0, _score = 1 }
    end
    return list
  end
  local function sorted(spec)
    local s = assert(query.compile_sort(assert(json.decode(spec)), mappings))
    local list = hits()
    table.sort(list, s.compare)
    local out = {}
    for i, h in ipairs(list) do out[i] = h._id .. "=" .. json.encode(s.values(h)) end
    return table.concat(out, " ")
  end

  it("sorts numbers asc/desc with missing values last, and returns sort values", function()
    assert.equal("3=[-1] 1=[5] 2=[10] 4=[null]", sorted('[{"n":"asc"}]'))
    assert.equal("2=[10] 1=[5] 3=[-1] 4=[null]", sorted('[{"n":{"order":"desc"}}]'))
    assert.equal("4=[null] 3=[-1] 1=[5] 2=[10]", sorted('[{"n":{"order":"asc","missing":"_first"}}]'))
  end)

  it("sorts dates as epoch millis and keywords as strings (min for asc, max for desc)", function()
    assert.equal("3=[1703980800000] 1=[1704153600000] 2=[1704240000000] 4=[null]", sorted('["at"]'))
    assert.equal('1="a" 3="a" 2="b" 4=null', (sorted('["tag"]'):gsub("%[(.-)%]", "%1")))
    assert.equal('2="c" 1="a" 3="a" 4=null', (sorted('[{"tag":"desc"}]'):gsub("%[(.-)%]", "%1")))
  end)

  it("sorts by _doc and _shard_doc, and breaks ties by them", function()
    assert.equal("1=[0] 2=[1] 3=[2] 4=[3]", sorted('["_doc"]'))
    assert.equal("1=[\"a\",0] 3=[\"a\",2] 2=[\"b\",1] 4=[null,3]", sorted('["tag","_doc"]'))
    local s = assert(query.compile_sort({ "_shard_doc" }, mappings))
    assert.equal(3 * 4294967296 + 7, s.values({ _shard = 3, _doc = 7 })[1])
  end)

  it("tells whether a hit comes after search_after values", function()
    local s = assert(query.compile_sort(assert(json.decode('[{"n":"asc"},"_doc"]')), mappings))
    assert.is_true(s.after({ 5, 0 }, { -1, 2 }))
    assert.is_false(s.after({ 5, 0 }, { 5, 0 }))
    assert.is_true(s.after({ 5, 1 }, { 5, 0 }))
    assert.is_false(s.after({ -1, 2 }, { 5, 0 }))
    assert.is_true(s.after({ json.null, 3 }, { 10, 1 }))  -- missing sorts last
    local v, err = s.after({ 5, 0 }, { 5 })
    assert.is_nil(v)
    assert.equal("illegal_argument_exception", err.type)
  end)

  it("refuses text fields and unmapped fields like ES", function()
    local s, err = query.compile_sort({ "title" }, mappings)
    assert.is_nil(s)
    assert.is_truthy(err.reason:find("Text fields are not optimised", 1, true))
    s, err = query.compile_sort({ "nope" }, mappings)
    assert.is_nil(s)
    assert.equal("No mapping found for [nope] in order to sort on", err.reason)
    assert.is_table(query.compile_sort({ { nope = { unmapped_type = "long" } } }, mappings))
  end)
end)

describe("server query source_filter", function()
  local src = [[{"a":1,"b":{"c":2,"d":{"e":3}},"arr":[{"x":1,"y":2},{"x":3}],"ab":4}]]
  local function f(spec)
    local out = query.source_filter(assert(json.decode(src)), spec)
    if out == nil then return "nil" end
    -- canonical text: sorted keys
    local function canon(v)
      if type(v) ~= "table" or v == json.null then return json.encode(v) end
      if json.is_array(v) or v[1] ~= nil then
        local p = {}
        for i = 1, #v do p[i] = canon(v[i]) end
        return "[" .. table.concat(p, ",") .. "]"
      end
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys)
      local p = {}
      for i, k in ipairs(keys) do p[i] = k .. ":" .. canon(v[k]) end
      return "{" .. table.concat(p, ",") .. "}"
    end
    return canon(out)
  end

  it("handles true, false, a field, a list and includes/excludes with wildcards", function()
    assert.equal("nil", f(false))
    assert.equal('{a:1,ab:4,arr:[{x:1,y:2},{x:3}],b:{c:2,d:{e:3}}}', f(true))
    assert.equal("{a:1}", f("a"))
    assert.equal("{a:1,ab:4,arr:[{x:1,y:2},{x:3}]}", f("a*"))
    assert.equal("{a:1}", f({ "a", "z*" }))
    assert.equal("{b:{c:2,d:{e:3}}}", f({ "b" }))
    assert.equal("{b:{d:{e:3}}}", f({ "b.d.*" }))
    assert.equal("{arr:[{x:1},{x:3}]}", f({ "arr.x" }))
    assert.equal("{a:1,ab:4,arr:[{x:1},{x:3}]}", f({ excludes = { "b", "arr.y" } }))
    assert.equal("{b:{c:2}}", f({ includes = { "b.*" }, excludes = { "b.d" } }))
    assert.equal("{}", f({ "nope" }))
  end)

  it("returns a raw source untouched when no filtering is asked", function()
    local raw = json.raw('{"big":12345678901234567890}')
    assert.equal(raw, query.source_filter(raw, true))
    assert.equal('{"big":1}', json.encode(query.source_filter(json.raw('{"big":1,"x":2}'), "big")))
  end)
end)

describe("server query helpers", function()
  it("parses time values to seconds", function()
    assert.equal(60, query.parse_time("1m"))
    assert.equal(30, query.parse_time("30s"))
    assert.equal(0.5, query.parse_time("500ms"))
    assert.equal(3600, query.parse_time("1h"))
    assert.equal(86400, query.parse_time("1d"))
    for _, bad in ipairs({ "1x", "m", "", "10" }) do
      local v, err = query.parse_time(bad)
      assert.is_nil(v, bad)
      assert.is_truthy(err.reason:find("unit is missing or unrecognized", 1, true))
    end
  end)

  it("splits documents into disjoint slices that cover them all", function()
    for _, case in ipairs({ { 2, 5 }, { 5, 5 }, { 7, 3 }, { 4, 1 } }) do
      local max, shards = case[1], case[2]
      local counts = {}
      for i = 1, 600 do
        local shard = i % shards
        local s = query.slice_of("doc" .. i, shard, max, shards)
        assert.is_true(s >= 0 and s < max)
        assert.equal(s, query.slice_of("doc" .. i, shard, max, shards)) -- deterministic
        counts[s] = (counts[s] or 0) + 1
      end
      for s = 0, max - 1 do assert.is_true((counts[s] or 0) > 0, max .. "/" .. shards .. " slice " .. s) end
    end
    -- with no more slices than shards, whole shards go to one slice
    assert.equal(1, query.slice_of("x", 3, 2, 5))
  end)
end)
