-- espipe.server.query_patterns through espipe.server.query: regexp (Lucene
-- syntax, whole-term) and fuzzy (edit distance) queries on keyword and text.
local query = require("espipe.server.query")
local patterns = require("espipe.server.query_patterns")

local MAPPINGS = { properties = { k = { type = "keyword" }, t = { type = "text" } } }

local function matches(q, source)
  local m, err = query.compile(q, MAPPINGS)
  assert(m, err and err.reason)
  return m(source, { _id = "1" })
end

describe("server regexp query", function()
  it("matches the whole keyword with Lucene's operators", function()
    assert.is_true(matches({ regexp = { k = "ab.*" } }, { k = "abc" }))
    assert.is_false(matches({ regexp = { k = "b.*" } }, { k = "abc" }))
    assert.is_true(matches({ regexp = { k = { value = "a[b-d]{2}(x|yz)?" } } }, { k = "acdyz" }))
    assert.is_false(matches({ regexp = { k = "a[^b]c" } }, { k = "abc" }))
    assert.is_true(matches({ regexp = { k = "a\\.b" } }, { k = "a.b" }))
    assert.is_true(matches({ regexp = { k = "x@" } }, { k = "xanything" }))
    assert.is_true(matches({ regexp = { k = { value = "AB+", case_insensitive = true } } }, { k = "abbb" }))
  end)

  it("matches any token of a text field", function()
    assert.is_true(matches({ regexp = { t = "qu.ck" } }, { t = "The Quick fox" }))
  end)

  it("refuses what it cannot parse, naming it", function()
    local m, err = query.compile({ regexp = { k = "a(b" } }, MAPPINGS)
    assert.is_nil(m)
    assert.matches("expected '%)'", err.reason)
    m, err = query.compile({ regexp = { k = "~a" } }, MAPPINGS)
    assert.is_nil(m)
    assert.matches("operator %[~%] is not supported", err.reason)
  end)
end)

describe("server fuzzy query", function()
  it("allows AUTO edits by term length, transpositions and a fixed prefix", function()
    assert.is_true(matches({ fuzzy = { k = "kimchy" } }, { k = "kimchi" }))
    assert.is_true(matches({ fuzzy = { k = "kimchy" } }, { k = "kmichy" }))
    assert.is_false(matches({ fuzzy = { k = "ab" } }, { k = "ac" }))
    assert.is_true(matches({ fuzzy = { k = { value = "ab", fuzziness = 1 } } }, { k = "ac" }))
    assert.is_false(matches({ fuzzy = { k = { value = "kimchy", prefix_length = 2 } } }, { k = "kxmchy" }))
    assert.is_false(matches({ fuzzy = { k = { value = "kimchy", transpositions = false, fuzziness = 1 } } },
      { k = "kmichy" }))
  end)

  it("measures optimal string alignment distance", function()
    assert.equal(1, patterns.edit_distance("ab", "ba", true))
    assert.equal(2, patterns.edit_distance("ab", "ba", false))
    assert.equal(3, patterns.edit_distance("kitten", "sitting", true))
  end)
end)
