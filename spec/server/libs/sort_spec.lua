-- espipe.server.sort: search sorting on decoded hits, search_after and ES's refusals.
local json = require("espipe.server.json")
local sorting = require("espipe.server.sort")
local search_docs = require("server.libs.search_docs")

local mappings, decoded = search_docs.mappings, search_docs.decoded

describe("server sort", function()
  local function hits()
    local list = {}
    for i, id in ipairs({ "1", "2", "3", "4" }) do
      list[i] = { _id = id, _index = "i", _source = decoded[id], _doc = i - 1, _shard = 0, _score = 1 }
    end
    return list
  end
  local function sorted(spec)
    local s = assert(sorting.compile_sort(assert(json.decode(spec)), mappings))
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
    local s = assert(sorting.compile_sort({ "_shard_doc" }, mappings))
    assert.equal(3 * 4294967296 + 7, s.values({ _shard = 3, _doc = 7 })[1])
  end)

  it("tells whether a hit comes after search_after values", function()
    local s = assert(sorting.compile_sort(assert(json.decode('[{"n":"asc"},"_doc"]')), mappings))
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
    local s, err = sorting.compile_sort({ "title" }, mappings)
    assert.is_nil(s)
    assert.is_truthy(err.reason:find("Text fields are not optimised", 1, true))
    s, err = sorting.compile_sort({ "nope" }, mappings)
    assert.is_nil(s)
    assert.equal("No mapping found for [nope] in order to sort on", err.reason)
    assert.is_table(sorting.compile_sort({ { nope = { unmapped_type = "long" } } }, mappings))
  end)
end)
