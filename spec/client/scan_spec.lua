-- client:scan with raw_source: hits carry their _source as the exact JSON
-- text the server sent. First against a scripted transport (every Lua),
-- then against the dev server, whose stored sources are the bytes indexed.
local client_mod = require("espipe.client")
local json = require("espipe.json")
local script = require("spec.client.support.script_transport")

-- Sources that a decode/encode round trip would change.
local TRICKY = {
  '{"big":123456789012345678901234567890,"n":9007199254740993,"neg":-9223372036854775809}',
  '{"f":1.0,"i":1,"e":1E+2,"z":-0,"small":1.5e-300,"half":0.50}',
  '{"a":[],"o":{},"nested":{"x":[{},[],[[]]]}}',
  '{"u":"\\u00e9\\ud83d\\ude00","slash":"a\\/b","q":"\\"\\\\","ctl":"\\n\\t\\u0001"}',
  '{ "spaced" : [ 1 , 2 ] ,\n  "t" : true , "nil" : null }',
  '{"k":"caf\195\169 \240\159\152\128","dup":1,"dup":2}',
  '{}',
}

-- A PIT scan served from `sources`, `size` hits per page.
local function pit_server(sources)
  return function(req)
    if req.method == "POST" and req.path:match("/_pit$") then
      return { status = 200, body = '{"id":"cGl0LTE="}' }
    end
    if req.method == "DELETE" and req.path == "/_pit" then
      return { status = 200, body = '{"succeeded":true,"num_freed":1}' }
    end
    assert(req.path == "/_search", "unexpected " .. req.method .. " " .. req.path)
    local body = assert(json.decode(req.body))
    local from = body.search_after and body.search_after[1] or 0
    local hits = {}
    for i = from + 1, math.min(from + body.size, #sources) do
      hits[#hits + 1] = '{"_index":"src","_id":"d' .. i .. '","_score":null,"_source":' ..
        sources[i] .. ',"sort":[' .. i .. ']}'
    end
    return { status = 200, body = '{"pit_id":"cGl0LTE=","took":1,"timed_out":false,' ..
      '"hits":{"total":{"value":' .. #sources .. ',"relation":"eq"},"max_score":null,"hits":[' ..
      table.concat(hits, ",") .. ']}}' }
  end
end

describe("scan with raw_source", function()
  it("yields every _source as the bytes the server sent", function()
    local t = script.new(pit_server(TRICKY))
    local c = client_mod.new{ transport = t }
    local got = {}
    for hit in c:scan("src", nil, { raw_source = true, size = 3 }) do
      got[#got + 1] = hit
    end
    assert.are.equal(#TRICKY, #got)
    for i, hit in ipairs(got) do
      assert.are.equal(TRICKY[i], hit._source)
      assert.are.equal("d" .. i, hit._id)
      assert.are.equal("src", hit._index)
    end
    -- three pages were asked for, each resuming after the last sort value
    local searches = {}
    for _, s in ipairs(t.sent) do
      if s.path == "/_search" then searches[#searches + 1] = json.decode(s.body) end
    end
    assert.are.equal(3, #searches)
    assert.is_nil(searches[1].search_after)
    assert.are.same({ 3 }, searches[2].search_after)
    assert.are.same({ 6 }, searches[3].search_after)
    assert.are.equal("DELETE", t.sent[#t.sent].method)
  end)

  it("decodes sources by default, on the same pages", function()
    local c = client_mod.new{ transport = script.new(pit_server(TRICKY)) }
    local n = 0
    for hit in c:scan("src", nil, { size = 4 }) do
      n = n + 1
      assert.are.equal("table", type(hit._source))
    end
    assert.are.equal(#TRICKY, n)
  end)

  it("fails a scan whose page is not valid JSON, naming the byte", function()
    local page = '{"hits":{"hits":[{"_id":"1","_source":{"a":01}}]}}'
    local c = client_mod.new{ transport = script.new(function(req)
      if req.path:match("/_pit$") then return { status = 200, body = '{"id":"p"}' } end
      if req.method == "DELETE" then return { status = 200, body = "{}" } end
      return { status = 200, body = page }
    end) }
    local ok, err = pcall(function() for _ in c:scan("src", nil, { raw_source = true }) do end end)
    assert.is_false(ok)
    assert.are.equal("bad_response", err.type)
    assert.are.equal(page:find("01", 1, true), err.offset)
    assert.matches("leading zero in number", tostring(err))
  end)

  it("rejects a raw_source that is not a boolean", function()
    local c = client_mod.new{ transport = script.new(pit_server({})) }
    assert.has_error(function() c:scan("src", nil, { raw_source = "yes" }) end,
      "scan: raw_source must be a boolean")
  end)
end)

describe("scan with raw_source against espipe serve #server", function()
  local devserver = require("support.devserver")
  local srv, c
  local sources = {}

  setup(function()
    srv = devserver.start{}
    c = client_mod.new{ hosts = { srv.url } }
    for i, s in ipairs(TRICKY) do sources["t" .. i] = s end
    -- enough plain documents for several pages and both slices
    for i = 1, 230 do
      sources["g" .. i] = string.format('{"i":%d,"x":%d.0,"s":"line %d\\nnext","l":[]}', i, i, i)
    end
    for id, s in pairs(sources) do
      assert(c:index{ index = "raw", id = id, body = s })
    end
    assert(c:refresh{ index = "raw" })
  end)

  teardown(function()
    if srv then srv.stop() end
  end)

  local function check(opts)
    local seen, n = {}, 0
    for hit in c:scan("raw", nil, opts) do
      assert.is_nil(seen[hit._id])
      seen[hit._id] = true
      n = n + 1
      assert.are.equal(sources[hit._id], hit._source)
    end
    local want = 0
    for _ in pairs(sources) do want = want + 1 end
    assert.are.equal(want, n)
  end

  it("gives back every source byte for byte, with a point in time", function()
    check{ raw_source = true, size = 50 }
  end)

  it("and with sliced scrolls", function()
    check{ raw_source = true, method = "scroll", slices = 2, size = 40 }
  end)
end)
