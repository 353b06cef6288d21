-- String encoding, byte for byte: the encoder scans and copies words of 8
-- (and overlapping words at the end of a run), and works through long
-- strings in segments. Strings are built from pieces whose JSON text is
-- known on its own, so the expected output is the pieces' texts joined.
local json = require "espipe.json"

-- A tiny deterministic generator (identical on every Lua).
local function lcg(seed)
  local state = seed
  return function(n)
    state = (state * 1103515245 + 12345) % 2147483648
    return state % n
  end
end

local REPLACEMENT = "\239\191\189"

-- { raw bytes, JSON text of those bytes inside the quotes }
local specials = {
  { '"', '\\"' }, { "\\", "\\\\" }, { "\n", "\\n" }, { "\r", "\\r" }, { "\t", "\\t" },
  { "\b", "\\b" }, { "\f", "\\f" }, { "\0", "\\u0000" }, { "\1", "\\u0001" },
  { "\31", "\\u001f" }, { "/", "/" }, { "\127", "\127" },
  { "\195\169", "\195\169" },                 -- é
  { "\226\130\172", "\226\130\172" },         -- €
  { "\240\159\152\128", "\240\159\152\128" }, -- U+1F600
}
local invalid = {
  { "\255", REPLACEMENT },
  { "\226\130", REPLACEMENT },                -- a truncated three-byte sequence
  { "\237\160\128", REPLACEMENT .. REPLACEMENT .. REPLACEMENT }, -- an encoded surrogate
}
local plain = "abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789-_.:@#"

local function plain_run(rand, n)
  local t = {}
  for i = 1, n do
    local k = rand(#plain) + 1
    t[i] = plain:sub(k, k)
  end
  return table.concat(t)
end

-- A string of about `size` bytes: plain runs of random length with a
-- special (or, with bad = true, sometimes an invalid sequence) between them.
local function make(rand, size, bad)
  local raw, text, len = {}, {}, 0
  while len < size do
    local run = plain_run(rand, rand(20))
    raw[#raw + 1], text[#text + 1] = run, run
    local p = (bad and rand(4) == 0) and invalid[rand(#invalid) + 1]
      or specials[rand(#specials) + 1]
    if rand(3) > 0 then
      raw[#raw + 1], text[#text + 1] = p[1], p[2]
    end
    len = len + #run + #p[1]
  end
  return table.concat(raw), '"' .. table.concat(text) .. '"'
end

describe("espipe.json string encoding", function()
  it("writes every length 0..80 of plain text as it is", function()
    for n = 0, 80 do
      local s = plain_run(lcg(n + 1), n)
      assert.are.equal('"' .. s .. '"', json.encode(s))
    end
  end)

  it("escapes a special at every position of strings of length 1..40", function()
    for n = 1, 40 do
      for pos = 1, n do
        for _, p in ipairs(specials) do
          local before, after = string.rep("a", pos - 1), string.rep("z", n - pos)
          local s = before .. p[1] .. after
          assert.are.equal('"' .. before .. p[2] .. after .. '"', json.encode(s))
        end
      end
    end
  end)

  it("matches the pieces' texts for 3000 generated strings", function()
    local rand = lcg(7)
    for _ = 1, 3000 do
      local raw, expected = make(rand, rand(120))
      assert.are.equal(expected, json.encode(raw))
      assert.are.equal(raw, json.decode(expected))
    end
  end)

  it("handles strings longer than one encoding segment (4096 bytes)", function()
    local rand = lcg(11)
    for _, size in ipairs({ 4090, 4096, 4100, 9000, 70000 }) do
      local raw, expected = make(rand, size)
      assert.are.equal(expected, json.encode(raw))
      -- escapes only, so the output is six times the input
      local controls = string.rep("\1", size)
      assert.are.equal('"' .. string.rep("\\u0001", size) .. '"', json.encode(controls))
      assert.are.equal(string.rep("x", size), json.decode(json.encode(string.rep("x", size))))
    end
  end)

  it("replaces invalid UTF-8 at any position with utf8 = 'replace'", function()
    local rand = lcg(13)
    for _ = 1, 2000 do
      local raw, expected = make(rand, rand(100), true)
      assert.are.equal(expected, json.encode(raw, { utf8 = "replace" }))
    end
    local raw, expected = make(rand, 10000, true)
    assert.are.equal(expected, json.encode(raw, { utf8 = "replace" }))
  end)

  it("names the byte offset of invalid UTF-8 after any prefix", function()
    for n = 0, 20 do
      local ok, msg = pcall(json.encode, { k = string.rep("a", n) .. "\255" .. "tail" })
      assert.is_false(ok)
      assert.matches("invalid UTF%-8 at byte " .. (n + 1) .. " of string at %.k", msg)
    end
  end)

  it("escapes object keys the same way", function()
    local rand = lcg(17)
    for _ = 1, 300 do
      local raw, expected = make(rand, rand(30))
      assert.are.equal("{" .. expected .. ":1}", json.encode({ [raw] = 1 }))
    end
  end)
end)
