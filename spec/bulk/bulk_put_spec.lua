-- The bulk builder's entry points for the bulk indexer: put (append, then
-- count and bytes), raw (a pre-built action line) and the client API's
-- spellings of _id and _index.
local bulk = require "espipe.bulk"

describe("bulk buffer put and raw", function()
  it("put appends like add and returns the count and the body size", function()
    local b = bulk.new()
    local n, bytes = b:put("index", { id = "a", index = "i" }, '{"x":1}')
    assert.are.equal(1, n)
    local want = '{"index":{"_index":"i","_id":"a"}}\n{"x":1}\n'
    assert.are.equal(#want, bytes)
    n, bytes = b:put("delete", { _id = 7 })
    assert.are.equal(2, n)
    want = want .. '{"delete":{"_id":"7"}}\n'
    assert.are.equal(want, b:body())
    assert.are.equal(#want, bytes)
  end)

  it("refuses both spellings of one field, leaving the buffer as it was", function()
    local b = bulk.new()
    b:put("index", nil, "{}")
    local before = b:body()
    assert.has_error(function() b:put("index", { id = "1", _id = "2" }, "{}") end,
      "bulk index: metadata has both _id and its alias")
    assert.has_error(function() b:put("index", { index = "a", _index = "b" }, "{}") end,
      "bulk index: metadata has both _index and its alias")
    assert.are.equal(before, b:body())
    assert.are.equal(1, #b)
  end)

  it("raw appends a pre-built action line and reads its action name", function()
    local b = bulk.new()
    local n, bytes = b:raw(' { "create" : {"_id":"1"}}', { a = 1 })
    assert.are.equal(1, n)
    b:raw('{"delete":{"_id":"2"}}')
    assert.are.equal(' { "create" : {"_id":"1"}}\n{"a":1}\n{"delete":{"_id":"2"}}\n', b:body())
    assert.are.equal(#' { "create" : {"_id":"1"}}\n{"a":1}\n', bytes)
    local action, source, op = b:item(1)
    assert.are.same({ ' { "create" : {"_id":"1"}}', '{"a":1}', "create" }, { action, source, op })
    assert.are.equal("delete", select(3, b:item(2)))
  end)

  it("raw refuses what would make a malformed body, leaving the buffer as it was", function()
    local b = bulk.new()
    b:raw('{"index":{}}', "{}")
    local before = b:body()
    assert.has_error(function() b:raw('{"upsert":{}}', "{}") end,
      'bulk raw: the action line must start with {"index", {"create", {"update" or {"delete"')
    assert.has_error(function() b:raw('{"index":{}}\n', "{}") end)
    assert.has_error(function() b:raw('{"index":{}}') end,
      "bulk raw: the action index needs a source (a table or a raw JSON string), got nil")
    assert.has_error(function() b:raw('{"delete":{}}', "{}") end, "bulk raw: a delete action takes no source")
    assert.has_error(function() b:raw('{"index":{}}', '{"a":\n1}') end)
    assert.has_error(function() b:raw(42) end, "bulk raw: the action line must be a string, got number")
    assert.are.equal(before, b:body())
    assert.are.equal(1, #b)
  end)
end)
