-- The encoder's object-key cache (csrc/json/encoder.c): a key's text is
-- looked up by the address of its string, which stays sound only while the
-- cached string is anchored. Whatever the cache holds, every key must come
-- out as its own text: same lengths with other bytes, evictions, keys that
-- are collected and whose memory is reused, keys that need escaping, and
-- the bulk builder sharing the cache with encode.
local json = require "espipe.json"
local bulk = require "espipe.bulk"

-- Expected text of a one-member object, written here independently.
local function member(k, v)
  return '{"' .. k .. '":' .. v .. "}"
end

describe("espipe.json key cache", function()
  it("keys of the same length and other bytes each come out as themselves", function()
    for _ = 1, 3 do
      for _, k in ipairs({ "abc", "abd", "abe", "xbc", "ab\0", "ab\1" }) do
        local text = k:gsub("%z", "\\u0000"):gsub("\1", "\\u0001")
        assert.are.equal(member(text, 1), json.encode({ [k] = 1 }))
      end
    end
  end)

  it("stays right while far more keys than it holds go through it", function()
    -- 128 slots: 1000 keys evict each other again and again.
    for round = 1, 3 do
      for i = 1, 1000 do
        local k = "field_" .. i
        assert.are.equal(member(k, round), json.encode({ [k] = round }))
      end
    end
  end)

  it("writes the commas of many members right whichever keys hit", function()
    local t, n = {}, 300
    for i = 1, n do t["k" .. i] = i end
    for _ = 1, 3 do
      local back = json.decode(json.encode(t))
      local count = 0
      for k, v in pairs(back) do
        count = count + 1
        assert.are.equal(t[k], v)
      end
      assert.are.equal(n, count)
    end
  end)

  it("never gives a collected key's text to a new string at the same address", function()
    -- Keys made at run time and dropped: once evicted and collected, their
    -- memory is reused by the next ones, which must still read as themselves.
    for i = 1, 2000 do
      local k = string.format("gc_%d_%s", i, string.rep("x", i % 37))
      assert.are.equal(member(k, i), json.encode({ [k] = i }))
      if i % 50 == 0 then
        collectgarbage("collect")
      end
    end
    collectgarbage("collect")
    for i = 1, 200 do
      local k = string.format("gc_%d_%s", i + 5000, string.rep("y", i % 37))
      assert.are.equal(member(k, i), json.encode({ [k] = i }))
    end
  end)

  it("keeps a cached key alive: the key still reads right after a full collection", function()
    local k = table.concat({ "anch", "ored" })
    assert.are.equal(member("anchored", 1), json.encode({ [k] = 1 }))
    k = nil -- luacheck: ignore 311 (dropping the only reference is the point)
    collectgarbage("collect")
    collectgarbage("collect")
    assert.are.equal(member("anchored", 2), json.encode({ anchored = 2 }))
    assert.are.equal(member("anchorex", 3), json.encode({ anchorex = 3 }))
  end)

  it("handles long keys and keys that need escaping, every time", function()
    local long = string.rep("k", 44)
    local longer = string.rep("k", 45)
    local huge = string.rep("abcdefgh", 100)
    for _ = 1, 3 do
      assert.are.equal(member(long, 1), json.encode({ [long] = 1 }))
      assert.are.equal(member(longer, 1), json.encode({ [longer] = 1 }))
      assert.are.equal(member(huge, 1), json.encode({ [huge] = 1 }))
      assert.are.equal(member('a\\"b', 1), json.encode({ ['a"b'] = 1 }))
      assert.are.equal(member("tab\\t", 1), json.encode({ ["tab\t"] = 1 }))
      assert.are.equal(member("caf\195\169", 1), json.encode({ ["caf\195\169"] = 1 }))
    end
  end)

  it("does not let a replaced key stand in for the invalid one in error mode", function()
    local k = "bad\255key"
    assert.are.equal(member("bad\239\191\189key", 1), json.encode({ [k] = 1 }, { utf8 = "replace" }))
    local ok, msg = pcall(json.encode, { [k] = 1 })
    assert.is_false(ok)
    assert.matches("invalid UTF%-8 at byte 4 of key", msg)
    assert.are.equal(member("bad\239\191\189key", 2), json.encode({ [k] = 2 }, { utf8 = "replace" }))
  end)

  it("tells numeric keys from cached string keys with the same text", function()
    for _ = 1, 3 do
      assert.are.equal(member("1", '"s"'), json.encode({ ["1"] = "s" }))
      assert.are.equal('{"1":"a","2":"b","x":1}', json.encode({ "a", "b", x = 1 }):gsub(
        '^{(.*)}$', function(body)
          local parts = {}
          for p in body:gmatch('"[^"]*":[^,]*') do parts[#parts + 1] = p end
          table.sort(parts)
          return "{" .. table.concat(parts, ",") .. "}"
        end))
    end
  end)

  it("names the right key in errors after hits", function()
    for _ = 1, 3 do
      local ok, msg = pcall(json.encode, { outer = { inner = function() end } })
      assert.is_false(ok)
      assert.matches("cannot encode function at %.outer%.inner", msg)
    end
  end)

  it("is shared by the bulk builder and encode, each writing the right text", function()
    local b = bulk.new()
    for i = 1, 500 do
      local doc = { ["shared_" .. (i % 200)] = i, common = "c" }
      b:index({ _index = "x" }, doc)
      local back = json.decode(json.encode(doc))
      assert.are.equal(i, back["shared_" .. (i % 200)])
      assert.are.equal("c", back.common)
    end
    local lines = {}
    for line in b:body():gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.are.equal(1000, #lines)
    for i = 1, 500 do
      local doc = json.decode(lines[2 * i])
      assert.are.equal(i, doc["shared_" .. (i % 200)])
      assert.are.equal("c", doc.common)
    end
  end)
end)
