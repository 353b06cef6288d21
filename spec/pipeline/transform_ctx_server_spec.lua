-- A transform's ctx against real services: mget and search on the dev
-- server (the job's cluster, and another one named by URL), HTTP lookups on
-- nginx (spec/support/echo_server), the cache, and failures that come back
-- as nil, err through the fault proxy.
local devserver = require "support.devserver"
local echo_server = require "support.echo_server"
local fault_proxy = require "support.fault_proxy"
local transform_ctx = require "espipe.pipeline.transform_ctx"
local json = require "espipe.json"

describe("transform ctx #server", function()
  local env = devserver.env { nodes = 1 }
  local echo
  setup(function()
    env.start()
    echo = echo_server.start()
    for i = 1, 5 do
      assert(env.client:index { index = "users", id = "u" .. i, body = { name = "user " .. i } })
    end
    assert(env.client:refresh { index = "users" })
  end)
  teardown(function()
    echo:stop()
    env.stop()
  end)

  it("mget: the sources of the ids found, each id asked once; missing ones absent", function()
    local ctx = transform_ctx.new { client = env.client }
    local found = assert(ctx:mget("users", { "u1", "u3", "nope", "u1", 5 }))
    assert.same({ name = "user 1" }, found.u1)
    assert.same({ name = "user 3" }, found.u3)
    assert.is_nil(found.nope)
    assert.is_nil(found["5"])
    ctx:close()
  end)

  it("mget reads another cluster named by URL", function()
    local ctx = transform_ctx.new { client = require("espipe").client { hosts = { echo.url } } }
    local found = assert(ctx:mget(env.server.url .. "/users", { "u2" }))
    assert.same({ name = "user 2" }, found.u2)
    ctx:close()
  end)

  it("mget of a missing index is an err, not an empty answer", function()
    local ctx = transform_ctx.new { client = env.client }
    local found, err = ctx:mget("no-such-index", { "u1" })
    assert.is_nil(found)
    assert.truthy(tostring(err):find("no-such-index", 1, true))
  end)

  it("the cache answers ids seen before without asking again", function()
    local proxy = fault_proxy.start { upstream = env.server.url, rules = {} }
    local ctx = transform_ctx.new { client = require("espipe").client { hosts = { proxy.url } }, cache = 100 }
    assert(ctx:mget("users", { "u1", "u2", "missing" }))
    local again = assert(ctx:mget("users", { "u1", "u2", "missing" }))
    assert.same({ name = "user 2" }, again.u2)
    assert.is_nil(again.missing)
    assert.equal(1, proxy:stats().forwarded)
    assert.equal(3, ctx.cache.hits)
    ctx:close()
    proxy:stop()
  end)

  it("a lookup the network loses is retried; one that keeps failing is an err, never a changed answer", function()
    local proxy = fault_proxy.start { upstream = env.server.url,
      rules = { { match = "_mget", action = "reset_response", times = 1 } } }
    local ctx = transform_ctx.new { client = require("espipe").client { hosts = { proxy.url } }, retries = 2 }
    local found = assert(ctx:mget("users", { "u4" }))
    assert.same({ name = "user 4" }, found.u4)
    proxy:set_rules { { match = "_mget", action = "stall" } }
    local ctx2 = transform_ctx.new { client = require("espipe").client { hosts = { proxy.url } },
      timeout = 0.3, retries = 1 }
    local none, err = ctx2:mget("users", { "u4" })
    assert.is_nil(none)
    assert.equal("timeout", err.code)
    assert.equal(2, err.attempts)
    ctx:close()
    ctx2:close()
    proxy:stop()
  end)

  it("search returns the decoded answer", function()
    local ctx = transform_ctx.new { client = env.client }
    local r = assert(ctx:search("users", { query = { term = { _id = "u5" } } }))
    assert.equal("u5", r.hits.hits[1]._id)
  end)

  it("http and all: answers in order, failures as errs", function()
    local ctx = transform_ctx.new { client = env.client, concurrency = 3 }
    local one = assert(ctx:http { url = echo.url .. "/one?x=1", method = "POST", body = "hi",
      headers = { ["x-k"] = "v" } })
    local v = json.decode(one.body)
    assert.equal("POST", v.method)
    assert.equal("x=1", v.args)
    assert.equal("hi", v.body)
    assert.equal("v", v.headers["x-k"])
    local reqs = {}
    for i = 1, 6 do reqs[i] = { url = echo.url .. "/n" .. i .. (i == 4 and "?status=500" or "") } end
    local results, errs = ctx:all(reqs)
    for i = 1, 6 do
      if i == 4 then
        assert.is_nil(results[i])
        assert.equal(500, errs[i].status)
      else
        assert.equal("/n" .. i, json.decode(results[i].body).uri)
      end
    end
    ctx:close()
  end)

  it("refuses credentials in an HTTP lookup's URL (they would not be sent)", function()
    local ctx = transform_ctx.new { client = env.client }
    assert.has_error(function() ctx:http { url = "http://u:p@127.0.0.1:1/x" } end,
      "ctx:http: credentials in the URL are not sent; give an authorization header")
    assert.has_error(function() ctx:http { uri = "http://127.0.0.1:1/" } end)
  end)
end)
