-- A transform's fan-out marker.
local reindex = require "espipe.pipeline.reindex"

describe("reindex.many", function()
  it("marks a list of documents as a fan-out, and nothing else", function()
    local list = reindex.many { { a = 1 }, { a = 2 } }
    assert.is_true(reindex.is_many(list))
    assert.is_false(reindex.is_many { { a = 1 } })
  end)

  it("raises at the caller when given no table", function()
    local ok, err = pcall(reindex.many, "doc")
    assert.is_false(ok)
    assert.matches("reindex.many expects a table of documents", err, 1, true)
  end)
end)
