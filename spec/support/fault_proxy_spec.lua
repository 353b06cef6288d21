-- The fault proxy's actions, each proven against the real dev server: the
-- client's view through the proxy (curl, espipe's indexer) against what the
-- server holds, read directly.
local devserver = require("spec.support.devserver")
local http = require("support.http")
local fault_proxy = require("support.fault_proxy")
local espipe = require("espipe")

local function doc_status(url, index, id)
  return http.request{ url = url .. "/" .. index .. "/_doc/" .. id }.status
end

local function count(url, index)
  http.request{ method = "POST", url = url .. "/" .. index .. "/_refresh" }
  local _, body = http.json("GET", url .. "/" .. index .. "/_count")
  return body.count
end

local function ids_on_server(url, index)
  http.request{ method = "POST", url = url .. "/" .. index .. "/_refresh" }
  local _, body = http.json("POST", url .. "/" .. index .. "/_search",
    { size = 10000, _source = false })
  assert(body.hits, require("espipe.json").encode(body))
  local ids = {}
  for _, h in ipairs(body.hits.hits) do ids[h._id] = true end
  return ids
end

describe("fault proxy #server", function()
  local server, proxy
  setup(function() server = devserver.start() end)
  teardown(function() server.stop() end)
  after_each(function()
    if proxy then proxy:stop() end
    proxy = nil
  end)

  local function start(rules, seed)
    proxy = fault_proxy.start{ upstream = server.url, seed = seed or 1, rules = rules, max_seconds = 120 }
    return proxy
  end

  it("passes requests through unchanged, keep-alive, and counts them", function()
    local p = start{}
    assert.matches("^http://127%.0%.0%.1:%d+$", p.url)
    local status, body = http.json("PUT", p.url .. "/pass/_doc/1", { n = 1 })
    assert.equal(201, status)
    assert.equal("created", body.result)
    status, body = http.json("GET", p.url .. "/pass/_doc/1")
    assert.equal(200, status)
    assert.same({ n = 1 }, body._source)
    -- gzip request bodies and responses pass as they are
    local res = http.request{ method = "POST", url = p.url .. "/pass/_doc/2", body = '{"n":2}', gzip = true,
                              headers = { ["Accept-Encoding"] = "gzip" } }
    assert.equal(201, res.status)
    assert.equal(200, doc_status(server.url, "pass", 2))
    local st = p:stats()
    assert.equal(3, st.requests)
    assert.equal(3, st.forwarded)
    assert.equal(0, st.resets)
  end)

  it("reset_request: the client sees a reset, the server never sees the request", function()
    local p = start{ { match = "PUT /rq/", action = "reset_request", nth = 2 } }
    assert.equal(201, http.request{ method = "PUT", url = p.url .. "/rq/_doc/1", body = "{}" }.status)
    local res = http.request{ method = "PUT", url = p.url .. "/rq/_doc/2", body = "{}" }
    assert.equal(0, res.status)
    assert.equal(56, res.curl_exit) -- recv failure: connection reset by peer
    assert.equal(200, doc_status(server.url, "rq", 1))
    assert.equal(404, doc_status(server.url, "rq", 2))
    local st = p:stats()
    assert.same({ 1, 1, 1 }, { st.resets, st.reset_requests, st.forwarded })
    assert.same({ 2, 1 }, { st.rules[1].matched, st.rules[1].fired })
  end)

  it("reset_response: the server applied the request, the client saw part of it and a reset", function()
    local p = start{ { match = "_doc", action = "reset_response" } }
    local res = http.request{ method = "PUT", url = p.url .. "/rs/_doc/1", body = '{"n":1}' }
    assert.equal(56, res.curl_exit)
    assert.equal(201, res.status) -- the head came through, the body did not
    assert.is_nil(require("espipe.json").decode(res.body))
    assert.equal(200, doc_status(server.url, "rs", 1))
    assert.equal(1, p:stats().reset_responses)
  end)

  it("truncate: a clean close after part of the body", function()
    local p = start{ { match = "_doc", action = "truncate", after_bytes = 5 } }
    local res = http.request{ method = "PUT", url = p.url .. "/tr/_doc/1", body = '{"n":1}' }
    assert.equal(0, res.status)
    assert.equal(52, res.curl_exit) -- 5 bytes: not even a status line
    assert.equal(200, doc_status(server.url, "tr", 1))
    p:set_rules{ { match = "_doc", action = "truncate" } }
    res = http.request{ method = "PUT", url = p.url .. "/tr/_doc/2", body = '{"n":2}' }
    assert.equal(18, res.curl_exit) -- partial file: less than Content-Length
    assert.equal(201, res.status)
    assert.equal(200, doc_status(server.url, "tr", 2))
    assert.equal(2, p:stats().truncations)
  end)

  it("stall: holds the request until the client gives up, never forwards it", function()
    local p = start{ { match = "_doc", action = "stall" } }
    local res = http.request{ method = "PUT", url = p.url .. "/st/_doc/1", body = "{}", timeout = 1 }
    assert.equal(28, res.curl_exit) -- operation timed out
    assert.equal(404, doc_status(server.url, "st", 1))
    p:set_rules{ { match = "_doc", action = "stall", seconds = 0.2 } }
    res = http.request{ method = "PUT", url = p.url .. "/st/_doc/2", body = "{}", timeout = 20 }
    assert.equal(52, res.curl_exit) -- closed without a reply, well before the client's timeout
    assert.equal(2, p:stats().stalls)
  end)

  it("delay: forwards after the delay", function()
    local p = start{ { match = "_doc", action = "delay", seconds = 0.3 } }
    local t0 = require("espipe.curl_multi").now()
    assert.equal(201, http.request{ method = "PUT", url = p.url .. "/dl/_doc/1", body = "{}" }.status)
    assert.is_true(require("espipe.curl_multi").now() - t0 >= 0.3)
    assert.equal(200, doc_status(server.url, "dl", 1))
    assert.equal(1, p:stats().delays)
  end)

  it("status: answers 429 or 503 itself with an Elasticsearch error, never forwards", function()
    local p = start{ { match = "_doc", action = "status", status = 429, times = 1 },
                     { match = "_doc", action = "status", status = 503, times = 1 } }
    local status, body = http.json("PUT", p.url .. "/sx/_doc/1", {})
    assert.equal(429, status)
    assert.same({ 429, "es_rejected_execution_exception" }, { body.status, body.error.type })
    assert.equal("es_rejected_execution_exception", body.error.root_cause[1].type)
    status, body = http.json("PUT", p.url .. "/sx/_doc/1", {})
    assert.same({ 503, 503 }, { status, body.status })
    assert.equal(404, doc_status(server.url, "sx", 1))
    status = http.json("PUT", p.url .. "/sx/_doc/1", {}) -- both rules used up
    assert.equal(201, status)
    assert.equal(2, p:stats().statuses)
  end)

  it("p draws from the seeded RNG: the same seed fails the same requests", function()
    local function run()
      local p = start({ { match = "_doc", action = "status", status = 503, p = 0.3 } }, 7)
      local seen = {}
      for i = 1, 30 do
        seen[i] = http.json("PUT", p.url .. "/seed/_doc/" .. i, {}) == 503
      end
      p:stop()
      return seen
    end
    local a, b = run(), run()
    assert.same(a, b)
    local failed = 0
    for _, s in ipairs(a) do if s then failed = failed + 1 end end
    assert.is_true(failed > 2 and failed < 20, "failed " .. failed .. " of 30")
  end)

  it("every = k fires on every kth matching request", function()
    local p = start{ { match = "GET /", action = "status", status = 503, every = 3 } }
    local got = {}
    for i = 1, 6 do got[i] = http.request{ url = p.url .. "/" }.status end
    assert.same({ 200, 200, 503, 200, 200, 503 }, got)
  end)

  it("bulk_items: the chosen items never reach the server and come back 429 in place", function()
    local p = start{ { match = "_bulk", action = "bulk_items", fraction = 0.25 } }
    local lines = {}
    for i = 1, 40 do
      lines[#lines + 1] = { index = { _index = "bi", _id = tostring(i) } }
      lines[#lines + 1] = { n = i }
    end
    lines[#lines + 1] = { delete = { _index = "bi", _id = "nope" } }
    local status, body = http.bulk(p.url, lines)
    assert.equal(200, status)
    assert.is_true(body.errors)
    assert.equal(41, #body.items)
    local on_server = ids_on_server(server.url, "bi")
    local rejected = 0
    for i, item in ipairs(body.items) do
      local op, r = next(item)
      if i == 41 then assert.equal("delete", op) else assert.equal("index", op) end
      if r.status == 429 then
        rejected = rejected + 1
        assert.equal("es_rejected_execution_exception", r.error.type)
        assert.equal(i <= 40 and tostring(i) or "nope", r._id)
        assert.is_nil(on_server[r._id])
      else
        assert.equal(i <= 40 and tostring(i) or "nope", r._id)
        assert.equal(i <= 40 and 201 or 404, r.status)
        if i <= 40 then assert.is_true(on_server[r._id]) end
      end
    end
    assert.is_true(rejected >= 10 and rejected <= 11, "rejected " .. rejected)
    local st = p:stats()
    assert.equal(rejected, st.items_failed)
    assert.equal(count(server.url, "bi"), 40 - (body.items[41].delete.status == 429 and rejected - 1 or rejected))
  end)

  it("bulk_items: honours filter_path, a gzip body and an index in the URL", function()
    local p = start{ { match = "_bulk", action = "bulk_items", fraction = 0.5 } }
    local lines = {}
    for i = 1, 20 do
      lines[#lines + 1] = { create = { _id = "g" .. i } }
      lines[#lines + 1] = { n = i }
    end
    local fp = "errors,items.*.status,items.*.error.type"
    local res = http.request{ method = "POST", url = p.url .. "/bz/_bulk?filter_path=" .. fp,
                              body = http.ndjson(lines), gzip = true,
                              headers = { ["Content-Type"] = "application/x-ndjson" } }
    assert.equal(200, res.status)
    local body = require("espipe.json").decode(res.body)
    assert.is_true(body.errors)
    assert.is_nil(body.took)
    local rejected = 0
    for _, item in ipairs(body.items) do
      local r = item.create
      assert.is_nil(r._id) -- filtered away, on both kinds of item
      if r.status == 429 then
        rejected = rejected + 1
        assert.same({ type = "es_rejected_execution_exception" }, r.error)
      else
        assert.same({ status = 201 }, r)
      end
    end
    assert.equal(10, rejected)
    assert.equal(10, count(server.url, "bz"))
  end)

  it("bulk_items under espipe's indexer: every rejected item is retried, nothing lost or doubled", function()
    local p = start{ { match = "_bulk", action = "bulk_items", fraction = 0.3 } }
    local es = espipe.client{ hosts = { p.url } }
    local bi = es:bulk_indexer{ index = "ix", batch_docs = 50, backoff = { base = 0.001, max = 0.01 }, retries = 50 }
    for i = 1, 500 do assert(bi:index({ n = i }, { id = tostring(i) })) end
    local stats = assert(bi:close())
    es:close()
    assert.same({ 500, 500, 0 }, { stats.added, stats.ok, stats.failed })
    assert.is_true(p:stats().items_failed > 100)
    assert.is_true(stats.retried > 100)
    assert.equal(500, count(server.url, "ix"))
  end)

  it("relays chunked and gzip answers, chunked and 100-continue requests (echo server upstream)", function()
    local echo = require("support.echo_server").start{}
    local ok, err = pcall(function()
      proxy = fault_proxy.start{ upstream = echo.url, rules = {} }
      local function curl(args)
        local p = io.popen("curl -s " .. args .. " 2>&1; echo \" $?\"")
        local out = p:read("*a")
        p:close()
        return out:match("^(.-)%s*(%d+)%s*$")
      end
      -- nginx answers these chunked (and gzip-encoded under /gzip/)
      local body, rc = curl("--compressed '" .. proxy.url .. "/gzip/a?bytes=100000'")
      assert.same({ "0", 100000 }, { rc, #body })
      assert.equal(string.rep("x", 100000), body)
      body, rc = curl("-H 'Transfer-Encoding: chunked' -H 'Expect: 100-continue' --data-binary 'hello' '"
        .. proxy.url .. "/echo'")
      assert.equal("0", rc)
      local echoed = require("espipe.json").decode(body)
      assert.same({ "POST", "hello", 5 }, { echoed.method, echoed.body, echoed.received })
      -- cut after half the (decoded) body: curl sees fewer bytes than announced
      proxy:set_rules{ { match = "/a", action = "truncate" } }
      body, rc = curl("'" .. proxy.url .. "/a?bytes=1000'")
      assert.same({ "18", 500 }, { rc, #body })
    end)
    echo:stop()
    assert(ok, err)
  end)

  it("reset_request with after_bytes resets in the middle of the request body", function()
    local p = start{ { match = "_doc", action = "reset_request", after_bytes = 10 } }
    local body = '{"pad":"' .. string.rep("y", 100) .. '"}'
    local res = http.request{ method = "PUT", url = p.url .. "/mid/_doc/1", body = body }
    assert.equal(0, res.status)
    assert.equal(404, doc_status(server.url, "mid", 1))
    assert.equal(1, p:stats().reset_requests)
  end)

  it("refuses an upstream that is not loopback", function()
    local ok, err = pcall(fault_proxy.start, { upstream = "http://10.0.0.1:9200" })
    assert.is_false(ok)
    assert.matches("upstream must be http://127.0.0.1:PORT", tostring(err), 1, true)
    assert.has_error(function() fault_proxy.start{ upstream = server.url, rule = {} } end,
      "fault_proxy.start: unknown option 'rule'")
  end)
end)
