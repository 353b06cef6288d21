-- espipe.server.query: the query DSL subset on documents decoded from JSON text.
local json = require("espipe.server.json")
local query = require("espipe.server.query")
local search_docs = require("server.libs.search_docs")

local mappings, decoded = search_docs.mappings, search_docs.decoded

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
