-- espipe.transport.hosts: the host list and query strings both transports
-- (curl, cosockets) use.
local hosts = require("espipe.transport.hosts")

local function list_of(...)
  local records = {}
  for i, url in ipairs{ ... } do records[i] = { url = url } end
  return hosts.new(records, 30)
end

describe("transport host list", function()
  it("goes round the configured hosts", function()
    local l = list_of("http://a", "http://b", "http://c")
    local got = {}
    for i = 1, 6 do got[i] = l:pick(100) end
    assert.are.same({ 1, 2, 3, 1, 2, 3 }, got)
  end)

  it("skips a host set aside until dead_host_retry has passed, then tries it again", function()
    local l = list_of("http://a", "http://b")
    l:set_aside(1, 100)
    assert.are.same({ 2, 2 }, { l:pick(101), l:pick(101) })
    assert.are.equal(1, l:pick(130))
    l:revive(1)
    assert.is_nil(l:get(1).dead_until)
  end)

  it("uses the host dead longest when all are set aside", function()
    local l = list_of("http://a", "http://b")
    l:set_aside(2, 100)
    l:set_aside(1, 105)
    assert.are.equal(2, l:pick(110))
    -- failing again while set aside keeps when its run of failures began
    l:set_aside(2, 111)
    assert.are.equal(100, l:get(2).dead_since)
    -- failing after its time was up starts a new run
    l:set_aside(1, 140)
    assert.are.equal(140, l:get(1).dead_since)
  end)

  it("adds hosts found later for pinned requests only, once per URL", function()
    local l = list_of("http://a")
    assert.are.equal(2, l:add{ url = "http://n1" })
    assert.are.equal(2, l:add{ url = "http://n1" })
    assert.are.equal(1, l:add{ url = "http://a" })
    for _ = 1, 3 do assert.are.equal(1, l:pick(0)) end
    assert.are.same({ "http://a", "http://n1" }, l:urls())
    assert.are.equal(2, l:count())
  end)
end)

describe("transport query strings", function()
  it("sorts keys and writes values as Elasticsearch reads them", function()
    assert.are.equal("a=1&b=true&c=x%20y&d=2.5",
      hosts.query{ d = 2.5, c = "x y", b = true, a = 1.0 })
  end)

  it("joins array values with commas (the cosocket transport once sent 'table: 0x...')", function()
    assert.are.equal("filter_path=items.*.error,took&h=1,2",
      hosts.query{ filter_path = { "items.*.error", "took" }, h = { 1, 2 } })
  end)

  it("sends a string as it is, and nothing for nil, an empty string or table", function()
    assert.are.equal("refresh=true", hosts.query("refresh=true"))
    assert.is_nil(hosts.query(nil))
    assert.is_nil(hosts.query(""))
    assert.is_nil(hosts.query({}))
  end)

  it("raises at the caller for values that have no query form", function()
    local function caller() local s = hosts.query({ f = print }, 2); return s end
    local ok, err = pcall(function() caller() end)
    assert.is_false(ok)
    assert.matches("hosts_spec.lua:%d+: query.f must be a string, number, boolean or array, got function", err)
    assert.has_error(function() hosts.query(42) end, "query must be a string or a table")
    assert.has_error(function() hosts.query{ [1] = "x" } end, "query keys must be strings")
  end)
end)
