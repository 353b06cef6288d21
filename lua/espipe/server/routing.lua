-- Elasticsearch shard routing in pure Lua, for the dev server (which runs on
-- LuaJIT inside nginx, where the C core is not loaded).
--
-- hash(s)  Murmur3 x86_32, seed 0, over the UTF-16 code units of the UTF-8
--          string s, each written little-endian (what ES's
--          Murmur3HashFunction does with a Java String); a signed 32-bit
--          integer. Invalid UTF-8 -> nil, err (a Java String cannot hold it).
-- shard(value, shards[, routing_shards[, func]])  func "legacy" (default:
--          floorMod(h, routing_shards) / (routing_shards / shards)) or
--          "modulo" (floorMod(h, shards), ES 9.x indices from 9_064_0_00)
-- partitioned_hash(routing, id, partition_size)  hash(routing) +
--          floorMod(hash(id), p), wrapping as a Java int does
-- shard_for_hash(h, shards, routing_shards, func)
-- default_routing_shards(n[, es_major])
--
-- Bit operations: LuaJIT's bit module; bit32 on 5.2; native operators on
-- 5.3+; plain arithmetic on PUC 5.1. 32x32-bit products are formed from
-- 16-bit halves because a double keeps only 53 bits of the full product.
local M = {}

local byte, floor = string.byte, math.floor

local TWO32 = 4294967296
local TWO31 = 2147483648

-- Each backend provides, over its own representation of a 32-bit word:
-- mul, rotl, xor, shr (logical), add, word(lo16, hi16), signed(x).
local function luajit_ops(bit)
  local band, bxor, rol, rshift, lshift, tobit = bit.band, bit.bxor, bit.rol,
    bit.rshift, bit.lshift, bit.tobit
  return {
    mul = function(a, b)
      -- a*b mod 2^32 = lo16(a)*b + (hi16(a)*b << 16); each partial < 2^48
      return tobit(band(a, 0xffff) * b + lshift(rshift(a, 16) * b, 16))
    end,
    rotl = rol,
    xor = bxor,
    shr = rshift,
    add = function(a, b) return tobit(a + b) end,
    word = function(lo, hi) return tobit(lo + lshift(hi, 16)) end,
    signed = tobit,
    const = tobit,
  }
end

local function signed_of_u32(x)
  if x >= TWO31 then return x - TWO32 end
  return x
end

-- words are unsigned 32-bit values held in doubles (5.1, 5.2)
local function arithmetic_ops(xor)
  return {
    mul = function(a, b)
      local blo = b % 65536
      local bhi = (b - blo) / 65536
      return (a * blo + (a * bhi % 65536) * 65536) % TWO32
    end,
    rotl = function(x, r)
      local p = 2 ^ r
      local hi = floor(x / (TWO32 / p))
      return (x * p) % TWO32 + hi
    end,
    xor = xor,
    shr = function(x, n) return floor(x / 2 ^ n) end,
    add = function(a, b) return (a + b) % TWO32 end,
    word = function(lo, hi) return lo + hi * 65536 end,
    signed = signed_of_u32,
    const = function(x) return x % TWO32 end,
  }
end

-- xor of two unsigned 32-bit values, 4 bits at a time (PUC 5.1 only)
local nibble_xor = {}
for a = 0, 15 do
  for b = 0, 15 do
    local r, bitv, x, y = 0, 1, a, b
    for _ = 1, 4 do
      if x % 2 ~= y % 2 then r = r + bitv end
      x, y, bitv = floor(x / 2), floor(y / 2), bitv * 2
    end
    nibble_xor[a * 16 + b] = r
  end
end
local function arithmetic_xor(a, b)
  local r, scale = 0, 1
  for _ = 1, 8 do
    local na, nb = a % 16, b % 16
    r = r + nibble_xor[na * 16 + nb] * scale
    a, b, scale = (a - na) / 16, (b - nb) / 16, scale * 16
  end
  return r
end

local function native_ops()
  -- 5.3+: integer operators, compiled at run time so 5.1 can parse this file
  return assert(load([[
    local M32 = 0xffffffff
    return {
      mul = function(a, b) return (a * b) & M32 end,
      rotl = function(x, r) return ((x << r) | (x >> (32 - r))) & M32 end,
      xor = function(a, b) return a ~ b end,
      shr = function(x, n) return x >> n end,
      add = function(a, b) return (a + b) & M32 end,
      word = function(lo, hi) return lo | (hi << 16) end,
      signed = function(x) if x >= 0x80000000 then return x - 0x100000000 end return x end,
      const = function(x) return math.tointeger(x) & M32 end,
    }
  ]], "=routing_native_ops"))()
end

local ops
if type(jit) == "table" or (pcall(require, "bit") and _VERSION == "Lua 5.1") then
  ops = luajit_ops(require("bit"))
elseif math.type then
  ops = native_ops()
elseif _VERSION == "Lua 5.2" then
  ops = arithmetic_ops(bit32.bxor)
else
  ops = arithmetic_ops(arithmetic_xor)
end
M.backend = type(jit) == "table" and "bit" or (math.type and "native")
  or (_VERSION == "Lua 5.2" and "bit32") or "arithmetic"

local mul, rotl, xor, shr, add, word, signed = ops.mul, ops.rotl, ops.xor, ops.shr,
  ops.add, ops.word, ops.signed
local C1, C2 = ops.const(0xcc9e2d51), ops.const(0x1b873593)
local C3, F1, F2 = ops.const(0xe6546b64), ops.const(0x85ebca6b), ops.const(0xc2b2ae35)

-- UTF-8 -> UTF-16 code units; nil, byte offset of the first invalid sequence
local function utf16_units(s)
  local units, n = {}, 0
  local i, len = 1, #s
  while i <= len do
    local c = byte(s, i)
    local cp, need
    if c < 0x80 then cp, need = c, 0
    elseif c >= 0xC2 and c <= 0xDF then cp, need = c - 0xC0, 1
    elseif c >= 0xE0 and c <= 0xEF then cp, need = c - 0xE0, 2
    elseif c >= 0xF0 and c <= 0xF4 then cp, need = c - 0xF0, 3
    else return nil, i - 1 end
    for j = 1, need do
      local cc = byte(s, i + j)
      if not cc or cc < 0x80 or cc > 0xBF then return nil, i - 1 end
      cp = cp * 64 + (cc - 0x80)
    end
    if (need == 2 and (cp < 0x800 or (cp >= 0xD800 and cp <= 0xDFFF)))
      or (need == 3 and (cp < 0x10000 or cp > 0x10FFFF)) then
      return nil, i - 1
    end
    if cp >= 0x10000 then
      cp = cp - 0x10000
      local lo = cp % 0x400
      units[n + 1] = 0xD800 + (cp - lo) / 0x400
      units[n + 2] = 0xDC00 + lo
      n = n + 2
    else
      n = n + 1
      units[n] = cp
    end
    i = i + need + 1
  end
  return units, n
end

local function mix_block(h, k)
  k = mul(k, C1)
  k = rotl(k, 15)
  k = mul(k, C2)
  h = xor(h, k)
  h = rotl(h, 13)
  return add(mul(h, 5), C3)
end

-- get(src, i): the i-th code unit of src (string.byte for ASCII strings)
local function murmur_units(get, src, n)
  local h = ops.const(0)
  local i = 1
  while i + 1 <= n do
    h = mix_block(h, word(get(src, i), get(src, i + 1)))
    i = i + 2
  end
  if i == n then -- one code unit left: a 2-byte tail
    local k = word(get(src, i), 0)
    k = mul(k, C1)
    k = rotl(k, 15)
    k = mul(k, C2)
    h = xor(h, k)
  end
  h = xor(h, ops.const(n * 2))
  h = xor(h, shr(h, 16))
  h = mul(h, F1)
  h = xor(h, shr(h, 13))
  h = mul(h, F2)
  h = xor(h, shr(h, 16))
  return signed(h)
end

local function unit_at(units, i) return units[i] end

-- a byte loop: compiled by LuaJIT, where a pattern find runs the C matcher
local function ascii(s)
  for i = 1, #s do
    if byte(s, i) > 127 then return false end
  end
  return true
end

local function hash(s)
  if type(s) ~= "string" then
    error("routing.hash expects a string, got " .. type(s), 2)
  end
  if ascii(s) then
    -- one code unit per byte
    return murmur_units(byte, s, #s)
  end
  local units, n = utf16_units(s)
  if not units then
    return nil, "invalid UTF-8 in routing value at byte " .. n
  end
  return murmur_units(unit_at, units, n)
end
M.hash = hash

local FUNCS = { legacy = true, modulo = true }

local function check_counts(shards, routing_shards, func, level)
  if type(shards) ~= "number" or shards < 1 or shards % 1 ~= 0 then
    error("routing: shards must be a positive integer, got " .. tostring(shards), level)
  end
  if func ~= nil and not FUNCS[func] then
    error("routing: func must be \"legacy\" or \"modulo\", got " .. tostring(func), level)
  end
  if routing_shards ~= nil and (type(routing_shards) ~= "number" or routing_shards < shards
      or routing_shards % shards ~= 0) then
    error("routing: routing_shards must be a multiple of shards (" .. shards .. "), got "
      .. tostring(routing_shards), level)
  end
end

function M.shard_for_hash(h, shards, routing_shards, func)
  check_counts(shards, routing_shards, func, 2)
  if func == "modulo" then return h % shards end
  routing_shards = routing_shards or shards
  return floor((h % routing_shards) / (routing_shards / shards))
end

function M.shard(value, shards, routing_shards, func)
  check_counts(shards, routing_shards, func, 2)
  -- one shard takes every value that hashes (ASCII always does)
  if shards == 1 and type(value) == "string" and ascii(value) then return 0 end
  local h, err = hash(value)
  if not h then return nil, err end
  return M.shard_for_hash(h, shards, routing_shards, func)
end

function M.partitioned_hash(routing, id, partition_size)
  if type(partition_size) ~= "number" or partition_size < 1 or partition_size % 1 ~= 0 then
    error("routing: partition_size must be a positive integer, got " .. tostring(partition_size), 2)
  end
  local hr, err = hash(routing)
  if not hr then return nil, err end
  local hi
  hi, err = hash(id)
  if not hi then return nil, err end
  return signed_of_u32((hr + hi % partition_size) % TWO32)
end

function M.default_routing_shards(n, es_major)
  if type(n) ~= "number" or n < 1 or n % 1 ~= 0 then
    error("routing: number of shards must be a positive integer, got " .. tostring(n), 2)
  end
  if es_major and es_major < 7 then return n end
  local log2 = 0
  while 2 ^ log2 < n do log2 = log2 + 1 end
  local splits = 10 - log2
  if splits < 1 then splits = 1 end
  for _ = 1, splits do n = n * 2 end -- stays an integer on 5.3+
  return n
end

return M
