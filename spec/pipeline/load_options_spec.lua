-- espipe.load{} checks its options before it reads anything.
local espipe = require "espipe"

describe("espipe.load options", function()
  local client = setmetatable({}, { __index = function() error("no request may be made", 2) end })

  it("rejects an unknown key instead of reading stdin", function()
    local ok, err = pcall(espipe.load, { client = client, file = "docs.ndjson", index = "i" })
    assert.is_false(ok)
    assert.matches("espipe.load: unknown option 'file'", err, 1, true)
  end)

  it("names the nearest valid key of a typo", function()
    local ok, err = pcall(espipe.load, { client = client, input = "-", index = "i", idfield = "id" })
    assert.is_false(ok)
    assert.matches("unknown option 'idfield' (did you mean 'id_field'?)", err, 1, true)
  end)

  it("rejects a wrong index pattern before opening the input", function()
    local ok, err = pcall(espipe.load, { client = client, input = "/nonexistent/in.ndjson", index_pattern = "l-{t:%Y%q}" })
    assert.is_false(ok)
    assert.matches("unknown directive '%q'", err, 1, true)
  end)

  it("rejects an op other than index or create instead of sending deletes", function()
    for _, op in ipairs { "delete", "update", "upsert", 1 } do
      local ok, err = pcall(espipe.load, { client = client, input = "/nonexistent/in.ndjson", index = "i", op = op })
      assert.is_false(ok)
      assert.matches("espipe.load: op must be index or create", err, 1, true)
    end
  end)

  it("refuses a checkpoint with a transform, whose batches hold lines a position would count as settled", function()
    local batch = { batch = function(docs) return docs end, size = 10 }
    for _, t in ipairs { function(doc) return doc end, batch } do
      local ok, err = pcall(espipe.load, { client = client, input = "/nonexistent/in.ndjson", index = "i",
        transform = t, checkpoint = "/nonexistent/ck" })
      assert.is_false(ok)
      assert.matches("a checkpoint cannot be kept with a transform", err, 1, true)
    end
  end)
end)
