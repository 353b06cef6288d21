-- espipe.bulk sort_by_shard: a buffer's items reordered in place by
-- destination shard (a counting sort in C). The expected shard of each item
-- comes from espipe.routing (checked against Elasticsearch's values in
-- spec/core/routing_spec.lua).
local bulk = require "espipe.bulk"
local routing = require "espipe.routing"

local function filled(n, prefix)
  local b = bulk.new()
  for i = 1, n do b:index({ _id = (prefix or "doc-") .. i }, { n = i }) end
  return b
end

-- { { action =, source = }, ... } as the buffer holds them
local function items_of(b)
  local t = {}
  for i = 1, #b do
    local a, s = b:item(i)
    t[i] = { action = a, source = s }
  end
  return t
end

local function shard_of(action, shards)
  local id = action:match('"_id":"([^"]*)"')
  local rv = action:match('"routing":"([^"]*)"')
  if not id and not rv then return nil end
  return routing.shard { id = id, routing = rv, shards = shards }
end

-- Runs f, which must raise matching pattern, and checks b did not change.
local function rejects(b, pattern, f)
  local body, count = b:body(), #b
  local ok, err = pcall(f)
  assert.is_false(ok, "expected an error matching " .. pattern)
  assert.matches(pattern, tostring(err))
  assert.are.equal(body, b:body())
  assert.are.equal(count, #b)
end

describe("bulk sort_by_shard", function()
  it("groups the items by shard, each shard one run, ascending from the rotation", function()
    for rotation = 0, 6 do
      local b = filled(500)
      assert.are.equal(5, b:sort_by_shard({ shards = 5 }, rotation))
      local runs = {}
      for _, it in ipairs(items_of(b)) do
        local s = shard_of(it.action, 5)
        if runs[#runs] ~= s then runs[#runs + 1] = s end
      end
      assert.are.same({ rotation % 5, (rotation + 1) % 5, (rotation + 2) % 5, (rotation + 3) % 5,
                        (rotation + 4) % 5 }, runs)
    end
  end)

  it("moves every item once with its exact bytes, stable within a shard", function()
    local b = filled(300)
    local before = items_of(b)
    local by_action = {}
    for i, it in ipairs(before) do by_action[it.action] = { source = it.source, pos = i } end
    b:sort_by_shard({ shards = 3 }, 1)
    local after, seen, last, body = items_of(b), {}, {}, {}
    assert.are.equal(300, #after)
    for i, it in ipairs(after) do
      local was = assert(by_action[it.action], "an item the buffer did not hold")
      assert.is_nil(seen[it.action])
      seen[it.action] = true
      assert.are.equal(was.source, it.source)
      local s = shard_of(it.action, 3)
      if last[s] then assert.is_true(was.pos > last[s]) end
      last[s] = was.pos
      local off, len = b:span(i)
      assert.are.equal(#table.concat(body), off)
      body[#body + 1] = it.action .. "\n" .. it.source .. "\n"
      assert.are.equal(#body[#body], len)
    end
    assert.are.equal(table.concat(body), b:body())
  end)

  it("routes by routing, decodes escaped ids, skips nested keys and leaves unrouted items last", function()
    local b = bulk.new()
    b:raw('{"index":{}}', '{"n":1}')
    b:index({ _id = "a", routing = "user-7" }, { n = 2 })
    b:raw('{"index":{"_index":"x", "dynamic_templates":{"_id":"decoy,}"}, "_id" : "q\\u00e9"}}', '{"n":3}')
    b:index({ _id = 42 }, { n = 4 })
    b:delete({ _id = "gone" })
    b:raw('{"create":{"routing":null}}', '{"n":6}')
    local want = {
      [2] = routing.shard { id = "a", routing = "user-7", shards = 4 },
      [3] = routing.shard { id = "qé", shards = 4 },
      [4] = routing.shard { id = "42", shards = 4 },
      [5] = routing.shard { id = "gone", shards = 4 },
    }
    local _, order = b:sort_by_shard({ shards = 4 }, 0, true)
    assert.are.same({ 1, 6 }, { order[5], order[6] })    -- no _id, no routing: last, in order
    local prev = -1
    for k = 1, 4 do
      local s = want[order[k]]
      assert.is_true(s >= prev, "shards ascending")
      prev = s
    end
    local a = b:item(#b)
    assert.are.equal('{"create":{"routing":null}}', a)
  end)

  it("takes the shards as a list and returns the former positions", function()
    local b = filled(6)
    local n, order = b:sort_by_shard({ 2, 0, nil, 2, 0, 1 }, 1, true)
    assert.are.equal(3, n)
    assert.are.same({ 6, 1, 4, 2, 5, 3 }, order)
    local ns = {}
    for i = 1, #b do ns[i] = tonumber(select(2, b:item(i)):match("%d+")) end
    assert.are.same(order, ns)
  end)

  it("needs both values on a partitioned index, else the item is unrouted", function()
    local b = bulk.new()
    b:index({ _id = "x" }, { n = 1 })
    b:index({ _id = "y", routing = "r" }, { n = 2 })
    local _, order = b:sort_by_shard({ shards = 4, partition_size = 2 }, 0, true)
    assert.are.same({ 2, 1 }, order)
  end)

  it("raises and leaves the buffer as it was on a bad id, list entry or argument", function()
    local b = filled(10)
    b:raw('{"index":{"_id":"bad\255"}}', '{"n":11}')
    rejects(b, "item 11: the _id is not valid UTF%-8", function() b:sort_by_shard({ shards = 3 }, 0) end)
    local c = filled(4)
    rejects(c, "shards%[3%] must be an integer from 0", function() c:sort_by_shard({ 1, 0, -1, 2 }, 0) end)
    rejects(c, "shards%[2%] must be an integer from 0", function() c:sort_by_shard({ 1, "0" }, 0) end)
    rejects(c, "rotation must be an integer", function() c:sort_by_shard({ shards = 2 }, 0.5) end)
    rejects(c, "shards must be an integer", function() c:sort_by_shard({ shards = false }, 0) end)
  end)

  it("leaves a buffer of one shard or none as it is", function()
    local b = bulk.new()
    assert.are.equal(0, b:sort_by_shard({ shards = 3 }, 2))
    b:index({ _id = "only" }, { n = 1 })
    local body = b:body()
    assert.are.equal(1, b:sort_by_shard({ shards = 3 }, 2))
    assert.are.equal(body, b:body())
  end)
end)
