-- espipe.routing against Elasticsearch's published test values and two
-- oracles written here independently of the C code: a plain-arithmetic Lua
-- Murmur3 (runs on every Lua, no bit library) and a Python one
-- (spec/routing/murmur3_oracle.py, run with /usr/bin/python3).
local routing = require "espipe.routing"

local TWO32 = 4294967296

-- 32-bit helpers on non-negative Lua numbers below 2^32, exact on doubles.
local function xor32(a, b)
  local r, bit = 0, 1
  for _ = 1, 32 do
    local x, y = a % 2, b % 2
    if x ~= y then r = r + bit end
    a, b, bit = (a - x) / 2, (b - y) / 2, bit * 2
  end
  return r
end

local function mul32(a, b)
  local alo, ahi = a % 65536, math.floor(a / 65536)
  local blo, bhi = b % 65536, math.floor(b / 65536)
  return ((ahi * blo + alo * bhi) % 65536 * 65536 + alo * blo) % TWO32
end

local function rotl32(x, r)
  local hi = math.floor(x / 2 ^ (32 - r))
  return (x * 2 ^ r) % TWO32 + hi
end

local function shr(x, n) return math.floor(x / 2 ^ n) end

-- UTF-8 text -> list of UTF-16 code units (valid input only).
local function utf16_units(s)
  local units, i = {}, 1
  while i <= #s do
    local c = s:byte(i)
    local cp, n
    if c < 0x80 then cp, n = c, 1
    elseif c < 0xE0 then cp, n = c % 0x20, 2
    elseif c < 0xF0 then cp, n = c % 0x10, 3
    else cp, n = c % 0x08, 4 end
    for j = 1, n - 1 do cp = cp * 64 + s:byte(i + j) % 64 end
    if cp >= 0x10000 then
      cp = cp - 0x10000
      units[#units + 1] = 0xD800 + math.floor(cp / 1024)
      units[#units + 1] = 0xDC00 + cp % 1024
    else
      units[#units + 1] = cp
    end
    i = i + n
  end
  return units
end

local function oracle_hash(s)
  local bytes = {}
  for _, u in ipairs(utf16_units(s)) do
    bytes[#bytes + 1] = u % 256
    bytes[#bytes + 1] = math.floor(u / 256)
  end
  local function mixk(k) return mul32(rotl32(mul32(k, 0xcc9e2d51), 15), 0x1b873593) end
  local h, n = 0, #bytes
  local full = n - n % 4
  for i = 1, full, 4 do
    local k = bytes[i] + bytes[i + 1] * 256 + bytes[i + 2] * 65536 + bytes[i + 3] * 16777216
    h = (mul32(rotl32(xor32(h, mixk(k)), 13), 5) + 0xe6546b64) % TWO32
  end
  if n > full then
    local k, scale = 0, 1
    for i = full + 1, n do k, scale = k + bytes[i] * scale, scale * 256 end
    h = xor32(h, mixk(k))
  end
  h = xor32(h, n)
  h = mul32(xor32(h, shr(h, 16)), 0x85ebca6b)
  h = mul32(xor32(h, shr(h, 13)), 0xc2b2ae35)
  h = xor32(h, shr(h, 16))
  return h >= 2 ^ 31 and h - TWO32 or h
end

local function signed(u) return u >= 2 ^ 31 and u - TWO32 or u end

-- Elasticsearch's shard functions, transcribed from IndexRouting/RoutingFunction.
local function oracle_shard(h, p)
  if p.func == "modulo" then return h % p.shards end
  local factor = p.routing_shards / p.shards
  return math.floor((h % p.routing_shards) / factor)
end

local function oracle_partitioned_hash(id, r, size)
  local sum = oracle_hash(r) + oracle_hash(id) % size
  if sum >= 2 ^ 31 then sum = sum - TWO32 end -- Java int overflow
  return sum
end

-- Deterministic pseudo-random strings mixing ASCII, 2-, 3- and 4-byte UTF-8.
local function make_strings(count)
  local pieces = { "a", "Z", "0", "-", "_", " ", "é", "ß", "Ω", "中", "€", "\239\191\191", "🙂", "𝄞", "\240\144\128\128" }
  local seed, out = 12345, {}
  local function rnd(n)
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % n
  end
  for i = 1, count do
    local t = {}
    for _ = 1, rnd(24) do t[#t + 1] = pieces[rnd(#pieces) + 1] end
    out[i] = table.concat(t)
  end
  return out
end

describe("routing.hash", function()
  -- Murmur3HashFunctionTests in Elasticsearch
  local vectors = {
    { "", 0x00000000 },
    { "h", 0x3fb8ba02 },
    { "hell", 0x5a0cb7c3 },
    { "hello", 0xd7c31989 },
    { "hello world", 0x64b256a4 },
    { "Γειά σου Κόσμε", 0x8ded82be },
    { "Supplementary planes too 🙂", 0x8274606c },
    { "The quick brown fox jumps over the lazy dog", 0xe07db09c },
  }

  it("reproduces Elasticsearch's own test values as signed 32-bit integers", function()
    for _, v in ipairs(vectors) do
      assert.are.equal(signed(v[2]), routing.hash(v[1]), v[1])
    end
    assert.are.equal(1510782915, routing.hash("hell"))
    assert.are.equal(-675079799, routing.hash("hello"))
  end)

  it("agrees with the plain-Lua oracle on mixed-script strings", function()
    for _, v in ipairs(vectors) do
      assert.are.equal(signed(v[2]), oracle_hash(v[1]), "oracle self-check: " .. v[1])
    end
    for _, s in ipairs(make_strings(300)) do
      assert.are.equal(oracle_hash(s), routing.hash(s), s)
    end
  end)

  it("agrees with an independent Python implementation", function()
    local f = io.open("/usr/bin/python3", "rb")
    if not f then
      pending("/usr/bin/python3 is not installed")
      return
    end
    f:close()
    local strings = make_strings(500)
    strings[#strings + 1] = string.rep("x", 1001)
    strings[#strings + 1] = string.rep("🙂", 33)
    local path = os.tmpname()
    local out = assert(io.open(path, "wb"))
    out:write(table.concat(strings, "\n"), "\n")
    out:close()
    local p = assert(io.popen("/usr/bin/python3 spec/routing/murmur3_oracle.py " .. path))
    local got = p:read("*a")
    p:close()
    os.remove(path)
    local i = 0
    for line in got:gmatch("[^\n]+") do
      i = i + 1
      assert.are.equal(tonumber(line), routing.hash(strings[i]), strings[i])
    end
    assert.are.equal(#strings, i)
  end)

  it("hashes an integer like its decimal string", function()
    assert.are.equal(routing.hash("12"), routing.hash(12))
    assert.are.equal(routing.hash("-7"), routing.hash(-7))
    assert.are.equal(routing.hash("9007199254740992"), routing.hash(2 ^ 53))
  end)

  it("returns values in [-2^31, 2^31)", function()
    for _, s in ipairs(make_strings(200)) do
      local h = routing.hash(s)
      assert.is_true(h >= -2 ^ 31 and h < 2 ^ 31 and h == math.floor(h))
    end
  end)

  it("rejects invalid UTF-8 naming the byte offset", function()
    local bad = {
      { "ab\255", 2 },            -- never valid
      { "\192\128", 0 },          -- overlong NUL
      { "x\224\128\128", 1 },     -- overlong 3-byte
      { "ok\237\160\128", 2 },    -- UTF-16 surrogate U+D800
      { "\244\144\128\128", 0 },  -- above U+10FFFF
      { "abc\226\130", 3 },       -- truncated
      { "\128", 0 },              -- stray continuation
    }
    for _, b in ipairs(bad) do
      local ok, err = pcall(routing.hash, b[1])
      assert.is_false(ok)
      assert.matches("not valid UTF%-8 %(byte offset " .. b[2] .. "%)", err)
    end
  end)

  it("rejects values that are not strings or integers", function()
    for _, v in ipairs { {}, true, 1.5 } do
      assert.has_error(function() routing.hash(v) end)
    end
    local ok, err = pcall(routing.hash)
    assert.is_false(ok)
    assert.matches("bad argument #1", err)
  end)
end)

describe("routing.default_routing_shards", function()
  it("matches MetadataCreateIndexServiceTests for indices created on 7.0+", function()
    local expect = { [1] = 1024, [2] = 1024, [3] = 768, [5] = 640, [8] = 1024, [9] = 576,
                     [30] = 960, [512] = 1024, [1024] = 2048, [2048] = 4096 }
    for n, rs in pairs(expect) do
      assert.are.equal(rs, routing.default_routing_shards(n), n .. " shards")
      assert.are.equal(rs, routing.default_routing_shards(n, 8))
    end
  end)

  it("is the shard count itself for 6.x indices", function()
    assert.are.equal(5, routing.default_routing_shards(5, 6))
  end)

  it("rejects a shard count below 1", function()
    assert.has_error(function() routing.default_routing_shards(0) end)
    assert.has_error(function() routing.default_routing_shards(2.5) end)
  end)
end)

describe("routing.shard", function()
  it("matches IndexRoutingTests#testSimpleRoutingPreAndPostModRoutingChange", function()
    assert.are.equal(1, routing.shard { id = "1", shards = 2, func = "modulo" })
    assert.are.equal(0, routing.shard { id = "1", shards = 2, routing_shards = 1024 })
    assert.are.equal(0, routing.shard { id = "1", shards = 2 }) -- default 1024 for 2 shards
  end)

  it("uses routing instead of the id when given", function()
    for _, s in ipairs(make_strings(100)) do
      local p = { id = "ignored", routing = s, shards = 5 }
      assert.are.equal(oracle_shard(oracle_hash(s), { shards = 5, routing_shards = 640 }), routing.shard(p))
    end
  end)

  it("computes legacy and modulo shards as the oracle does", function()
    local configs = {
      { shards = 1 }, { shards = 3 }, { shards = 5 }, { shards = 30, routing_shards = 960 },
      { shards = 4, routing_shards = 8 }, { shards = 6, routing_shards = 6 },
      { shards = 7, func = "modulo" }, { shards = 64, func = "modulo" },
    }
    for _, c in ipairs(configs) do
      local ref = { shards = c.shards, func = c.func,
                    routing_shards = c.routing_shards or routing.default_routing_shards(c.shards) }
      for _, s in ipairs(make_strings(60)) do
        local p = { id = s }
        for k, v in pairs(c) do p[k] = v end
        assert.are.equal(oracle_shard(oracle_hash(s), ref), routing.shard(p), s)
      end
    end
  end)

  it("uses routing_shards = shards for 6.x indices", function()
    for _, s in ipairs(make_strings(40)) do
      assert.are.equal(oracle_hash(s) % 5, routing.shard { id = s, shards = 5, es_major = 6 })
    end
  end)

  it("routes partitioned indices as hash(routing) + floorMod(hash(id), p)", function()
    local ids, routings = make_strings(80), make_strings(81)
    for i = 1, #ids do
      local r = routings[i + 1] .. "r"
      for _, c in ipairs { { shards = 4, routing_shards = 8, partition_size = 3 },
                           { shards = 4, partition_size = 3, func = "modulo" },
                           { shards = 10, partition_size = 7 } } do
        local p = { id = ids[i], routing = r }
        for k, v in pairs(c) do p[k] = v end
        local ref = { shards = c.shards, func = c.func,
                      routing_shards = c.routing_shards or routing.default_routing_shards(c.shards) }
        local want = oracle_shard(oracle_partitioned_hash(ids[i], r, c.partition_size), ref)
        assert.are.equal(want, routing.shard(p))
      end
    end
  end)

  it("wraps the partitioned hash sum like a Java int", function()
    -- a routing value hashing near 2^31 - 1 and an id offset that pushes the sum past it
    local size, r, id = 1000000, nil, nil
    for i = 1, 200000 do
      if routing.hash("w" .. i) > 2 ^ 31 - size / 2 then r = "w" .. i break end
    end
    assert.is_not_nil(r)
    for i = 1, 1000 do
      if routing.hash(r) + routing.hash("id" .. i) % size >= 2 ^ 31 then id = "id" .. i break end
    end
    assert.is_not_nil(id)
    local params = { shards = 3, routing_shards = 3 * 2 ^ 20 } -- 2^32 is no multiple of it
    local want = oracle_shard(oracle_partitioned_hash(id, r, size), params)
    assert.are.equal(want, routing.shard { id = id, routing = r, shards = 3,
                                            routing_shards = params.routing_shards, partition_size = size })
    -- without the wraparound the answer would differ for this pair
    local unwrapped = oracle_shard(routing.hash(r) + routing.hash(id) % size, params)
    assert.are_not.equal(unwrapped, want)
  end)

  it("rejects invalid parameters with clear errors", function()
    local cases = {
      { {}, "shards is required" },
      { { id = "1", shards = 0 }, "shards must be between" },
      { { id = "1", shards = 2.5 }, "shards must be an integer" },
      { { id = "1", shards = 3, routing_shards = 10 }, "must be a multiple of shards" },
      { { id = "1", shards = 4, routing_shards = 2 }, "must be a multiple of shards" },
      { { id = "1", shards = 2, func = "djb2" }, "func must be" },
      { { id = "1", shards = 2, partition_size = 2 }, "needs both id and routing" },
      { { routing = "r", shards = 2, partition_size = 2 }, "needs both id and routing" },
      { { id = "1", routing = "r", shards = 2, routing_shards = 2, partition_size = 2 }, "must be less than" },
      { { shards = 2 }, "id or routing is required" },
      { { id = {}, shards = 2 }, "id must be a string or an integer" },
      { { id = "\255", shards = 2 }, "id is not valid UTF%-8 %(byte offset 0%)" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(routing.shard, c[1])
      assert.is_false(ok)
      assert.matches(c[2], err)
    end
    assert.has_error(function() routing.shard("x") end)
  end)
end)

describe("routing.shards_of", function()
  it("gives the same shards as routing.shard, in one call", function()
    local ids = make_strings(500)
    for i = 1, #ids do ids[i] = ids[i] .. i end
    local params = { shards = 5 }
    local got = routing.shards_of(ids, params)
    assert.are.equal(#ids, #got)
    for i, id in ipairs(ids) do
      assert.are.equal(oracle_shard(oracle_hash(id), { shards = 5, routing_shards = 640 }), got[i])
    end
  end)

  it("uses a parallel list of routing values, falling back to the id where it has none", function()
    local ids = { "a", "b", "c", 4 }
    local routings = { "x", nil, "z" }
    local got = routing.shards_of(ids, { shards = 7, func = "modulo" }, routings)
    assert.are.same({ oracle_hash("x") % 7, oracle_hash("b") % 7, oracle_hash("z") % 7,
                      oracle_hash("4") % 7 }, got)
  end)

  it("names the position of a bad element", function()
    local ok, err = pcall(routing.shards_of, { "a", "b", true }, { shards = 2 })
    assert.is_false(ok)
    assert.matches("ids%[3%]", err)
    ok, err = pcall(routing.shards_of, { "a", "b" }, { shards = 2, partition_size = 2 }, { "r" })
    assert.is_false(ok)
    assert.matches("ids%[2%] and routings%[2%]", err)
  end)

  it("returns an empty list for no ids", function()
    assert.are.same({}, routing.shards_of({}, { shards = 3 }))
  end)
end)

describe("routing.detect", function()
  it("tells legacy from modulo indices by their observed shards", function()
    for _, func in ipairs { "legacy", "modulo" } do
      local observed = {}
      for _, v in ipairs(routing.probes) do
        observed[v] = oracle_shard(oracle_hash(v), { shards = 3, routing_shards = 768, func = func })
      end
      assert.are.equal(func, routing.detect(observed, { shards = 3 }))
    end
  end)

  it("returns nil when neither function explains the observations", function()
    local observed = {}
    for _, v in ipairs(routing.probes) do
      observed[v] = (oracle_hash(v) % 3 + 1) % 3
    end
    local legacy = {}
    for _, v in ipairs(routing.probes) do
      legacy[v] = oracle_shard(oracle_hash(v), { shards = 3, routing_shards = 768 })
    end
    -- only meaningful if that shifted map differs from both functions
    assert.are_not.same(legacy, observed)
    assert.is_nil(routing.detect(observed, { shards = 3 }))
    assert.is_nil(routing.detect({}, { shards = 3 }))
  end)
end)
