-- `espipe serve` option handling and the generated nginx.conf: pure Lua,
-- so these run on every Lua.
local serve = require("espipe.cli.serve")
local nginx_conf = require("espipe.server.nginx_conf")
local chaos = require("espipe.server.chaos")

describe("espipe serve options", function()
  it("defaults to one loopback node on 9200 with a 100mb body limit", function()
    local o = assert(serve.parse_args({}))
    assert.equal("127.0.0.1", o.host)
    assert.equal(9200, o.port)
    assert.equal(1, o.nodes)
    assert.equal(104857600, o.max_content_length)
  end)

  it("reads every flag, with values after a space or an =", function()
    local o = assert(serve.parse_args({ "--port=9300", "--nodes", "3", "--data", "/tmp/x", "--seed", "7",
      "--chaos", "bulk_429=0.5", "--blackhole", "--workers", "2", "--max-content-length", "512kb" }))
    assert.same({ 9300, 3, "/tmp/x", 7, "bulk_429=0.5", true, 2, 524288 },
      { o.port, o.nodes, o.data, o.seed, o.chaos, o.blackhole, o.workers, o.max_content_length })
  end)

  it("refuses more than one worker unless the server is a blackhole", function()
    local o, err = serve.parse_args({ "--workers", "2" })
    assert.is_nil(o)
    assert.matches("needs %-%-blackhole", err)
  end)

  it("names what is wrong", function()
    assert.matches("unknown option %-%-bogus", select(2, serve.parse_args({ "--bogus" })))
    assert.matches("%-%-port needs a value", select(2, serve.parse_args({ "--port" })))
    assert.matches("non%-negative integer, got x", select(2, serve.parse_args({ "--nodes", "x" })))
    assert.matches("size like 100mb", select(2, serve.parse_args({ "--max-content-length", "lots" })))
    assert.matches("unknown key 'bulk_430'", select(2, serve.parse_args({ "--chaos", "bulk_430=1" })))
  end)
end)

describe("chaos specs", function()
  it("parse rates and latency durations", function()
    local c = assert(chaos.parse("bulk_429=0.05,item_429=0.2,503=0.05,latency=0.1:50ms,reset=0.02"))
    assert.same({ bulk_429 = 0.05, item_429 = 0.2, ["503"] = 0.05, latency = 0.1, latency_seconds = 0.05,
                  reset = 0.02 }, c)
  end)

  it("reject rates outside [0, 1] and durations without rate", function()
    assert.matches("between 0 and 1", select(2, chaos.parse("bulk_429=1.5")))
    assert.matches("rate:duration", select(2, chaos.parse("latency=50ms")))
  end)

  it("draw the same sequence for the same seed, another for another seed", function()
    local a, b, c = chaos.rng(42), chaos.rng(42), chaos.rng(43)
    local sa, sb, sc = {}, {}, {}
    for i = 1, 50 do sa[i], sb[i], sc[i] = a:next(), b:next(), c:next() end
    assert.same(sa, sb)
    assert.are_not.same(sa, sc)
    for _, x in ipairs(sa) do assert.is_true(x > 0 and x < 1) end
  end)

  it("hit about rate of the time", function()
    local r, hits = chaos.rng(1), 0
    for _ = 1, 10000 do if r:hit(0.2) then hits = hits + 1 end end
    assert.is_true(hits > 1800 and hits < 2200, "hits " .. hits)
  end)
end)

describe("nginx.conf", function()
  local conf = nginx_conf.build {
    prefix = "/tmp/p", pid_file = "/tmp/p/x.pid", host = "127.0.0.1", port = 9400, nodes = 3, workers = 1,
    lua_root = "/src/lua", max_content_length = 1000, run_as_root = false,
    app = { port = 9400, nodes = 3, chaos = "reset=0.5", blackhole = false },
  }

  it("loads the lua module and listens once per node", function()
    assert.truthy(conf:find("load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;", 1, true))
    for p = 9400, 9402 do assert.truthy(conf:find("listen 127.0.0.1:" .. p .. ";", 1, true)) end
    assert.falsy(conf:find("9403", 1, true))
  end)

  it("limits bodies and sends the product header on nginx's own errors", function()
    assert.truthy(conf:find("client_max_body_size 1000;", 1, true))
    assert.truthy(conf:find("add_header X-Elastic-Product Elasticsearch always;", 1, true))
    assert.truthy(conf:find('lua_package_path "/src/lua/?.lua;', 1, true))
  end)

  it("embeds the options as a Lua literal that reads back", function()
    local lit = conf:match("configure%((%b{})%)")
    local back = (loadstring or load)("return " .. lit)()
    assert.same({ port = 9400, nodes = 3, chaos = "reset=0.5", blackhole = false }, back)
  end)

  it("finds the Lua modules of the running command", function()
    local root = assert(nginx_conf.lua_root())
    local f = io.open(root .. "/espipe/server/app.lua")
    assert.truthy(f)
    f:close()
  end)
end)
