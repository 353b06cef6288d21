-- espipe.json: every documented rule of lua/espipe/json.lua, on each Lua.
local json = require "espipe.json"
local errors = require "espipe.client.errors"
local h = require "json.helpers"

local ints = h.has_integers

local function decode_err(text, opts)
  local v, err = json.decode(text, opts)
  assert.is_nil(v)
  assert.is_true(errors.is(err))
  assert.are.equal("json", err.kind)
  return err
end

local function encode_err(value, opts)
  local ok, msg = pcall(json.encode, value, opts)
  assert.is_false(ok)
  return msg
end

describe("espipe.json null and arrays", function()
  it("null is lightuserdata NULL, the value cjson.null holds", function()
    assert.are.equal("userdata", type(json.null))
    local ok, cjson = pcall(require, "cjson")
    if ok then assert.are.equal(cjson.null, json.null) end
    assert.are.equal("null", json.encode(json.null))
    assert.are.equal(json.null, json.decode("null"))
    assert.are.equal('[1,null,"x"]', json.encode({ 1, json.null, "x" }))
  end)

  it("encodes an empty table as {} and a marked one as []", function()
    assert.are.equal("{}", json.encode({}))
    assert.are.equal("[]", json.encode(json.array()))
    assert.are.equal("[]", json.encode(json.array({})))
    assert.are.equal('{"a":[]}', json.encode({ a = json.array() }))
  end)

  it("marks decoded arrays so [] and null survive a round trip", function()
    local v = json.decode('{"a":[],"b":{},"c":[null,[]]}')
    assert.is_true(json.is_array(v.a))
    assert.is_false(json.is_array(v.b))
    assert.is_false(json.is_array(v))
    assert.are.equal(json.null, v.c[1])
    local again = json.decode(json.encode(v))
    assert.is_nil(h.diff(v, again))
    assert.are.equal("[]", json.encode(v.a))
  end)

  it("writes nil holes of a marked array as null and ignores its other keys", function()
    local holes = json.array({ 1, 2, 3 })
    holes[2] = nil
    -- which border # picks is the Lua implementation's choice
    assert.are.equal(#holes == 3 and "[1,null,3]" or "[1]", json.encode(holes))
    local t = json.array({ 1, 2 })
    t.extra = "ignored"
    assert.are.equal("[1,2]", json.encode(t))
  end)

  it("rejects marking a non-table or a table with another metatable", function()
    assert.has_error(function() json.array("x") end, "json.array expects a table, got string")
    assert.has_error(function() json.array(setmetatable({}, {})) end,
      "json.array: the table already has a metatable")
    assert.is_false(json.is_array("x"))
  end)
end)

describe("espipe.json numbers", function()
  it("writes integers as integers", function()
    assert.are.equal("[0,1,-1,1717590896789,-98765432109876]",
      json.encode({ 0, 1, -1, 1717590896789, -98765432109876 }))
    assert.are.equal("9007199254740992", json.encode(ints and math.tointeger(2 ^ 53) or 2 ^ 53))
  end)

  if ints then
    it("keeps the int64 extremes exact on 5.3+", function()
      assert.are.equal("9223372036854775807", json.encode(math.maxinteger))
      assert.are.equal("-9223372036854775808", json.encode(math.mininteger))
      assert.are.equal(math.maxinteger, json.decode("9223372036854775807"))
      assert.are.equal(math.mininteger, json.decode("-9223372036854775808"))
      assert.are.equal("integer", math.type(json.decode("9007199254740993")))
      assert.are.equal(9007199254740993, json.decode("9007199254740993"))
    end)

    it("keeps the float subtype: 1.0 is written 1.0 and read back as a float", function()
      assert.are.equal("1.0", json.encode(1.0))
      assert.are.equal("-0.0", json.encode(-0.0))
      assert.are.equal("9007199254740992.0", json.encode(2.0 ^ 53))
      assert.are.equal("float", math.type(json.decode("1.0")))
      assert.are.equal("float", math.type(json.decode("1e2")))
      assert.are.equal("integer", math.type(json.decode("100")))
    end)
  else
    it("writes integral numbers within 2^53 as integers on 5.1/5.2/LuaJIT", function()
      assert.are.equal("1", json.encode(1.0))
      assert.are.equal("9007199254740992", json.encode(2 ^ 53))
      assert.are.equal("-9007199254740992", json.encode(-2 ^ 53))
      assert.are.equal(2 ^ 53, json.decode("9007199254740992"))
      assert.are.equal("-0", json.encode(-0.0))
    end)
  end

  it("writes floats in the shortest text that reads back exactly", function()
    assert.are.equal("0.1", json.encode(0.1))
    assert.are.equal("0.30000000000000004", json.encode(0.1 + 0.2))
    assert.are.equal("-273.15", json.encode(-273.15))
    assert.are.equal("1e-07", json.encode(1e-7))
    assert.are.equal("1e+300", json.encode(1e300))
    assert.are.equal("5e-324", json.encode(5e-324))
    for _, x in ipairs({ 1 / 3, 2 / 3, math.pi, 1e-310, 1.7976931348623157e308, 123456.789e-3 }) do
      assert.are.equal(x, json.decode(json.encode(x)))
    end
  end)

  it("round-trips negative zero", function()
    local z = json.decode(json.encode(-0.0))
    assert.are.equal(0, z)
    assert.are.equal(-math.huge, 1 / z)
    assert.are.equal(-math.huge, 1 / json.decode("-0.0"))
  end)

  it("rejects NaN and infinities with a clear error", function()
    assert.matches("cannot encode NaN at %.x", encode_err({ x = 0 / 0 }))
    assert.matches("cannot encode inf at %[1%]", encode_err({ math.huge }))
    assert.matches("cannot encode %-inf at the top level", encode_err(-math.huge))
  end)

  it("decodes integers beyond the exact range to the nearest float by default", function()
    local big = json.decode("123456789012345678901234567890")
    if ints then assert.are.equal("float", math.type(big)) end
    assert.are.equal(1.2345678901234568e29, big)
    local beyond = ints and "9223372036854775808" or "9007199254740993"
    assert.are.equal(tonumber(beyond .. ".0"), json.decode(beyond))
  end)

  it("decodes them to their text with big = 'string', or fails with big = 'error'", function()
    local beyond = ints and "9223372036854775809" or "9007199254740993"
    assert.are.equal(beyond, json.decode(beyond, { big = "string" }))
    assert.are.equal("-" .. beyond, json.decode("[-" .. beyond .. "]", { big = "string" })[1])
    assert.are.equal(42, json.decode("42", { big = "string" }))
    local err = decode_err("[1, " .. beyond .. "]", { big = "error" })
    assert.are.equal("integer out of range", err.message)
    assert.are.equal(5, err.offset)
  end)

  it("fails on numbers beyond the double range", function()
    local err = decode_err('{"x": 1e400}')
    assert.are.equal("number out of range", err.message)
    assert.are.equal(7, err.offset)
    decode_err("-1e400")
    assert.are.equal(0, json.decode("1e-400"))
  end)

  it("follows the RFC number grammar", function()
    for _, bad in ipairs({ "01", "-", "1.", ".5", "1e", "1e+", "+1", "0x10", "1.5.2", "Infinity", "NaN", "-0x" }) do
      local v = json.decode(bad)
      assert.is_nil(v, bad)
    end
    assert.are.equal("leading zero in number", decode_err("[01]").message)
  end)

  it("writes '.' as the decimal point whatever the C locale", function()
    local old = os.setlocale(nil, "numeric")
    local switched
    for _, name in ipairs({ "de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8" }) do
      switched = switched or os.setlocale(name, "numeric")
    end
    if not switched then
      pending("no locale with a ',' decimal point is installed")
      return
    end
    local enc, dec = json.encode({ 0.5, 1e-300 / 3 }), json.decode("[2.5, 1.7976931348623157e308]")
    os.setlocale(old, "numeric")
    assert.are.equal("[0.5,", enc:sub(1, 5))
    assert.are.equal(2.5, dec[1])
  end)
end)

describe("espipe.json strings", function()
  it("escapes quote, backslash and control characters, not '/'", function()
    assert.are.equal([["a\"b\\c/d"]], json.encode('a"b\\c/d'))
    assert.are.equal([["\b\f\n\r\t"]], json.encode("\b\f\n\r\t"))
    assert.are.equal([["\u0000\u0001\u001f"]], json.encode("\0\1\31"))
    assert.are.equal('"\127"', json.encode("\127"))
  end)

  it("passes valid UTF-8 through, astral characters included", function()
    local s = "Élodie Γειά 日本 🙂 𝄞"
    assert.are.equal('"' .. s .. '"', json.encode(s))
  end)

  it("rejects invalid UTF-8 naming the byte offset and the path", function()
    assert.matches("invalid UTF%-8 at byte 3 of string at %.msg", encode_err({ msg = "ab\255cd" }))
    assert.matches("invalid UTF%-8 at byte 1 of string at %[2%]", encode_err({ "ok", "\192\128" }))
    assert.matches("invalid UTF%-8 at byte 2 of key", encode_err({ ["k\237\160\128"] = 1 }))
    -- a surrogate encoded in UTF-8 (ED A0 80) and a truncated sequence
    assert.matches("invalid UTF%-8 at byte 1", encode_err("\237\160\128"))
    assert.matches("invalid UTF%-8 at byte 2", encode_err("a\226\130"))
  end)

  it("replaces invalid UTF-8 with U+FFFD on request", function()
    assert.are.equal('"a\239\191\189b"', json.encode("a\255b", { utf8 = "replace" }))
    -- one replacement per maximal invalid prefix
    assert.are.equal('"\239\191\189x"', json.encode("\226\130x", { utf8 = "replace" }))
    assert.are.equal("a\239\191\189b", json.decode('"a\255b"', { utf8 = "replace" }))
  end)

  it("decodes \\u escapes, surrogate pairs included", function()
    assert.are.equal("é中€", json.decode([["\u00e9\u4E2D\u20ac"]]))
    assert.are.equal("😀🍕", json.decode([["\ud83d\ude00\uD83C\uDF55"]]))
    assert.are.equal("\0", json.decode([["\u0000"]]))
    assert.are.equal("a/b", json.decode([["a\/b"]]))
  end)

  it("rejects lone surrogates, or replaces them on request", function()
    local err = decode_err([["ab\ud800"]])
    assert.are.equal("lone UTF-16 surrogate in \\u escape", err.message)
    assert.are.equal(4, err.offset)
    decode_err([["\udc00\ud800"]])
    decode_err([["\ud800\u0041"]])
    assert.are.equal("\239\191\189A", json.decode([["\ud800A"]], { utf8 = "replace" }))
    assert.are.equal("\239\191\189\239\191\189", json.decode([["\udfff\ud800"]], { utf8 = "replace" }))
  end)

  it("rejects invalid UTF-8, raw control characters and bad escapes in input", function()
    local err = decode_err('["ok", "x\255"]')
    assert.are.equal("invalid UTF-8 in string", err.message)
    assert.are.equal(10, err.offset)
    assert.are.equal(3, decode_err('"a\nb"').offset)
    assert.are.equal("invalid escape in string", decode_err([["\x41"]]).message)
    assert.are.equal("expected 4 hex digits after \\u", decode_err([["\u12G4"]]).message)
    assert.are.equal("unterminated string", decode_err('["abc').message)
    assert.are.equal(2, decode_err('["abc').offset)
  end)
end)

describe("espipe.json tables", function()
  it("writes a table with keys exactly 1..n as an array", function()
    assert.are.equal("[1,2,3]", json.encode({ 1, 2, 3 }))
    local t = {}
    t[3], t[2], t[1] = "c", "b", "a"
    assert.are.equal('["a","b","c"]', json.encode(t))
  end)

  it("writes mixed and sparse tables as objects with decimal keys", function()
    local mixed = json.decode(json.encode({ 1, 2, x = "y" }))
    assert.is_nil(h.diff({ ["1"] = 1, ["2"] = 2, x = "y" }, mixed))
    assert.are.equal('{"1":"a","3":"c"}', json.encode({ [1] = "a", [3] = "c" }) == '{"1":"a","3":"c"}'
      and '{"1":"a","3":"c"}' or json.encode({ [3] = "c", [1] = "a" }))
    assert.are.equal('{"-5":true}', json.encode({ [-5] = true }))
    assert.are.equal('{"1.5":true}', json.encode({ [1.5] = true }))
  end)

  it("rejects other key types naming the type and the path", function()
    assert.matches("cannot encode table key of type boolean at %.a", encode_err({ a = { [true] = 1 } }))
    assert.matches("cannot encode table key of type table at the top level", encode_err({ [{}] = 1 }))
  end)

  it("rejects functions, userdata and threads naming the type and the path", function()
    assert.matches("cannot encode function at %.a%.b%[3%]", encode_err({ a = { b = { 1, 2, print } } }))
    assert.matches("cannot encode userdata at %.f", encode_err({ f = io.stdout }))
    assert.matches("cannot encode thread at %[\"a key\"%]", encode_err({ ["a key"] = coroutine.create(function() end) }))
  end)

  it("rejects cycles, distinctly from depth", function()
    local t = { a = {} }
    t.a.b = t
    assert.matches("cycle detected at %.a%.b", encode_err(t))
    local arr = { 1 }
    arr[2] = arr
    assert.matches("cycle detected at %[2%]", encode_err(arr))
  end)

  it("rejects nesting deeper than the limit", function()
    local deep = {}
    local cur = deep
    for _ = 1, 20 do cur.x = {}; cur = cur.x end
    assert.matches("nesting deeper than 10 at", encode_err(deep, { depth = 10 }))
    assert.is_string(json.encode(deep, { depth = 21 }))
    assert.matches("nesting deeper than 20", encode_err(deep, { depth = 20 }))
    local very = {}
    cur = very
    for _ = 1, 1500 do cur[1] = {}; cur = cur[1] end
    assert.matches("nesting deeper than 1000", encode_err(very))
  end)

  it("uses raw access: no __index, __pairs or __tojson", function()
    local t = setmetatable({ a = 1 }, { __index = function() return "x" end,
      __pairs = function() error("not called") end })
    assert.are.equal('{"a":1}', json.encode(t))
  end)
end)

describe("espipe.json decode", function()
  it("keeps the last of duplicate keys", function()
    assert.are.equal(2, json.decode('{"a":1,"a":2}').a)
  end)

  it("accepts surrounding whitespace and rejects anything after the value", function()
    assert.are.equal(1, json.decode(" \t\r\n1\n "))
    local err = decode_err('{"a":1} x')
    assert.are.equal("expected end of input, found 'x'", err.message)
    assert.are.equal(9, err.offset)
    decode_err("[1] [2]")
    decode_err("")
    decode_err("   ")
  end)

  it("says what it expected and where (1-based byte offsets)", function()
    local err = decode_err('{"a":1 "b":2}')
    assert.are.equal("expected ',' or '}', found '\"'", err.message)
    assert.are.equal(8, err.offset)
    assert.are.equal("expected ',' or '}', found '\"' at byte 8", tostring(err))
    assert.are.equal("expected ',' or ']', found end of input", decode_err("[1,2").message)
    assert.are.equal(5, decode_err("[1,2").offset)
    assert.are.equal("expected a string key, found '1'", decode_err("{1:2}").message)
    assert.are.equal("expected ':', found '2'", decode_err('{"a" 2}').message)
    assert.are.equal("expected a value, found ']'", decode_err("[1,]").message)
    assert.are.equal("expected a string key, found '}'", decode_err('{"a":1,}').message)
    assert.are.equal("invalid literal, expected 'true'", decode_err("[tru]").message)
  end)

  it("stops at the depth limit without exhausting the C stack", function()
    local deep = string.rep("[", 100000) .. string.rep("]", 100000)
    local err = decode_err(deep)
    assert.are.equal("nesting deeper than 1000", err.message)
    assert.are.equal(1001, err.offset)
    assert.are.equal("nesting deeper than 5", decode_err('{"a":[[[[[1]]]]]}', { depth = 5 }).message)
    local ok = json.decode(string.rep("[", 1000) .. string.rep("]", 1000))
    assert.is_true(json.is_array(ok))
  end)

  it("raises on a wrong argument", function()
    assert.has_error(function() json.decode(42) end, nil)
    assert.matches("decode expects a string, got table", select(2, pcall(json.decode, {})))
    assert.matches("unknown option 'deep'", select(2, pcall(json.decode, "1", { deep = 3 })))
    assert.matches("option 'big' must be one of", select(2, pcall(json.decode, "1", { big = "int" })))
    assert.matches("option 'depth' must be an integer", select(2, pcall(json.encode, 1, { depth = 0 })))
    assert.matches("options must be a table", select(2, pcall(json.encode, 1, "x")))
  end)
end)

describe("espipe.json random values", function()
  -- A seeded LCG: the same values on every Lua.
  local state = 12345
  local function rand(n)
    state = (state * 1103515245 + 12345) % 2147483648
    return state % n
  end
  local pieces = { "a", "é", "🙂", "\n", '"', "\\", "/", "\0", "x y", "日" }
  local function rstring()
    local t = {}
    for i = 1, rand(6) do t[i] = pieces[rand(#pieces) + 1] end
    return table.concat(t)
  end
  local function rvalue(depth)
    local k = rand(depth > 3 and 6 or 8)
    if k == 0 then return json.null
    elseif k == 1 then return rand(2) == 0
    elseif k == 2 then return rand(2000000) - 1000000
    elseif k == 3 then return (rand(2000000) - 1000000) / (rand(999) + 1) + 0.5
    elseif k == 4 or k == 5 then return rstring()
    elseif k == 6 then
      local a = json.array()
      for i = 1, rand(5) do a[i] = rvalue(depth + 1) end
      return a
    else
      local o = {}
      for _ = 1, rand(5) do o[rstring() .. "k"] = rvalue(depth + 1) end
      return o
    end
  end

  it("decode(encode(v)) equals v for 500 generated values", function()
    for i = 1, 500 do
      local v = rvalue(0)
      local back = json.decode(json.encode(v))
      local d = h.diff(v, back)
      assert.is_nil(d, "value " .. i .. ": " .. tostring(d))
    end
  end)
end)
