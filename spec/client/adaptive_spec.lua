-- The adaptive controller on scripted server timelines: a fake clock and
-- synthetic responses, so nothing depends on machine speed.
local adaptive = require("espipe.client.adaptive")

local MB = 1024 * 1024
local DOC = 500 -- bytes per synthetic document

local function fake_clock()
  local c = { t = 1000 }
  function c.now() return c.t end
  return c
end

-- Drives ctl for n responses against server(c, b) -> { rtt =, rejected =,
-- status =, docs_per_s = } (docs_per_s: the server's throughput at this
-- setting; the clock advances by the time the docs of one response take).
-- Returns the concurrency and batch size after each response.
local function drive(ctl, clock, server, n)
  local cs, bs = {}, {}
  for i = 1, n do
    local c, b = ctl:concurrency(), ctl:batch_bytes()
    local r = server(c, b)
    local docs = math.floor(b / DOC)
    clock.t = clock.t + (r.docs_per_s and docs / r.docs_per_s or r.rtt / c)
    ctl:on_response { rtt = r.rtt, docs = docs, bytes = b, rejected_items = r.rejected or 0,
                      status = r.status or 200 }
    cs[i], bs[i] = ctl:concurrency(), ctl:batch_bytes()
  end
  return cs, bs
end

local function steady(_, b)
  return { rtt = 0.01 + b / (50 * MB) }
end

-- A cluster that saturates at `sweet` requests in flight: past it each
-- extra request waits a full service time, past `limit` items are rejected.
local function saturating(sweet, limit)
  return function(c, b)
    local service = 0.01 + b / (50 * MB)
    local waiting = math.max(0, c - sweet)
    return { rtt = service * (1 + waiting), rejected = c > limit and math.floor(b / DOC / 10) or 0 }
  end
end

local function all_within(list, lo, hi)
  for i, v in ipairs(list) do
    if v < lo or v > hi then return false, "value " .. v .. " at response " .. i end
  end
  return true
end

describe("espipe.client.adaptive concurrency", function()
  it("grows by one slot per round while the RTT stays at its floor, up to max_concurrency", function()
    local clock = fake_clock()
    local ctl = adaptive.new { max_concurrency = 8, batch_bytes = 2 * MB, now = clock.now }
    assert.equal(2, ctl:concurrency())
    local cs = drive(ctl, clock, steady, 200)
    for i = 2, #cs do assert.is_true(cs[i] >= cs[i - 1], "never decreases on a steady server") end
    assert.is_true(all_within(cs, 1, 8))
    assert.equal(8, cs[#cs])
    -- additive: one step at a time, never a jump
    for i = 2, #cs do assert.is_true(cs[i] - cs[i - 1] <= 1) end
    assert.equal("rtt near floor", ctl:state().concurrency_reason)
  end)

  it("halves on rejected items, once per round of responses in flight, never below 1", function()
    local clock = fake_clock()
    local ctl = adaptive.new { concurrency = "auto", max_concurrency = 16, batch_bytes = 2 * MB, now = clock.now }
    drive(ctl, clock, steady, 300)
    assert.equal(16, ctl:concurrency())
    local overloaded = function(_, b) return { rtt = 0.05, rejected = math.floor(b / DOC) } end
    local cs = drive(ctl, clock, overloaded, 1)
    assert.equal(8, cs[1])
    assert.equal("cut: rejected items", ctl:state().concurrency_reason)
    -- the other 7 responses of that round carry the same news: no further cut
    cs = drive(ctl, clock, overloaded, 7)
    assert.same({ 8, 8, 8, 8, 8, 8, 8 }, cs)
    cs = drive(ctl, clock, overloaded, 200)
    assert.is_true(all_within(cs, 1, 8))
    assert.equal(1, cs[#cs])
  end)

  it("cuts on 429 and 503 responses", function()
    for _, status in ipairs { 429, 503 } do
      local clock = fake_clock()
      local ctl = adaptive.new { max_concurrency = 8, batch_bytes = 2 * MB, now = clock.now }
      drive(ctl, clock, steady, 200)
      drive(ctl, clock, function() return { rtt = 0.01, status = status } end, 1)
      assert.equal(4, ctl:concurrency())
      assert.equal("cut: status " .. status, ctl:state().concurrency_reason)
    end
  end)

  it("settles near the sweet spot on a queueing server, before rejections start", function()
    local clock = fake_clock()
    local ctl = adaptive.new { max_concurrency = 32, batch_bytes = 4 * MB, now = clock.now }
    local cs = drive(ctl, clock, saturating(4, 12), 600)
    local tail = { table.unpack and table.unpack(cs, 300) or unpack(cs, 300) }
    assert.is_true(all_within(tail, 2, 8))
    assert.equal(0, ctl:state().rejected_items)
    assert.is_true(cs[#cs] < 32)
  end)

  it("backs off on an RTT jump and grows again when the RTT recovers", function()
    local clock = fake_clock()
    local ctl = adaptive.new { max_concurrency = 10, batch_bytes = 2 * MB, now = clock.now }
    drive(ctl, clock, steady, 200)
    assert.equal(10, ctl:concurrency())
    local slow = function(c, b) local r = steady(c, b) r.rtt = r.rtt * 4 return r end
    local cs = drive(ctl, clock, slow, 1)
    assert.is_true(cs[1] < 10)
    assert.equal("cut: rtt jump", ctl:state().concurrency_reason)
    local low = cs[1]
    cs = drive(ctl, clock, steady, 200)
    assert.is_true(cs[#cs] > low)
    assert.equal(10, cs[#cs])
  end)

  it("honours a fixed concurrency whatever the server says", function()
    local clock = fake_clock()
    local ctl = adaptive.new { concurrency = 3, batch_bytes = 2 * MB, now = clock.now }
    local cs = drive(ctl, clock, steady, 100)
    assert.is_true(all_within(cs, 3, 3))
    cs = drive(ctl, clock, function() return { rtt = 1, status = 429 } end, 20)
    assert.is_true(all_within(cs, 3, 3))
    assert.equal("fixed", ctl:state().concurrency_mode)
  end)
end)

describe("espipe.client.adaptive batch size", function()
  -- docs/s as a function of batch size, peaking at `best` bytes
  local function peaked(best)
    return function(_, b)
      local ratio = b / best
      local eff = ratio <= 1 and ratio ^ 0.5 or 1 / ratio
      return { rtt = 0.05, docs_per_s = 10000 + 40000 * eff }
    end
  end

  it("climbs while docs/s rises and stays within [1 MB, max_batch_bytes]", function()
    local clock = fake_clock()
    local ctl = adaptive.new { concurrency = 2, max_batch_bytes = 20 * MB, now = clock.now }
    local _, bs = drive(ctl, clock, peaked(1000 * MB), 400)
    assert.is_true(all_within(bs, MB, 20 * MB))
    assert.is_true(ctl:batch_bytes() >= 20 * MB / 1.5, "near the cap: " .. ctl:batch_bytes())
    local grew = false
    for i = 2, #bs do if bs[i] > bs[i - 1] then grew = true end end
    assert.is_true(grew)
  end)

  it("turns around past the peak and stays around it", function()
    local clock = fake_clock()
    local ctl = adaptive.new { concurrency = 2, max_batch_bytes = 40 * MB, now = clock.now }
    local _, bs = drive(ctl, clock, peaked(10 * MB), 1500)
    local tail = { table.unpack and table.unpack(bs, 1000) or unpack(bs, 1000) }
    assert.is_true(all_within(tail, 10 * MB / 1.5 ^ 2 - 1, 10 * MB * 1.5 ^ 2 + 1))
    assert.matches("^climb: ", ctl:state().batch_reason)
  end)

  it("steps back from the cap on the epoch after it turned there, even when docs/s fell meanwhile", function()
    -- bigger is better up to far past the cap, but the cluster slowly loses
    -- capacity: the epoch spent at the cap (no step taken) measures a fall
    -- that says nothing about the batch size
    local clock = fake_clock()
    local ctl = adaptive.new { concurrency = 2, max_batch_bytes = 20 * MB, now = clock.now }
    local fading, n = peaked(1000 * MB), 0
    local server = function(c, b)
      n = n + 1
      local r = fading(c, b)
      r.docs_per_s = r.docs_per_s * 0.999 ^ n
      return r
    end
    local bs, seen_reason = {}, false
    for i = 1, 600 do
      local _, one = drive(ctl, clock, server, 1)
      bs[i] = one[1]
      if ctl:state().batch_reason == "climb: down from the cap" then seen_reason = true end
    end
    local at_cap, left = nil, 0
    for i, b in ipairs(bs) do
      if b == 20 * MB then at_cap = at_cap or i end
      if at_cap and b < 20 * MB and bs[i - 1] == 20 * MB then left = left + 1 end
    end
    assert.is_not_nil(at_cap)
    assert.is_true(left >= 3, "left the cap " .. left .. " times")
    assert.is_true(seen_reason, "no step labelled as leaving the cap")
    assert.is_true(all_within({ table.unpack and table.unpack(bs, at_cap) or unpack(bs, at_cap) }, 20 * MB / 1.5 ^ 2, 20 * MB))
  end)

  it("goes down to 1 MB when smaller is faster, never below", function()
    local clock = fake_clock()
    local ctl = adaptive.new { concurrency = 2, now = clock.now }
    local _, bs = drive(ctl, clock, peaked(MB / 100), 600)
    assert.is_true(all_within(bs, MB, adaptive.DEFAULT_MAX_BATCH))
    assert.is_true(ctl:batch_bytes() <= MB * 1.5 ^ 2)
  end)

  it("lowers the cap on a 413 and never exceeds it again", function()
    local clock = fake_clock()
    local ctl = adaptive.new { concurrency = 2, max_batch_bytes = 40 * MB, now = clock.now }
    drive(ctl, clock, peaked(1000 * MB), 300)
    local before = ctl:batch_bytes()
    assert.is_true(before > 8 * MB)
    local limit = 6 * MB
    local too_large = function(c, b)
      if b > limit then return { rtt = 0.001, status = 413, docs_per_s = 1e9 } end
      return peaked(1000 * MB)(c, b)
    end
    local _, bs = drive(ctl, clock, too_large, 1)
    assert.is_true(bs[1] < before)
    assert.equal("413: body too large", ctl:state().batch_reason)
    _, bs = drive(ctl, clock, too_large, 300)
    local cap = ctl:state().max_batch_bytes
    assert.is_true(cap <= limit)
    -- each 413 shrinks the next body; once one fits, none is too large again
    local first_fit
    for i, b in ipairs(bs) do
      if b <= limit then first_fit = first_fit or i end
      if first_fit then assert.is_true(b <= cap, "batch " .. b .. " above the cap " .. cap) end
    end
    assert.is_true(first_fit ~= nil and first_fit < 10)
  end)

  it("takes the server's http.max_content_length as its cap", function()
    local ctl = adaptive.new { now = fake_clock().now }
    ctl:limit_bytes(3 * MB)
    assert.equal(3 * MB, ctl:batch_bytes())
    assert.equal(3 * MB, ctl:state().max_batch_bytes)
    ctl:limit_bytes(30 * MB) -- a higher limit never raises the cap
    assert.equal(3 * MB, ctl:state().max_batch_bytes)
  end)

  it("honours a fixed batch size", function()
    local clock = fake_clock()
    local ctl = adaptive.new { batch_bytes = 7 * MB, now = clock.now }
    local _, bs = drive(ctl, clock, peaked(1000 * MB), 300)
    assert.is_true(all_within(bs, 7 * MB, 7 * MB))
    assert.equal("fixed", ctl:state().batch_mode)
  end)
end)

describe("espipe.client.adaptive capacity drop", function()
  -- A cluster whose capacity falls by `factor` at `drop_at` (a response
  -- count): every request takes longer (RTT x slow) and docs/s, which peaks
  -- at a 10 MB batch, falls by the same factor.
  local function dropping(drop_at, slow, factor)
    local n = 0
    return function(_, b)
      n = n + 1
      local k = n > drop_at and slow or 1
      local ratio = b / (10 * MB)
      local eff = ratio <= 1 and ratio ^ 0.5 or 1 / ratio
      return { rtt = k * (0.01 + b / (50 * MB)), docs_per_s = (10000 + 40000 * eff) / (n > drop_at and factor or 1) }
    end
  end

  it("cuts once, then grows again from the new RTT instead of cutting down to 1", function()
    local clock = fake_clock()
    local ctl = adaptive.new { max_concurrency = 8, batch_bytes = 5 * MB, now = clock.now }
    local server = dropping(300, 3, 2)
    drive(ctl, clock, server, 300)
    assert.equal(8, ctl:concurrency())
    local cs = drive(ctl, clock, server, 1)
    assert.equal(6, cs[1])
    assert.equal("cut: rtt jump", ctl:state().concurrency_reason)
    cs = drive(ctl, clock, server, 60)
    assert.is_true(all_within(cs, 6, 8))
    assert.equal(8, cs[#cs])
  end)

  it("does not take the drop for the effect of its last batch step", function()
    local clock = fake_clock()
    local ctl = adaptive.new { concurrency = 4, now = clock.now }
    local server = dropping(800, 2, 2)
    local _, bs = drive(ctl, clock, server, 800)
    local dir_before
    for i = #bs, 2, -1 do
      if bs[i] ~= bs[i - 1] then dir_before = bs[i] > bs[i - 1] break end
    end
    assert.is_not_nil(dir_before)
    -- the epoch holding the drop sees docs/s fall: the climb keeps its direction
    local last, b = bs[#bs]
    repeat
      local _, one = drive(ctl, clock, server, 1)
      b = one[1]
    until b ~= last
    assert.equal(dir_before, b > last)
    -- and it still settles around the peak under the new capacity
    _, bs = drive(ctl, clock, server, 800)
    local tail = { table.unpack and table.unpack(bs, 400) or unpack(bs, 400) }
    assert.is_true(all_within(tail, 10 * MB / 1.5 ^ 2 - 1, 10 * MB * 1.5 ^ 2 + 1))
  end)
end)

describe("espipe.client.adaptive interface", function()
  it("reads a bulk response's 429 items for the indexer, and ignores requests without an answer", function()
    local clock = fake_clock()
    local ctl = adaptive.new { max_concurrency = 8, batch_bytes = 2 * MB, now = clock.now }
    drive(ctl, clock, steady, 200)
    local c, b = ctl:observe(100, 2 * MB, 0.05, 0, nil)
    assert.same({ 8, 2 * MB }, { c, b })
    c = ctl:observe(100, 2 * MB, 0.05, 200, { { status = 400 }, { status = 409 } })
    assert.equal(8, c)
    c = ctl:observe(100, 2 * MB, 0.05, 200, { { status = 400 }, { status = 429 } })
    assert.equal(4, c)
    assert.equal(1, ctl:state().rejected_items)
  end)

  it("labels the current values for the progress line", function()
    local ctl = adaptive.new { concurrency = 6, batch_bytes = 8 * MB }
    assert.equal("c=6 b=8MB", ctl:label())
  end)

  it("records the values and why they last changed", function()
    local ctl = adaptive.new { now = fake_clock().now }
    local s = ctl:state()
    assert.equal("auto", s.concurrency_mode)
    assert.equal("start", s.concurrency_reason)
    assert.equal(adaptive.START_CONCURRENCY, s.concurrency)
    assert.equal(adaptive.START_BATCH, s.batch_bytes)
  end)

  it("raises on wrong arguments, naming them", function()
    assert.has_error(function() adaptive.new { concurrency = "fast" } end,
      'espipe.client.adaptive: concurrency must be "auto" or an integer >= 1, got fast')
    assert.has_error(function() adaptive.new { batch_bytes = 0 } end,
      'espipe.client.adaptive: batch_bytes must be "auto" or an integer >= 1, got 0')
    assert.has_error(function() adaptive.new { max_concurency = 3 } end,
      "espipe.client.adaptive: unknown option 'max_concurency' (did you mean 'max_concurrency'?)")
    assert.has_error(function() adaptive.new { now = 5 } end,
      "espipe.client.adaptive: now must be a function, got number")
  end)
end)
