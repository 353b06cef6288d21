-- espipe.client (its constructor and options) without a server.
local client_mod = require("espipe.client")

describe("espipe.client options", function()
  it("rejects an unknown key, naming the nearest valid one (a typo must not fall back to localhost)", function()
    local ok, err = pcall(client_mod.new, { hots = { "http://127.0.0.1:1" } })
    assert.is_false(ok)
    assert.matches("espipe.client: unknown option 'hots' %(did you mean 'hosts'%?%)", err)
    ok, err = pcall(client_mod.new, { hosts = { "http://127.0.0.1:1" }, timout = 3 })
    assert.is_false(ok)
    assert.matches("unknown option 'timout' %(did you mean 'timeout'%?%)", err)
  end)

  it("takes every transport option and a transport of its own", function()
    local c = client_mod.new{ hosts = { "http://127.0.0.1:1" }, timeout = 3, connect_timeout = 1,
                             max_inflight = 2, dead_host_retry = 5, compress = false }
    c:close()
  end)
end)

describe("espipe.client's view of its transport", function()
  it("lists its hosts without credentials and adds nodes found later once", function()
    local c = client_mod.new{ hosts = { "http://elastic:secret@127.0.0.1:1", "http://127.0.0.1:2/" } }
    assert.are.same({ "http://127.0.0.1:1", "http://127.0.0.1:2" }, c:hosts())
    assert.are.equal(3, c:add_host("http://10.0.0.7:9200"))
    assert.are.equal(3, c:add_host("http://10.0.0.7:9200"))
    assert.are.equal(2, c:add_host("http://127.0.0.1:2"))
    assert.are.same({ "http://127.0.0.1:1", "http://127.0.0.1:2", "http://10.0.0.7:9200" }, c:hosts())
    assert.has_error(function() c:add_host("ftp://x") end)
    c:close()
  end)

  it("counts the requests in flight until their answers are collected", function()
    local c = client_mod.new{ hosts = { "http://127.0.0.1:1" }, connect_timeout = 1 }
    assert.are.equal(0, c:inflight())
    local owner = { inbox = {} }
    assert.is_number(c:_submit(owner, { method = "GET", path = "/" }))
    assert.are.equal(1, c:inflight())
    local done = {}
    while #done == 0 do done = c:_wait(owner, 1) end
    assert.are.equal(0, c:inflight())
    c:close()
  end)
end)

describe("espipe.client helpers", function()
  it("report wrong arguments at the caller's line", function()
    local c = client_mod.new{ hosts = { "http://127.0.0.1:1" } }
    local calls = {
      function() local s = c:scan("") return s end,
      function() local s = c:scan("x", nil, { slices = 0 }) return s end,
      function() local s = c:scan("x", nil, { slicez = 1 }) return s end,
      function() local b = c:bulk_indexer{ batch_docs = 0 } return b end,
      function() local b = c:bulk_indexer{ shard_aware = 1 } return b end,
      function() local b = c:bulk_indexer{ batch_doc = 1 } return b end,
    }
    for i, call in ipairs(calls) do
      local ok, err = pcall(call)
      assert.is_false(ok)
      assert.matches("^spec/client/client_spec.lua:%d+: ", err, "call " .. i)
    end
    c:close()
  end)
end)
