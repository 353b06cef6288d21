-- espipe.bulk sort_by_shard and distribute: a buffer's items reordered in place by
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

-- b:distribute: the shard-aware indexer's move of staged items into the
-- batch of the node holding each one's primary.
describe("bulk distribute", function()
  local P = { shards = 4 }
  local HOSTS = { [0] = 1, [1] = 2, [2] = 1 } -- shard 3 has no node: any node

  local function dests()
    return { [0] = bulk.new(), [1] = bulk.new(), [2] = bulk.new() }
  end

  -- the host an action line belongs to, by espipe.routing
  local function host_of(action, default_routing)
    local id = action:match('"_id":"([^"]*)"')
    local rv = action:match('"routing":"([^"]*)"') or default_routing
    if not id and not rv then return 0 end
    return HOSTS[routing.shard { id = id, routing = rv, shards = 4 }] or 0
  end

  it("moves every item, in order and byte for byte, to its node's batch; the rest to bufs[0]", function()
    local b = bulk.new()
    for i = 1, 60 do
      if i % 7 == 0 then b:index({}, { n = i }) -- no _id: cannot be placed
      elseif i % 5 == 0 then b:delete { _id = "x" .. i, routing = "r" .. i }
      else b:index({ _id = "doc-" .. i }, { n = i }) end
    end
    local before, body = items_of(b), b:body()
    local bufs = dests()
    assert.is_nil(b:distribute(P, HOSTS, bufs, 1, 1000, 1e9))
    assert.are.equal(body, b:body())
    local want = { [0] = {}, [1] = {}, [2] = {} }
    for _, it in ipairs(before) do table.insert(want[host_of(it.action)], it) end
    assert.is_true(#want[0] > 0 and #want[1] > 0 and #want[2] > 0)
    for h = 0, 2 do assert.are.same(want[h], items_of(bufs[h]), "host " .. h) end
  end)

  it("stops after the item that fills a batch and resumes from the position it returns", function()
    local b = filled(40)
    local bufs = dests()
    local host, nxt = b:distribute(P, HOSTS, bufs, 1, 5, 1e9)
    assert.is_number(host)
    assert.are.equal(5, #bufs[host])
    assert.are.equal(host, host_of((b:item(nxt - 1))))
    assert.are.equal(nxt - 1, #bufs[0] + #bufs[1] + #bufs[2])
    local shipped = 5
    bufs[host] = bulk.new()
    local rounds = 0
    while true do
      host, nxt = b:distribute(P, HOSTS, bufs, nxt, 5, 1e9)
      if host == nil then break end
      assert.are.equal(5, #bufs[host])
      shipped = shipped + 5
      bufs[host] = bulk.new()
      rounds = rounds + 1
    end
    assert.is_true(rounds > 0)
    assert.are.equal(40, shipped + #bufs[0] + #bufs[1] + #bufs[2])
  end)

  it("fills by bytes too", function()
    local b = filled(10)
    local bufs = dests()
    local one = #select(1, b:item(1)) + #select(2, b:item(1)) + 2
    local host, nxt = b:distribute(P, HOSTS, bufs, 1, 1000, 1)
    assert.are.equal(2, nxt)
    assert.are.equal(host_of((b:item(1))), host)
    assert.are.equal(one, bufs[host]:bytes())
  end)

  it("routes an action without a routing value by the request's default one", function()
    local b = filled(30)
    local bufs = dests()
    assert.is_nil(b:distribute(P, HOSTS, bufs, 1, 1000, 1e9, "user-7"))
    local h = host_of('{"index":{}}', "user-7")
    assert.are.equal(30, #bufs[h])
  end)

  it("sends an action naming another index to bufs[0], one naming this index where its shard is", function()
    local b = bulk.new()
    b:index({ _id = "doc-1", _index = "other" }, { n = 1 })
    b:index({ _id = "doc-1", _index = "mine" }, { n = 2 })
    local bufs = dests()
    assert.is_nil(b:distribute(P, HOSTS, bufs, 1, 1000, 1e9, nil, "mine"))
    local h = host_of((b:item(2)))
    assert.are_not.equal(0, h)
    assert.are.same({ items_of(b)[1] }, items_of(bufs[0]))
    assert.are.same({ items_of(b)[2] }, items_of(bufs[h]))
  end)

  it("raises on a bad argument, with every batch as it was", function()
    local b = filled(8)
    local bufs = dests()
    for _, case in ipairs {
      { "bufs%[2%] must be a bulk buffer", function() b:distribute(P, HOSTS, { [0] = bufs[0], [1] = bufs[1] }, 1, 9, 1e9) end },
      { "hosts%[1%] must be a positive integer", function() b:distribute(P, { [1] = "x" }, bufs, 1, 9, 1e9) end },
      { "from must be an integer from 1 to 9", function() b:distribute(P, HOSTS, bufs, 10, 9, 1e9) end },
      { "its own items", function() b:distribute(P, HOSTS, { [0] = b, [1] = bufs[1], [2] = bufs[2] }, 1, 9, 1e9) end },
      { "shards is required", function() b:distribute({}, HOSTS, bufs, 1, 9, 1e9) end },
    } do
      rejects(b, case[1], case[2])
      for h = 0, 2 do assert.are.equal(0, #bufs[h]) end
    end
    assert.is_nil(b:distribute(P, HOSTS, bufs, 9, 9, 1e9)) -- past the last item: nothing to move
  end)
end)
