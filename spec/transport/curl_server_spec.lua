-- The curl transport against a real nginx (spec/support/echo_server.lua):
-- concurrency, keep-alive, gzip both ways, timeouts, dead hosts,
-- round-robin, limits, bulk buffers, TLS, auth and shutdown safety.
local curl = require "espipe.transport.curl"
local cm = require "espipe.curl_multi"
local core = require "espipe.core"
local cjson = require "cjson"
local echo = require "support.echo_server"

local REFUSED = "http://127.0.0.1:1"

local function drain(t, seconds)
  local got, deadline = {}, cm.now() + (seconds or 15)
  while t:inflight() > 0 and cm.now() < deadline do
    for _, c in ipairs(t:poll(0.5)) do got[#got + 1] = c end
  end
  return got
end

local function reply(res)
  assert.is_nil(res.err)
  return cjson.decode(res.body)
end

-- RFC 4648 base64, written here so the expected Basic header does not come from the code under test.
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local chars = {}
    for k = 3, 0, -1 do
      local v = math.floor(n / 64 ^ k) % 64
      chars[#chars + 1] = B64:sub(v + 1, v + 1)
    end
    if not b then chars[3], chars[4] = "=", "=" elseif not c then chars[4] = "=" end
    out[#out + 1] = table.concat(chars)
  end
  return table.concat(out)
end

describe("transport.curl against nginx #server", function()
  local srv

  setup(function()
    srv = echo.start { tls = true }
  end)

  teardown(function()
    if srv then srv:stop() end
  end)

  it("sends method, path, query, headers and body", function()
    local t = curl.new { hosts = { srv.url }, headers = { ["X-Default"] = "d" } }
    local res = assert(t:request {
      method = "PUT", path = "/idx/_doc/1", query = { refresh = "true", filter_path = { "a", "b" }, q = "x y" },
      headers = { ["X-Extra"] = "e" }, body = '{"a":1}',
    })
    assert.equals(200, res.status)
    assert.equals("application/json", res.headers["content-type"])
    local r = reply(res)
    assert.equals("PUT", r.method)
    assert.equals("/idx/_doc/1", r.uri)
    assert.equals("filter_path=a,b&q=x%20y&refresh=true", r.args)
    assert.equals('{"a":1}', r.body)
    assert.equals("d", r.headers["x-default"])
    assert.equals("e", r.headers["x-extra"])
    assert.equals("application/json", r.headers["content-type"])
    local head = assert(t:request { method = "HEAD", path = "/h" })
    assert.equals(200, head.status)
    assert.equals("", head.body)
    local del = reply(assert(t:request { method = "DELETE", path = "/d" }))
    assert.equals("DELETE", del.method)
    t:close()
  end)

  it("returns non-2xx statuses as completions, not errors", function()
    local t = curl.new { hosts = { srv.url } }
    local res = assert(t:request { path = "/x", query = "status=429" })
    assert.equals(429, res.status)
    assert.is_nil(res.err)
    t:close()
  end)

  it("hands a 2xx body over as a response body with body_buffer, other statuses as strings", function()
    local t = curl.new { hosts = { srv.url } }
    local res = assert(t:request { path = "/gzip/same", body_buffer = true })
    assert.equals(200, res.status)
    assert.equals("userdata", type(res.body))
    -- the answer's bytes (curl decoded the gzip'd answer into it), no string made
    local text = tostring(res.body)
    assert.equals(#text, #res.body)
    assert.equals("/gzip/same", cjson.decode(text).uri)
    res.body:release()
    assert.has_error(function() return #res.body end, "the response body was released")
    res.body:release()   -- twice is harmless
    local failed = assert(t:request { path = "/x", query = "status=429", body_buffer = true })
    assert.equals(429, failed.status)
    assert.equals("string", type(failed.body))
    -- the transfer's next body is a fresh buffer: the first one is untouched
    local a = assert(t:request { path = "/one", body_buffer = true })
    local b = assert(t:request { path = "/two", body_buffer = true })
    assert.equals("/one", cjson.decode(tostring(a.body)).uri)
    assert.equals("/two", cjson.decode(tostring(b.body)).uri)
    t:close()
  end)

  it("keeps many requests in flight at once", function()
    local t = curl.new { hosts = { srv.url }, max_inflight = 8 }
    for i = 1, 8 do assert(t:submit { path = "/slow", query = "sleep=0.5", ctx = i }) end
    assert.equals(8, t:inflight())
    local done = drain(t)
    assert.equals(8, #done)
    local latest_start, earliest_finish, conns, seen = -math.huge, math.huge, {}, {}
    for _, c in ipairs(done) do
      local r = reply(c)
      latest_start = math.max(latest_start, r.start)
      earliest_finish = math.min(earliest_finish, r.finish)
      conns[r.connection] = true
      seen[c.ctx] = true
    end
    -- The server began the last request before it finished the first: all 8 overlapped.
    assert.is_true(latest_start < earliest_finish)
    local n = 0
    for _ in pairs(conns) do n = n + 1 end
    assert.equals(8, n)
    for i = 1, 8 do assert.is_true(seen[i]) end
    t:close()
  end)

  it("reuses kept-alive connections", function()
    local t = curl.new { hosts = { srv.url }, max_inflight = 2 }
    local first
    for i = 1, 10 do
      local r = reply(assert(t:request { path = "/k" }))
      first = first or r.connection
      assert.equals(first, r.connection)
      assert.equals(i, r.connection_requests)
    end
    local conns = {}
    for _ = 1, 5 do
      t:submit { path = "/k" }
      t:submit { path = "/k" }
      for _, c in ipairs(drain(t)) do conns[reply(c).connection] = true end
    end
    local n = 0
    for _ in pairs(conns) do n = n + 1 end
    assert.is_true(n <= 2)
    t:close()
  end)

  it("gzips request bodies that the server decodes back to the original", function()
    local lines = {}
    for i = 1, 2000 do
      lines[i] = string.format('{"index":{"_id":"%d"}}\n{"n":%d,"text":"some repeated text"}', i, i)
    end
    local body = table.concat(lines, "\n") .. "\n"
    local t = curl.new { hosts = { srv.url }, compress = true }
    local r = reply(assert(t:request { method = "POST", path = "/_bulk", query = "gunzip=1", body = body }))
    assert.equals("gzip", r.headers["content-encoding"])
    assert.is_true(r.received < #body / 4)
    assert.equals(body, r.body)
    -- A request can opt out.
    r = reply(assert(t:request { method = "POST", path = "/plain", body = body, compress = false }))
    assert.is_nil(r.headers["content-encoding"])
    assert.equals(#body, r.received)
    t:close()
  end)

  it("accepts gzip responses and decodes them", function()
    local t = curl.new { hosts = { srv.url } }
    local res = assert(t:request { path = "/gzip/hello" })
    assert.equals("gzip", res.headers["content-encoding"])
    assert.equals("/gzip/hello", reply(res).uri)
    t:close()
  end)

  it("times out with kind transport and code timeout, without marking the host dead", function()
    local t = curl.new { hosts = { srv.url } }
    t:submit { path = "/slow", query = "sleep=3", timeout = 0.3 }
    local done = drain(t)
    assert.equals(1, #done)
    local err = done[1].err
    assert.equals("transport", err.kind)
    assert.equals("timeout", err.code)
    assert.is_false(err.host_dead)
    assert.is_true(done[1].elapsed < 2)
    assert.is_nil(t.hosts:get(1).dead_until)
    t:close()
  end)

  it("marks a refused host dead and sends the next request to the other host", function()
    local t = curl.new { hosts = { REFUSED, srv.url }, dead_host_retry = 60 }
    t:submit { path = "/a" }
    local done = drain(t)
    assert.equals(REFUSED, done[1].host)
    assert.equals("connect", done[1].err.code)
    assert.is_true(done[1].err.host_dead)
    for _ = 1, 3 do
      local res = assert(t:request { path = "/b" })
      assert.equals(srv.url, res.host)
      assert.equals(2, res.host_index)
    end
    t:close()
  end)

  it("uses the host dead longest when all are dead, and revives it on success", function()
    local t = curl.new { hosts = { srv.url, REFUSED }, dead_host_retry = 60 }
    local now = cm.now()
    t.hosts:get(1).dead_since, t.hosts:get(1).dead_until = now - 5, now + 55
    t.hosts:get(2).dead_since, t.hosts:get(2).dead_until = now - 1, now + 59
    local res = assert(t:request { path = "/c" })
    assert.equals(srv.url, res.host)
    assert.is_nil(t.hosts:get(1).dead_until)
    t:close()
  end)

  it("treats a connection closed before any answer as a dead host", function()
    local t = curl.new { hosts = { srv.url } }
    t:submit { path = "/close" }
    local done = drain(t)
    assert.equals("empty_reply", done[1].err.code)
    assert.is_true(done[1].err.host_dead)
    t:close()
  end)

  it("distributes requests round-robin and can pin a host", function()
    local t = curl.new { hosts = { srv.url, srv.tls_url }, tls = { ca_file = srv.ca_file } }
    local ports = {}
    for i = 1, 6 do ports[i] = reply(assert(t:request { path = "/rr" })).server_port end
    assert.same({ srv.port, srv.tls_port, srv.port, srv.tls_port, srv.port, srv.tls_port }, ports)
    for _ = 1, 3 do
      assert.equals(srv.tls_port, reply(assert(t:request { path = "/rr", host = 2 })).server_port)
    end
    t:close()
  end)

  it("poll(0) returns at once and poll(s) waits no longer than s", function()
    local t = curl.new { hosts = { srv.url } }
    t:submit { path = "/slow", query = "sleep=1.5" }
    local t0 = cm.now()
    assert.same({}, t:poll(0))
    assert.is_true(cm.now() - t0 < 0.5)
    t0 = cm.now()
    assert.same({}, t:poll(0.2))
    local waited = cm.now() - t0
    assert.is_true(waited >= 0.19 and waited < 1.2, "waited " .. waited)
    assert.equals(1, t:inflight())
    assert.equals(1, #drain(t))
    t:close()
  end)

  it("refuses submits beyond max_inflight with kind busy", function()
    local t = curl.new { hosts = { srv.url }, max_inflight = 2 }
    assert(t:submit { path = "/slow", query = "sleep=0.3" })
    assert(t:submit { path = "/slow", query = "sleep=0.3" })
    local id, err = t:submit { path = "/slow" }
    assert.is_nil(id)
    assert.equals("busy", err.kind)
    assert.equals(2, #drain(t))
    assert(t:submit { path = "/again" })
    assert.equals(1, #drain(t))
    t:close()
  end)

  it("keeps completions that request() sees for the next poll()", function()
    local t = curl.new { hosts = { srv.url } }
    local other = t:submit { path = "/slow", query = "sleep=0.1", ctx = "other" }
    local res = assert(t:request { path = "/slow", query = "sleep=0.4" })
    assert.equals("/slow", reply(res).uri)
    assert.equals(1, t:inflight())
    local done = t:poll(0)
    assert.equals(1, #done)
    assert.equals(other, done[1].id)
    assert.equals("other", done[1].ctx)
    t:close()
  end)

  it("passes ctx through untouched", function()
    local t = curl.new { hosts = { srv.url } }
    local ctx = { batch = 7 }
    t:submit { path = "/ctx", ctx = ctx }
    assert.equals(ctx, drain(t)[1].ctx)
    t:close()
  end)

  it("sends a bulk buffer in place and pins it while in flight", function()
    local b = core.bulk_new()
    for i = 1, 500 do b:add("index", { _index = "docs", _id = tostring(i) }, { n = i, s = "é/\"" }) end
    local expected = b:body()
    local t = curl.new { hosts = { srv.url } }
    t:submit { method = "POST", path = "/_bulk", query = "sleep=0.2", body = b,
               headers = { ["content-type"] = "application/x-ndjson" } }
    local ok, err = pcall(b.add, b, "index", { _index = "docs", _id = "x" }, { n = 0 })
    assert.is_false(ok)
    assert.matches("in flight", err)
    local r = reply(drain(t)[1])
    assert.equals(expected, r.body)
    assert.equals("application/x-ndjson", r.headers["content-type"])
    b:add("index", { _index = "docs", _id = "x" }, { n = 0 })
    -- close() mid-flight unpins too.
    t:submit { method = "POST", path = "/_bulk", query = "sleep=1", body = b }
    t:close()
    b:add("index", { _index = "docs", _id = "y" }, { n = 1 })
  end)

  it("refuses a self-signed server without ca_file, trusts it with one", function()
    local t = curl.new { hosts = { srv.tls_url } }
    t:submit { path = "/tls" }
    local done = drain(t)
    assert.equals("tls", done[1].err.code)
    assert.is_false(done[1].err.host_dead)
    t:close()
    t = curl.new { hosts = { srv.tls_url }, tls = { ca_file = srv.ca_file } }
    local r = reply(assert(t:request { path = "/tls" }))
    assert.equals("https", r.scheme)
    assert.equals("NONE", r.client_verify)
    t:close()
  end)

  it("presents a client certificate", function()
    local t = curl.new { hosts = { srv.tls_url },
      tls = { ca_file = srv.ca_file, cert = srv.client_cert, key = srv.client_key } }
    assert.equals("SUCCESS", reply(assert(t:request { path = "/mtls" })).client_verify)
    t:close()
  end)

  it("skips verification with insecure = true and warns once on stderr", function()
    local log = os.tmpname()
    local script = table.concat({
      'package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path',
      'package.cpath = "./build/5.4/?.so;" .. package.cpath',
      'local curl = require "espipe.transport.curl"',
      'for _ = 1, 2 do',
      '  local t = curl.new { hosts = { "' .. srv.tls_url .. '" }, tls = { insecure = true } }',
      '  local res = assert(t:request { path = "/insecure" })',
      '  io.write(res.status, "\\n")',
      '  t:close()',
      'end',
    }, "\n")
    local p = assert(io.popen("lua5.4 -e '" .. script:gsub("'", "'\\''") .. "' 2>" .. log))
    local out = p:read("*a")
    p:close()
    local f = assert(io.open(log))
    local warnings = f:read("*a")
    f:close()
    os.remove(log)
    assert.equals("200\n200\n", out)
    local _, count = warnings:gsub("TLS certificate verification is disabled", "")
    assert.equals(1, count)
  end)

  it("sends basic, api-key and bearer credentials", function()
    local cases = {
      { { username = "elastic", password = "pä:ss" }, "Basic " .. base64("elastic:pä:ss") },
      { { api_key = "a2V5OnNlY3JldA==" }, "ApiKey a2V5OnNlY3JldA==" },
      { { bearer = "tok.en" }, "Bearer tok.en" },
    }
    for _, case in ipairs(cases) do
      local t = curl.new { hosts = { srv.url }, auth = case[1] }
      assert.equals(case[2], reply(assert(t:request { path = "/auth" })).headers.authorization)
      t:close()
    end
    local host = srv.url:gsub("^http://", "http://user:p%%40ss@")
    local t = curl.new { hosts = { host } }
    assert.equals(srv.url, t.hosts:get(1).url)
    assert.equals("Basic " .. base64("user:p@ss"),
      reply(assert(t:request { path = "/auth" })).headers.authorization)
    t:close()
  end)

  it("bounds the response size", function()
    local t = curl.new { hosts = { srv.url }, max_response_bytes = 4096 }
    t:submit { path = "/big", query = "bytes=100000" }
    local err = drain(t)[1].err
    assert.equals("too_large", err.code)
    assert.is_false(err.host_dead)
    assert.equals(1000, #assert(t:request { path = "/small", query = "bytes=1000" }).body)
    t:close()
  end)

  it("survives close() and garbage collection with requests in flight", function()
    local t = curl.new { hosts = { srv.url } }
    for _ = 1, 4 do t:submit { method = "POST", path = "/slow", query = "sleep=1", body = string.rep("z", 100000) } end
    t:close()
    assert.equals(0, t:inflight())
    assert.same({}, t:poll(0.1))
    do
      local doomed = curl.new { hosts = { srv.url } }
      for _ = 1, 4 do doomed:submit { path = "/slow", query = "sleep=1", body = string.rep("y", 50000) } end
    end
    collectgarbage()
    collectgarbage()
    local fresh = curl.new { hosts = { srv.url } }
    assert.equals(200, assert(fresh:request { path = "/after" }).status)
    fresh:close()
  end)
end)
