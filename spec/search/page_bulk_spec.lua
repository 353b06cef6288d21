-- espipe.core.search_bulk_append: a raw search page's hits appended to a
-- bulk buffer in C, byte for byte what bulk:put writes for the decoded
-- hits, stopping when the batch is full, at a hit it leaves to Lua, or
-- (appending nothing) at a page that is not a search response.
local core = require "espipe.core"
local bulk = require "espipe.bulk"

local append = core.search_bulk_append

local function hit(id, source, extra)
  return '{"_index":"src","_id":' .. id .. ',"_score":null' .. (extra or "") .. ',"_source":' .. source
    .. ',"sort":[' .. #source .. ']}'
end

local function page(hits)
  return '{"pit_id":"P1","took":1,"hits":{"max_score":null,"hits":[' .. table.concat(hits, ",") .. ']}}'
end

-- What the per-hit path writes: the decoded hit through bulk:put.
local function expected(body, op, from, to)
  local b = bulk.new()
  local hits = core.search_response(body, true).hits.hits
  for i = from or 1, to or #hits do
    local h = hits[i]
    b:put(op or "index", { _index = "dst", _id = h._id, routing = h._routing }, h._source)
  end
  return b:body()
end

local HITS = {
  hit('"a1"', '{"x":1,"big":9223372036854775807,"f":1.0}'),
  hit('"a2"', '{ "s" : "caf\195\169 \\u00e9" , "e":[] }', ',"_routing":"r7"'),
  hit('"a3"', '{"o":{"p":[1,{}]}}', ',"fields":{"x":[1]}'),
}

describe("search_bulk_append", function()
  it("appends every hit as bulk:put would, and tells the page's position", function()
    local body, b = page(HITS), bulk.new()
    local at, pos, docs, stop = append(b, 1000, 1e9, body, nil, "dst", "index")
    assert.same({ nil, 3, "end" }, { at, docs, stop })
    assert.equal(expected(body), b:body())
    assert.equal(3, #b)
    assert.same({ hits = 3, pit_id = "P1", search_after = { #'{"o":{"p":[1,{}]}}' } },
      { hits = pos.hits, pit_id = pos.pit_id, search_after = { (table.unpack or unpack)(pos.search_after) } })
  end)

  it("writes create actions for op create", function()
    local body, b = page(HITS), bulk.new()
    append(b, 1000, 1e9, body, nil, "dst", "create")
    assert.equal(expected(body, "create"), b:body())
  end)

  it("stops when the batch is full and goes on from there", function()
    local body = page(HITS)
    local b1 = bulk.new()
    local at, pos, docs, stop = append(b1, 2, 1e9, body, nil, "dst")
    assert.same({ 2, "full", 3 }, { docs, stop, pos.hits })
    assert.equal(expected(body, "index", 1, 2), b1:body())
    local b2 = bulk.new()
    local at2, pos2, docs2, stop2 = append(b2, 2, 1e9, body, at, "dst")
    assert.same({ nil, false, 1, "end" }, { at2, pos2, docs2, stop2 })
    assert.equal(expected(body, "index", 3, 3), b2:body())
  end)

  it("counts bytes against max_bytes, and a batch full at the last hit ends the page", function()
    local body, b = page(HITS), bulk.new()
    local at, _, docs, stop = append(b, 1000, 1, body, nil, "dst")
    assert.same({ 1, "full" }, { docs, stop })
    local b2 = bulk.new()
    local _, _, docs2, stop2 = append(b2, 2, 1e9, body, at, "dst")
    assert.same({ 2, "end" }, { docs2, stop2 })
    local b3 = bulk.new()
    local at3, _, docs3, stop3 = append(b3, 3, 1e9, body, nil, "dst")
    assert.same({ nil, 3, "end" }, { at3, docs3, stop3 })
  end)

  it("leaves a hit it would write differently, and those after it, to Lua", function()
    for _, odd in ipairs {
      hit('"es\\"c"', '{"x":1}'),               -- an escaped _id
      hit('"caf\195\169"', '{"x":1}'),           -- a non-ASCII _id (the builder's encoder path)
      hit('7', '{"x":1}'),                       -- not a string
      hit('""', '{"x":1}'),                      -- empty: the builder refuses it
      hit('"ok"', '{"x":1}', ',"_routing":null'),
      hit('"ok"', '[1]'),                        -- not an object
      hit('"ok"', '{"x":\n1}'),                  -- not one line
      '{"_id":"nosource","sort":[1]}',
    } do
      local body, b = page { HITS[1], odd, HITS[3] }, bulk.new()
      local at, pos, docs, stop = append(b, 1000, 1e9, body, nil, "dst")
      assert.same({ 1, "hit", 3 }, { docs, stop, pos.hits }, odd)
      assert.equal(body:find(odd, 1, true), at, odd)
      assert.equal(expected(body, "index", 1, 1), b:body())
    end
  end)

  it("appends nothing of a page that is not a search response", function()
    local b = bulk.new()
    b:put("index", { _id = "before" }, "{}")
    local before = b:body()
    for _, bad in ipairs {
      '{"hits":{"hits":[' .. HITS[1] .. ',' .. HITS[2] .. ',{"_id":"x","_source":{"a":}}]}}',
      '{"hits":{"hits":[' .. HITS[1] .. ']}} trailing',
      '{"took":1}',
      '{"hits":{"hits":[' .. HITS[1] .. ',3]}}',
    } do
      local at, msg, docs, stop = append(b, 1000, 1e9, bad, nil, "dst")
      assert.same({ nil, 0, "bad" }, { at, docs, stop }, bad)
      assert.is_string(msg)
      assert.equal(before, b:body())
      assert.equal(1, #b)
    end
  end)

  it("reads a page that has no hits", function()
    local b = bulk.new()
    local at, pos, docs, stop = append(b, 1000, 1e9, page {}, nil, "dst")
    assert.same({ nil, 0, "end", 0 }, { at, docs, stop, pos.hits })
    assert.equal("", b:body())
  end)

  it("refuses wrong arguments", function()
    local b = bulk.new()
    assert.has_error(function() append(b, 0, 1, page(HITS), nil, "dst") end,
      "search_bulk_append: max_docs and max_bytes must be positive")
    assert.has_error(function() append(b, 1, 1, page(HITS), 1e6, "dst") end,
      "search_bulk_append: at 1000000 is outside the page")
    assert.has_error(function() append(b, 1, 1, page(HITS), nil, "dst", "update") end,
      "search_bulk_append: op must be index or create")
  end)
end)
