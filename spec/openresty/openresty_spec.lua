-- espipe inside a real nginx (Debian's, with the Lua module): the example of
-- examples/openresty run against the dev server, with the C core built for
-- LuaJIT and the cosocket transport.
local devserver = require "support.devserver"
local http = require "support.http"
local nginx = require "support.nginx"
local cjson = require "cjson"
local example = require "openresty.example"

local start_example, settled, count, reset, hit = example.start, example.settled, example.count,
  example.reset, example.hit

describe("OpenResty example #server", function()
  local es, app

  after_each(function()
    if app then app.stop(); app = nil end
    if es then es.stop(); es = nil end
  end)

  it("ships one document per request from log_by_lua", function()
    es = devserver.start{ cluster = true }
    reset(es, "nginx-access")
    app = start_example(es.url)
    local n = 300
    hit(app, n)
    local s = settled(app, n, 30)
    assert.same({ n, 0, 0 }, { s.shipped, s.failed, s.dropped })
    assert.equal(n, count(es, "nginx-access"))
    local res = http.request{ method = "POST", url = es.url .. "/nginx-access/_search",
      body = '{"query":{"term":{"uri.keyword":"/page/17"}}}', headers = { ["content-type"] = "application/json" } }
    local hits = cjson.decode(res.body).hits.hits
    assert.equal(1, #hits)
    assert.equal("17", hits[1]._source.args:match("q=(%d+)"))
    assert.equal(200, hits[1]._source.status)
  end)

  it("ships without a spool too (no spool_dir)", function()
    es = devserver.start{ cluster = true }
    reset(es, "nginx-access")
    app = example.start(es.url, { edit = function(conf)
      local out, n = conf:gsub('\n%s*spool_dir = [^\n]*', "")
      assert(n == 1, "example nginx.conf: spool_dir line not found")
      return out
    end })
    hit(app, 200)
    local s = settled(app, 200, 30)
    assert.same({ 200, 0, 0 }, { s.shipped, s.failed, s.dropped })
    assert.is_nil(s.spool_files)
    assert.equal(200, count(es, "nginx-access"))
  end)

  it("loses nothing under 429s, 503s and per-item rejections", function()
    es = devserver.start{ chaos = "bulk_429=0.1,item_429=0.2,503=0.05", seed = 7 }
    app = start_example(es.url)
    local n = 400
    hit(app, n)
    local s = settled(app, n, 60)
    assert.same({ n, 0, 0 }, { s.shipped, s.failed, s.dropped })
    assert.is_true(s.retried > 0, "chaos injected no retry")
    assert.equal(n, count(es, "nginx-access"))
  end)

  it("answers other requests while a bulk request is in flight (the worker is not blocked)", function()
    -- every _bulk waits 3 s at the server: the /ingest request stays in flight
    es = devserver.start{ chaos = "latency=1:3000ms", seed = 1 }
    app = start_example(es.url)
    local lines = {}
    for i = 1, 2000 do lines[i] = cjson.encode{ n = i, msg = string.rep("x", 100) } end
    local ingest = nginx.spawn_curl{ url = app.url .. "/ingest?index=bulkload", method = "POST",
                                     body = table.concat(lines, "\n") .. "\n" }
    nginx.wait_for(function()
      local s = http.request{ url = es.url .. "/_espipe/stats" }
      return s.status == 200 and s.body:find('"latency":[1-9]') ~= nil
    end, 10)
    local res = http.request{ url = app.url .. "/quick" }
    assert.equal(200, res.status)
    assert.is_true(ingest.running(), "the bulk finished before the quick request was answered")
    local out = ingest.wait(30)
    local body = cjson.decode(out)
    assert.same({ 2000, 2000 }, { body.received, body.indexed })
    assert.equal(2000, count(es, "bulkload"))
  end)

  it("answers /ingest with the outcome of each line", function()
    es = devserver.start{ cluster = true }
    reset(es, "strict")
    app = start_example(es.url)
    local res = http.request{ method = "PUT", url = es.url .. "/strict",
      headers = { ["content-type"] = "application/json" },
      body = '{"mappings":{"dynamic":"strict","properties":{"n":{"type":"long"}}}}' }
    assert.equal(200, res.status)
    local body = table.concat({
      '{"n":1}', '{"n":2,"extra":true}', 'not json', '{"n":"abc"}', '{"n":5}',
    }, "\n") .. "\n"
    local out = http.request{ method = "POST", url = app.url .. "/ingest?index=strict", body = body }
    assert.equal(207, out.status)
    local r = cjson.decode(out.body)
    assert.equal(4, r.received)
    assert.equal(2, r.indexed)
    local by_line = {}
    for _, f in ipairs(r.failed) do by_line[f.line] = f end
    assert.equal("strict_dynamic_mapping_exception", by_line[2].type)
    assert.equal("parse_error", by_line[3].type)
    assert.equal("document_parsing_exception", by_line[4].type)
    assert.is_nil(by_line[1])
    assert.is_nil(by_line[5])
    assert.equal(2, count(es, "strict"))
  end)
end)
