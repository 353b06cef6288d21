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
