-- espipe.core.search_response: a search page read in one pass, with each
-- hit's _source kept as the exact bytes the server sent (raw_source) and
-- sort values exact; everything else as espipe.json decodes it.
local core = require "espipe.core"
local json = require "espipe.json"
local h = require "json.helpers"

local search_response = core.search_response

local function lcg(seed)
  local state = seed
  return function(n)
    state = (state * 1103515245 + 12345) % 2147483648
    return state % n
  end
end

-- Random JSON text with random (legal) whitespace, built as text so the
-- spans under test are not the encoder's output.
local spaces = { "", "", "", " ", "\n", "\t", "\r\n  " }
local strings = { '""', '"a"', '"\\/"', '"\\u00e9\\ud83d\\ude00"', '"tab\\there"', '"\\"q\\""',
  '"caf\195\169"', '"\\\\"', '"}]{["', '"a,b:c"' }
local numbers = { "0", "-0", "1", "1.0", "-1.5e3", "9007199254740993", "123456789012345678901",
  "1E+2", "0.000001", "-9223372036854775808" }

local function gen(rand, depth)
  local function sp() return spaces[rand(#spaces) + 1] end
  local k = rand(depth > 3 and 6 or 8)
  if k == 0 then return strings[rand(#strings) + 1] end
  if k == 1 then return numbers[rand(#numbers) + 1] end
  if k == 2 then return ({ "true", "false", "null" })[rand(3) + 1] end
  if k == 3 or k == 4 then
    local parts = {}
    for i = 1, rand(4) do parts[i] = sp() .. gen(rand, depth + 1) .. sp() end
    return "[" .. sp() .. table.concat(parts, ",") .. "]"
  end
  local parts = {}
  for i = 1, rand(5) do
    parts[i] = sp() .. strings[rand(#strings) + 1] .. sp() .. ":" .. sp() .. gen(rand, depth + 1) .. sp()
  end
  return "{" .. sp() .. table.concat(parts, ",") .. "}"
end

local function page(sources, extra)
  local hits = {}
  for i, s in ipairs(sources) do
    hits[i] = '{"_index":"logs","_id":"' .. i .. '","_score":null,"_source":' .. s ..
      ',"sort":[' .. i .. ']}'
  end
  return '{"took":3,"timed_out":false,' .. (extra or "") ..
    '"hits":{"total":{"value":' .. #sources .. ',"relation":"eq"},"max_score":null,"hits":[' ..
    table.concat(hits, ",") .. ']}}'
end

describe("espipe.core.search_response", function()
  it("keeps each _source as the exact bytes of its value with raw_source", function()
    local sources = { '{}', '[]', '{"a":1.0,"b":1}', ' { "x" : [ 1 , {} , [] ] } ',
      '{"big":18446744073709551616,"s":"\\/\\u00e9"}', 'null', '"just a string"', '12' }
    local v = assert(search_response(page(sources), true))
    assert.are.equal(#sources, #v.hits.hits)
    for i, s in ipairs(sources) do
      local want = s:match("^%s*(.-)%s*$")
      assert.are.equal(want, v.hits.hits[i]._source)
      assert.are.equal(tostring(i), v.hits.hits[i]._id)
      assert.are.equal("logs", v.hits.hits[i]._index)
    end
  end)

  it("decodes everything but _source as espipe.json does", function()
    local text = page({ '{"n":1,"f":2.5,"a":[],"o":{}}' })
    local raw = assert(search_response(text, true))
    local decoded = assert(search_response(text))
    local reference = assert(json.decode(text))
    assert.is_nil(h.diff(reference, decoded))
    reference.hits.hits[1]._source = '{"n":1,"f":2.5,"a":[],"o":{}}'
    assert.is_nil(h.diff(reference, raw))
    assert.is_true(json.is_array(raw.hits.hits))
    assert.are.equal(json.null, raw.hits.max_score)
    assert.are.equal(1, raw.hits.total.value)
    assert.are.equal("eq", raw.hits.total.relation)
    assert.is_false(raw.timed_out)
  end)

  it("finds pit_id, _scroll_id and hits.total wherever they are", function()
    local v = assert(search_response(
      '{"_scroll_id":"c2Nyb2xs","pit_id":"cGl0","hits":{"hits":[],"total":7}}', true))
    assert.are.equal("c2Nyb2xs", v._scroll_id)
    assert.are.equal("cGl0", v.pit_id)
    assert.are.equal(7, v.hits.total)
    assert.are.equal(0, #v.hits.hits)
    assert.is_true(json.is_array(v.hits.hits))
  end)

  it("keeps integer sort values exact, as text when a number cannot hold them", function()
    local v = assert(search_response('{"hits":{"hits":[{"_id":"a","sort":' ..
      '[9007199254740993,18446744073709551615,42,1.5,"k",null]}]}}'))
    local sort = v.hits.hits[1].sort
    if h.has_integers then
      assert.are.equal(9007199254740993, sort[1])
      assert.are.equal("integer", math.type(sort[1]))
    else
      assert.are.equal("9007199254740993", sort[1])
    end
    assert.are.equal("18446744073709551615", sort[2])
    assert.are.equal(42, sort[3])
    assert.are.equal(1.5, sort[4])
    assert.are.equal("k", sort[5])
    assert.are.equal(json.null, sort[6])
    assert.is_true(json.is_array(sort))
    -- search_after sends them back as they came
    assert.matches("%[9007199254740993,", (json.encode(sort):gsub('"', "")))
  end)

  it("treats _source and sort specially only inside hits.hits", function()
    local text = '{"_source":{"a":1},"sort":[18446744073709551615],"hits":{"_source":[1],' ..
      '"hits":[{"_source":{"x":2},"inner":{"_source":{"y":3}}}]}}'
    local v = assert(search_response(text, true))
    assert.are.equal(1, v._source.a)
    assert.are.equal("number", type(v.sort[1]))
    assert.are.equal(1, v.hits._source[1])
    assert.are.equal('{"x":2}', v.hits.hits[1]._source)
    assert.are.equal(3, v.hits.hits[1].inner._source.y)
  end)

  it("reads generated sources exactly, and they decode as the decoded page has them", function()
    local rand = lcg(5)
    for _ = 1, 200 do
      local sources = {}
      for i = 1, rand(5) + 1 do sources[i] = gen(rand, 0) end
      local text = page(sources)
      local raw = assert(search_response(text, true))
      local decoded = assert(search_response(text))
      for i, s in ipairs(sources) do
        assert.are.equal(s, raw.hits.hits[i]._source)
        local value, err = json.decode(s)
        assert.is_nil(err)
        assert.is_nil(h.diff(decoded.hits.hits[i]._source, value))
      end
    end
  end)

  it("rejects invalid JSON inside a raw _source with the message and byte of the decoder", function()
    local bad = { '{"a":01}', '{"a":"\\x"}', '{"a":1,}', '{"a" 1}', '[1 2]', '{"a":"\1"}',
      '{"a":"\255"}', '{"a":tru}', '{"a":-}', '{"a":1.}', '{"a":1e}', '{"a":"\\ud800"}', '{"a":' }
    for _, s in ipairs(bad) do
      local text = page({ s })
      local v, msg, offset = search_response(text, true)
      assert.is_nil(v)
      local _, want_msg, want_offset = core.json_decode(text)
      assert.are.equal(want_msg, msg)
      assert.are.equal(want_offset, offset)
    end
  end)

  it("rejects what is not a search response object, and trailing bytes", function()
    local v, msg, offset = search_response("[1]", true)
    assert.is_nil(v)
    assert.matches("expected '{'", msg)
    assert.are.equal(1, offset)
    v, msg, offset = search_response('{"hits":{"hits":[]}} x')
    assert.is_nil(v)
    assert.matches("end of input", msg)
    assert.are.equal(22, offset)
    v, msg = search_response("")
    assert.is_nil(v)
    assert.matches("found end of input", msg)
  end)

  it("stops at the depth limit inside a raw _source", function()
    local deep = string.rep("[", 2000) .. string.rep("]", 2000)
    local v, msg = search_response(page({ deep }), true)
    assert.is_nil(v)
    assert.matches("nesting deeper than", msg)
  end)

  it("raises on wrong arguments", function()
    assert.has_error(function() search_response(nil) end, "search_response: body must be a string, got nil")
    assert.has_error(function() search_response("{}", "yes") end,
      "search_response: raw_source must be a boolean, got string")
  end)
end)
