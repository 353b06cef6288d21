-- espipe.client.concurrent against a real nginx (spec/support/echo_server):
-- requests in flight together up to the limit, results in request order,
-- retries of what may succeed later, failures returned as errs.
local echo_server = require "support.echo_server"
local concurrent = require "espipe.client.concurrent"
local espipe = require "espipe"
local json = require "espipe.json"

describe("client.concurrent #server", function()
  local srv, client
  setup(function()
    srv = echo_server.start()
    client = espipe.client { hosts = { srv.url }, max_inflight = 32 }
  end)
  teardown(function()
    client:close()
    srv:stop()
  end)

  local function get(path) return { method = "GET", path = path } end

  it("returns each result in the order of its request", function()
    local reqs = {}
    for i = 1, 12 do reqs[i] = get("/item-" .. i) end
    local results, errs = concurrent.run(client, reqs, { concurrency = 5 })
    assert.equal(12, results.n)
    for i = 1, 12 do
      assert.is_nil(errs[i])
      assert.equal("/item-" .. i, json.decode(results[i].body).uri)
    end
  end)

  it("keeps at most `concurrency` requests in flight, and uses them all", function()
    local reqs = {}
    for i = 1, 8 do reqs[i] = get("/slow-" .. i .. "?sleep=0.2") end
    local results = concurrent.run(client, reqs, { concurrency = 4 })
    -- the server's own clock: how many requests it held at once
    local spans = {}
    for i = 1, 8 do
      local v = json.decode(results[i].body)
      spans[i] = { v.start, v.finish }
    end
    local most = 0
    for i = 1, 8 do
      local at, n = spans[i][1], 0
      for j = 1, 8 do
        if spans[j][1] <= at and at < spans[j][2] then n = n + 1 end
      end
      most = math.max(most, n)
    end
    assert.equal(4, most)
  end)

  it("retries a 503 `retries` times, then returns it as an err, not a result", function()
    local results, errs = concurrent.run(client, { get("/ok"), get("/down?status=503") }, { retries = 2 })
    assert.is_table(results[1])
    assert.is_nil(results[2])
    assert.equal(503, errs[2].status)
    assert.equal("http", errs[2].kind)
    assert.equal(3, errs[2].attempts)
  end)

  it("does not retry a 404: the answer will not change", function()
    local _, errs = concurrent.run(client, { get("/gone?status=404") }, { retries = 3 })
    assert.equal(404, errs[1].status)
    assert.equal(1, errs[1].attempts)
  end)

  it("times a request out after `timeout` seconds and says so", function()
    local results, errs = concurrent.run(client, { get("/stuck?sleep=3") }, { timeout = 0.2, retries = 1 })
    assert.is_nil(results[1])
    assert.equal("transport", errs[1].kind)
    assert.equal("timeout", errs[1].code)
    assert.equal(2, errs[1].attempts)
  end)

  it("rejects wrong options as wrong arguments", function()
    assert.has_error(function() concurrent.run(client, {}, { concurency = 2 }) end,
      "concurrent.run: unknown option 'concurency' (did you mean 'concurrency'?)")
    assert.has_error(function() concurrent.run(client, {}, { retries = -1 }) end)
    assert.has_error(function() concurrent.run(client, { 5 }) end, "concurrent.run: request 1 is not a table")
  end)
end)
