-- espipe.server.json: the dev server's JSON codec. Pure Lua, so it runs on
-- every Lua; the server itself uses it on LuaJIT.
local json = require("espipe.server.json")

-- objects encode in pairs() order: compare through a canonical re-encoding
-- with sorted keys written here, independent of the code under test
local function canonical(v)
  local t = type(v)
  if t == "table" and v ~= json.null then
    local keys, is_seq = {}, true
    for k in pairs(v) do keys[#keys + 1] = k; if type(k) ~= "number" then is_seq = false end end
    if is_seq and (#keys > 0 or getmetatable(v) == json.array_mt) then
      local out = {}
      for i = 1, #v do out[i] = canonical(v[i]) end
      return "[" .. table.concat(out, ",") .. "]"
    end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    local out = {}
    for i, k in ipairs(keys) do out[i] = tostring(k) .. "=" .. canonical(v[k]) end
    return "{" .. table.concat(out, ",") .. "}"
  elseif v == json.null then
    return "null"
  end
  return tostring(v)
end

describe("server json encode", function()
  it("writes integers below 2^53 without exponent or fraction", function()
    assert.equal("0", json.encode(0))
    assert.equal("-5", json.encode(-5))
    assert.equal("1700000000000", json.encode(1700000000000))
    assert.equal("9007199254740991", json.encode(2 ^ 53 - 1))
    assert.equal("-9007199254740991", json.encode(-(2 ^ 53 - 1)))
    assert.equal("[3]", json.encode({ 3.0 }))
  end)

  it("writes other numbers in a form that reads back exactly", function()
    assert.equal("0.1", json.encode(0.1))
    assert.equal("0.3333333333333333", json.encode(1 / 3))
    assert.equal("1.5", json.encode(1.5))
    assert.equal("1e+300", json.encode(1e300))
    for _, x in ipairs({ 0.1 + 0.2, 2 ^ 53 + 2, 1 / 3, math.pi, 123.456e-200, -2.5e-7, 5e-324 }) do
      assert.equal(x, tonumber(json.encode(x)))
    end
    assert.equal("0.30000000000000004", json.encode(0.1 + 0.2))
  end)

  it("writes NaN and infinities as null (JSON has no such numbers)", function()
    assert.equal("[null,null,null]", json.encode({ 0 / 0, math.huge, -math.huge }))
  end)

  it("escapes per RFC 8259 and leaves '/' and non-ASCII bytes alone", function()
    assert.equal([["a/b"]], json.encode("a/b"))
    assert.equal([["q\"b\\n\nt\tc\u0001z\u0000e\u001f"]], json.encode('q"b\\n\nt\tc\1z\0e\31'))
    assert.equal('"Γειά 🙂"', json.encode("Γειά 🙂"))
    -- user data with invalid UTF-8 passes through byte for byte
    assert.equal('"\255\254x"', json.encode("\255\254x"))
  end)

  it("encodes dense sequences as arrays and other tables as objects", function()
    assert.equal("[1,2,3]", json.encode({ 1, 2, 3 }))
    assert.equal("{}", json.encode({}))
    assert.equal(canonical({ ["1"] = "a", ["3"] = "c" }),
      canonical(json.decode(json.encode({ [1] = "a", [3] = "c" }))))
    assert.equal('{"3":"c"}', json.encode({ [3] = "c" }))
    local s = json.encode({ a = 1, b = { c = true, d = false } })
    assert.is_true(s == '{"a":1,"b":{"c":true,"d":false}}' or s == '{"b":{"c":true,"d":false},"a":1}'
      or s == '{"a":1,"b":{"d":false,"c":true}}' or s == '{"b":{"d":false,"c":true},"a":1}', s)
  end)

  it("keeps marked empty arrays as [] and marked objects as {}", function()
    assert.equal("[]", json.encode(json.array()))
    assert.equal('{"hits":[]}', json.encode({ hits = json.array({}) }))
    assert.equal("{}", json.encode(json.object({})))
    assert.equal('{"1":"x"}', json.encode(json.object({ "x" })))
  end)

  it("writes json.null as null and json.null is cjson.null", function()
    assert.equal("[1,null,2]", json.encode({ 1, json.null, 2 }))
    local ok, cjson = pcall(require, "cjson")
    if ok then assert.equal(cjson.null, json.null) end
  end)

  it("splices raw fragments verbatim", function()
    local src = '{"big":12345678901234567890,"f":1.0}'
    assert.equal('{"_source":' .. src .. '}', json.encode({ _source = json.raw(src) }))
    assert.is_true(json.is_raw(json.raw("1")))
    assert.is_false(json.is_raw({}))
  end)

  it("raises on values JSON cannot hold", function()
    assert.has_error(function() json.encode({ f = print }) end, "json.encode: cannot encode a function")
    local cyc = {}; cyc.self = cyc
    assert.has_error(function() json.encode(cyc) end)
    assert.has_error(function() json.encode({ [true] = 1 }) end,
      "json.encode: cannot encode a boolean as an object key")
    assert.has_error(function() json.raw(1) end, "json.raw expects a string, got number")
  end)
end)

describe("server json decode", function()
  it("decodes scalars, nesting, escapes and surrogate pairs", function()
    local v = json.decode('{"a":[1,-2.5,1e3,true,false,null],"s":"x\\/y\\n\\u00e9\\ud83d\\ude42"}')
    assert.equal(1, v.a[1]); assert.equal(-2.5, v.a[2]); assert.equal(1000, v.a[3])
    assert.equal(true, v.a[4]); assert.equal(false, v.a[5]); assert.equal(json.null, v.a[6])
    assert.equal("x/y\né🙂", v.s)
  end)

  it("keeps [] distinct from {} through a round trip", function()
    local text = '{"a":[],"b":{},"c":[[],{}],"d":[1]}'
    local v = assert(json.decode(text))
    assert.equal("[]", json.encode(v.a))
    assert.equal("{}", json.encode(v.b))
    assert.equal("[[],{}]", json.encode(v.c))
    assert.equal("[1]", json.encode(v.d))
    assert.equal(canonical(json.decode(text)), canonical(json.decode(json.encode(v))))
  end)

  it("round-trips documents with integers up to 2^53 and floats", function()
    local text = '{"id":9007199254740991,"neg":-9007199254740991,"f":0.1,"e":1.5e-10,"n":[0,1,2]}'
    local v = assert(json.decode(text))
    assert.equal(9007199254740991, v.id)
    local again = assert(json.decode(json.encode(v)))
    assert.equal(canonical(v), canonical(again))
    assert.equal('9007199254740991', json.encode(again.id))
  end)

  it("passes invalid UTF-8 bytes through", function()
    assert.equal("\255x", json.decode('"\255x"'))
  end)

  it("returns nil and a message naming the byte offset for bad input", function()
    local cases = {
      { "[1,2", "byte 4" }, { '{"a" 1}', "expected ':' at byte 5" }, { "[1,]", "byte 3" },
      { "nan", "byte 0" }, { "[0x10]", "byte" }, { "[01]", "invalid number '01' at byte 1" },
{ '"abc', "unterminated string at byte 0" },
      { '"a\\qb"', "invalid escape" }, { "[1] x", "unexpected data after the JSON value at byte 4" },
      { "", "unexpected end of input at byte 0" },
      { "[Infinity]", "byte 1" },
    }
    for _, c in ipairs(cases) do
      local v, err = json.decode(c[1])
      assert.is_nil(v, c[1])
      assert.is_string(err, c[1])
      assert.is_truthy(err:find(c[2], 1, true), c[1] .. " -> " .. err)
    end
  end)

  it("rejects number forms JSON forbids in the strict decoder", function()
    -- (the cjson fast path on LuaJIT/5.1/5.2 tolerates "1." and raw control
    -- characters in strings - harmless for a dev server)
    local v, err = json.decode_marked('"a\nb"')
    assert.is_nil(v)
    assert.equal("control character in string at byte 2", err)
    for _, bad in ipairs({ "[1.]", "[1.e5]", "[1e]", "[-]", "[.5]", "[+1]" }) do
      local bv, berr = json.decode_marked(bad)
      assert.is_nil(bv, bad)
      assert.is_truthy(berr:find("byte 1", 1, true), bad .. " -> " .. tostring(berr))
    end
  end)

  it("limits nesting depth instead of overflowing the C stack", function()
    local v, err = json.decode(string.rep("[", 5000) .. string.rep("]", 5000))
    assert.is_nil(v)
    assert.is_truthy(err:find("nesting", 1, true))
  end)

  it("marks every array when asked for the marked decoder", function()
    local v = assert(json.decode_marked('{"a":[1,2],"o":{"1":2}}'))
    assert.is_true(json.is_array(v.a))
    assert.is_false(json.is_array(v.o))
    assert.equal('{"1":2}', json.encode(v.o))
  end)

  it("raises for a non-string argument", function()
    assert.has_error(function() json.decode(nil) end, "json.decode expects a string, got nil")
  end)
end)
