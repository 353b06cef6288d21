-- The corpus: decode -> encode -> decode keeps every value (integer vs float,
-- array vs object, null, the sign of zero), and an independent reader
-- (Python's json module) sees the same values espipe.json decodes.
local json = require "espipe.json"
local h = require "json.helpers"

describe("espipe.json corpus", function()
  local files = h.corpus_files()

  it("has documents to test", function()
    assert.is_true(#files >= 10)
  end)

  for _, name in ipairs(files) do
    it("round-trips " .. name, function()
      local text = h.read(name)
      local v1, err = json.decode(text)
      assert.is_nil(err)
      local again = json.encode(v1)
      local v2, err2 = json.decode(again)
      assert.is_nil(err2)
      assert.is_nil(h.diff(v1, v2))
    end)
  end

  local python = io.open("/usr/bin/python3", "rb")
  if python then python:close() end
  for _, name in ipairs(files) do
    local test = python and it or pending
    test("reads " .. name .. " as Python's json module does", function()
      local mode = h.has_integers and "int" or "num"
      local p = assert(io.popen("/usr/bin/python3 spec/json/listing.py " .. mode .. " " .. name))
      local expected = {}
      for line in p:lines() do expected[#expected + 1] = line end
      p:close()
      assert.is_true(#expected > 0)
      local v = assert(json.decode(h.read(name)))
      assert.are.same(expected, h.listing(v))
    end)
  end
end)
