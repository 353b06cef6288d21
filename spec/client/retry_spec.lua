-- espipe.client.retry: what a failure means and how long a job waits.
local retry = require("espipe.client.retry")
local client_mod = require("espipe.client")
local errors = require("espipe.client.errors")
local script_transport = require("spec.client.support.script_transport")

local function terr(code, extra)
  local e = { kind = "transport", code = code, host = "http://127.0.0.1:1" }
  for k, v in pairs(extra or {}) do e[k] = v end
  return errors.new(e)
end

describe("retry policy", function()
  local policy = retry.new{ retry_for = 10, base = 0.1, max = 2 }

  it("raises on wrong arguments, naming them", function()
    assert.has_error(function() retry.new{ retry_for = -1 } end,
      "espipe.client.retry: retry_for must be a number >= 0 (seconds), got -1")
    assert.has_error(function() retry.new{ base = 0 } end)
    assert.has_error(function() retry.new{ base = 2, max = 1 } end)
    assert.has_error(function() retry.new{ retry_four = 1 } end)
    assert.has_error(function() retry.new("x") end)
    assert.has_error(function() policy:classify(nil) end)
    assert.has_error(function() policy:start() end)
  end)

  it("classifies HTTP statuses", function()
    local want = { [429] = "retry", [500] = "retry", [502] = "retry", [503] = "retry", [504] = "retry",
                   [401] = "systemic", [403] = "systemic", [400] = "permanent", [404] = "permanent",
                   [409] = "permanent", [413] = "permanent" }
    for status, class in pairs(want) do
      assert.equal(class, policy:classify({ status = status }, { path = "/i/_bulk" }), status)
      assert.equal(class, policy:classify(errors.new{ kind = "http", status = status,
        request = { method = "POST", path = "/i/_search" } }), status)
    end
    assert.equal("systemic", policy:classify({ status = 404 }, { path = "/" }))
    assert.equal("retry", policy:classify(errors.new{ kind = "http", status = 400,
      type = "es_rejected_execution_exception" }))
  end)

  it("classifies transport failures from the completion's error code", function()
    for _, code in ipairs{ "timeout", "send", "recv", "empty_reply", "partial" } do
      assert.equal("retry", policy:classify({ status = 0, err = terr(code) }), code)
      assert.equal("retry", policy:classify(terr(code)), code)
    end
    for _, code in ipairs{ "tls", "resolve", "bad_url" } do
      assert.equal("systemic", policy:classify({ status = 0, err = terr(code) }), code)
    end
    -- refused: a wrong port at start, a restarting node once it has answered
    assert.equal("systemic", policy:classify(terr("connect")))
    assert.equal("retry", policy:classify(terr("connect", { cluster_reached = true })))
    assert.equal("systemic", policy:classify(errors.new{ kind = "systemic", message = "x" }))
  end)

  it("classifies bulk items", function()
    assert.equal("retry", policy:classify_item{ status = 429 })
    assert.equal("retry", policy:classify_item{ status = 503 })
    assert.equal("retry", policy:classify_item{ status = 500, type = "es_rejected_execution_exception" })
    assert.equal("permanent", policy:classify_item{ status = 400, type = "mapper_parsing_exception" })
    assert.equal("permanent", policy:classify_item{ status = 409 })
  end)

  it("waits capped exponential, jittered delays until the time budget is spent", function()
    local s = policy:start(100)
    local now, caps = 100, { 0.1, 0.2, 0.4, 0.8, 1.6, 2, 2, 2 }
    for _, cap in ipairs(caps) do
      local d = s:next_delay(now)
      assert.is_true(d >= 0 and d <= cap, "delay " .. tostring(d) .. " over cap " .. cap)
      now = now + d
    end
    -- the last wait ends at the deadline, then no more
    local d = s:next_delay(109.9)
    assert.is_true(d <= 0.1 + 1e-9)
    assert.is_nil(s:next_delay(110))
    assert.is_nil(retry.new{ retry_for = 0 }:start(0):next_delay(0))
  end)

  it("spreads the delays (full jitter), not one fixed schedule", function()
    local seen = {}
    for _ = 1, 50 do
      seen[string.format("%.3f", policy:start(0):next_delay(0) * 10)] = true
    end
    local n = 0
    for _ in pairs(seen) do n = n + 1 end
    assert.is_true(n > 10, "only " .. n .. " distinct first delays")
  end)
end)

describe("client:request_retrying", function()
  it("retries what is retryable on the client's clock, then returns the answer", function()
    local t = script_transport.new(function(_, n)
      if n == 1 then return { status = 0, err = terr("recv", { cluster_reached = true }) } end
      if n == 2 then return { status = 503, body = '{"error":"busy"}' } end
      return { status = 200, body = '{"ok":true}' }
    end)
    local c = client_mod.new{ transport = t }
    local res = assert(c:request_retrying({ method = "GET", path = "/x" }, retry.new{ retry_for = 60 }))
    assert.equal(200, res.status)
    assert.equal(3, #t.sent)
    local v = assert(c:json_request_retrying({ method = "GET", path = "/x" }, retry.new()))
    assert.is_true(v.ok)
  end)

  it("gives up when the time budget is spent, saying how often and how long it tried", function()
    local t = script_transport.new(function() return { status = 429, body = '{"error":"slow down"}' } end)
    local c = client_mod.new{ transport = t }
    local policy = retry.new{ retry_for = 5, base = 0.5, max = 1 }
    local res, err = c:request_retrying({ method = "GET", path = "/x" }, policy)
    assert.is_nil(res)
    assert.equal(429, err.status)
    assert.is_true(err.attempts > 3, "attempts " .. err.attempts)
    assert.is_true(err.elapsed >= 5 - 1e-9 and err.elapsed < 6)
    assert.equal(err.attempts, #t.sent)
  end)

  it("stops at once on a systemic or a permanent failure", function()
    for status, kind in pairs{ [401] = "systemic", [400] = "http" } do
      local t = script_transport.new(function() return { status = status, body = '{"error":"no"}' } end)
      local c = client_mod.new{ transport = t }
      local _, err = c:request_retrying({ method = "GET", path = "/x" }, retry.new())
      assert.equal(1, #t.sent)
      assert.equal(kind, err.kind)
      assert.equal(status, err.status)
    end
  end)

  it("raises on wrong arguments", function()
    local c = client_mod.new{ transport = script_transport.new(function() return { status = 200 } end) }
    assert.has_error(function() c:request_retrying(nil, retry.new()) end)
    assert.has_error(function() c:request_retrying({ path = "/" }, {}) end)
  end)
end)

describe("client:request_retrying against a real server #server", function()
  local devserver = require("spec.support.devserver")

  it("calls a refused port systemic at start, and a restart retryable once the host answered", function()
    local server = devserver.start{}
    local c = client_mod.new{ hosts = { server.url }, timeout = 5 }
    local policy = retry.new{ retry_for = 1, base = 0.05, max = 0.2 }
    assert(c:request_retrying({ method = "GET", path = "/" }, policy))
    server.stop()
    local t0 = c:now()
    local _, err = c:request_retrying({ method = "GET", path = "/" }, policy)
    assert.equal("transport", err.kind)
    assert.equal("connect", err.code)
    assert.is_true(err.attempts > 1)
    assert.is_true(c:now() - t0 >= 1 - 0.05)
    c:close()

    -- a client that never reached that cluster: systemic, one attempt, names the host
    local fresh = client_mod.new{ hosts = { server.url }, timeout = 5 }
    local _, serr = fresh:request_retrying({ method = "GET", path = "/" }, policy)
    assert.equal("systemic", serr.kind)
    assert.equal("transport", serr.cause)
    assert.equal(1, serr.attempts)
    assert.truthy(tostring(serr):find("127.0.0.1:" .. server.port, 1, true), tostring(serr))
    fresh:close()
  end)
end)
