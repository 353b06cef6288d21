-- espipe.server.routing: ES's Murmur3 routing hash and shard functions in
-- pure Lua. Expected values come from Elasticsearch's own tests
-- (Murmur3HashFunctionTests, MetadataCreateIndexServiceTests), not from this code.
local routing = require("espipe.server.routing")

local function u32(x) if x < 0 then return x + 4294967296 end return x end

describe("server routing hash (" .. routing.backend .. ")", function()
  local known = {
    { "", 0x00000000 },
    { "h", 0x3fb8ba02 },
    { "hell", 0x5a0cb7c3 },
    { "hello", 0xd7c31989 },
    { "hello world", 0x64b256a4 },
    { "Γειά σου Κόσμε", 0x8ded82be },
    { "Supplementary planes too 🙂", 0x8274606c },
    { "The quick brown fox jumps over the lazy dog", 0xe07db09c },
  }
  for _, case in ipairs(known) do
    it("matches Elasticsearch for " .. string.format("%q", case[1]), function()
      local h = assert(routing.hash(case[1]))
      assert.equal(case[2], u32(h))
      assert.is_true(h >= -2147483648 and h <= 2147483647)
    end)
  end

  it("returns signed 32-bit integers as Java does", function()
    assert.equal(1510782915, routing.hash("hell"))
    assert.equal(-675079799, routing.hash("hello"))
  end)

  it("rejects invalid UTF-8 with the byte offset", function()
    local h, err = routing.hash("ab\255c")
    assert.is_nil(h)
    assert.equal("invalid UTF-8 in routing value at byte 2", err)
    assert.is_nil((routing.hash("\237\160\128"))) -- an encoded surrogate
    assert.is_nil((routing.hash("\192\128")))      -- overlong NUL
    assert.is_nil((routing.hash("x\226\130")))     -- truncated sequence
  end)

  it("raises for a non-string value", function()
    assert.has_error(function() routing.hash(42) end, "routing.hash expects a string, got number")
  end)
end)

describe("server routing shards", function()
  it("computes the default number of routing shards for 7.0+ indices", function()
    local expected = { [1] = 1024, [2] = 1024, [3] = 768, [5] = 640, [8] = 1024, [9] = 576,
      [30] = 960, [512] = 1024, [1024] = 2048, [2048] = 4096 }
    for n, r in pairs(expected) do
      assert.equal(r, routing.default_routing_shards(n), "shards " .. n)
    end
    assert.equal(5, routing.default_routing_shards(5, 6))
  end)

  it("applies the legacy function: floorMod(h, rs) / (rs / shards)", function()
    -- "hello" = -675079799; floorMod(-675079799, 640) = 521 (-675079799 = -1054813*640 + 521)
    assert.equal(4, routing.shard("hello", 5, 640))        -- 521 // 128
    assert.equal(521 % 5, routing.shard("hello", 5, nil, "modulo"))
    -- ES IndexRoutingTests: _id "1", 2 shards -> 0 with routing_num_shards 1024 (legacy), 1 with modulo
    assert.equal(0, routing.shard("1", 2, 1024, "legacy"))
    assert.equal(1, routing.shard("1", 2, nil, "modulo"))
    -- without routing_shards, legacy is floorMod(h, shards) (6.x indices)
    assert.equal(521 % 5, routing.shard("hello", 5))
  end)

  it("wraps the partitioned hash like a Java int", function()
    local hr, hi = routing.hash("r"), routing.hash("id-7")
    local expect = (hr + (hi % 3)) % 4294967296
    if expect >= 2147483648 then expect = expect - 4294967296 end
    assert.equal(expect, routing.partitioned_hash("r", "id-7", 3))
    assert.equal(1510782915, routing.partitioned_hash("hell", "x", 1))
    -- "hell" hashes to 1510782915; an offset above 636700732 overflows int32
    local p, found = 1000000000, false
    for i = 1, 50 do
      local off = routing.hash("id" .. i) % p
      if off > 2147483647 - 1510782915 then
        assert.equal(1510782915 + off - 4294967296, routing.partitioned_hash("hell", "id" .. i, p))
        found = true
      end
    end
    assert.is_true(found)
  end)

  it("spreads many ids over all shards with both functions", function()
    local seen_l, seen_m = {}, {}
    for i = 1, 2000 do
      seen_l[routing.shard(tostring(i), 5, 640)] = true
      seen_m[routing.shard(tostring(i), 5, nil, "modulo")] = true
    end
    for s = 0, 4 do assert.is_true(seen_l[s]); assert.is_true(seen_m[s]) end
    assert.is_nil(seen_l[5]); assert.is_nil(seen_m[5])
  end)

  it("raises for bad shard arguments", function()
    assert.has_error(function() routing.shard("a", 0) end,
      "routing: shards must be a positive integer, got 0")
    assert.has_error(function() routing.shard("a", 3, 1024) end,
      "routing: routing_shards must be a multiple of shards (3), got 1024")
    assert.has_error(function() routing.shard("a", 3, 768, "mod") end,
      "routing: func must be \"legacy\" or \"modulo\", got mod")
  end)
end)

describe("server routing hash against the C core", function()
  -- two implementations written apart must agree on arbitrary strings
  local core = require("espipe.core")
  it("agrees with espipe.core.routing_hash on random mixed-script strings", function()
    assert.is_function(core.routing_hash)
    local pieces = { "a", "Z", "0", " ", "/", "é", "Ω", "中", "🙂", "\244\143\191\191" }
    math.randomseed(7)
    for _ = 1, 3000 do
      local t = {}
      for j = 1, math.random(0, 37) do t[j] = pieces[math.random(#pieces)] end
      local s = table.concat(t)
      assert.equal(core.routing_hash(s), routing.hash(s), s)
    end
  end)
end)
