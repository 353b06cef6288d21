-- client:scan with raw_source: hits carry their _source as the exact JSON
-- text the server sent. First against a scripted transport (every Lua),
-- then against the dev server, whose stored sources are the bytes indexed.
local client_mod = require("espipe.client")
local json = require("espipe.json")
local script = require("spec.client.support.script_transport")
local errors = require("espipe.client.errors")

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

  it("refuses a query it could not send when asked, not while paging", function()
    local c = client_mod.new{ transport = script.new(pit_server({})) }
    local ok, err = pcall(function() local s = c:scan("src", { term = { f = print } }); return s end)
    assert.is_false(ok)
    assert.matches("^spec/client/scan_spec.lua:%d+: scan: query, sort, _source or resume cannot be sent as JSON", err)
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

-- A cluster holding `n` hits that serves both a PIT (search_after on the
-- hit number) and a scroll whose cursor advances when the server reads a
-- continuation, whether or not its answer reaches the client; `lose(req, k)`
-- turns the k-th request into a lost response (connection reset after the
-- server acted on it).
local function lossy_cluster(n, lose)
  local cursor, k = 0, 0
  local function page(from, size, extra)
    local hits = {}
    for i = from + 1, math.min(from + size, n) do
      hits[#hits + 1] = '{"_index":"src","_id":"d' .. i .. '","_source":{"i":' .. i .. '},"sort":[' .. i .. ']}'
    end
    return '{' .. extra .. '"hits":{"hits":[' .. table.concat(hits, ",") .. ']}}'
  end
  return function(req)
    k = k + 1
    local reset = { err = errors.new{ kind = "transport", code = "recv", message = "Connection reset by peer" } }
    if req.path:match("/_pit$") then return { status = 200, body = '{"id":"pit-1"}' } end
    if req.method == "DELETE" then return { status = 200, body = '{"succeeded":true}' } end
    local body = json.decode(req.body)
    if req.path == "/_search/scroll" or (req.query or ""):match("scroll=") then
      local size = body.size or 100
      local from = cursor
      cursor = cursor + (req.path == "/_search/scroll" and 100 or size)
      if lose(req, k) then return reset end
      return { status = 200, body = page(from, 100, '"_scroll_id":"s-1",') }
    end
    if lose(req, k) then return reset end
    local from = body.search_after and body.search_after[1] or 0
    return { status = 200, body = page(from, body.size, '"pit_id":"pit-1",') }
  end
end

describe("scan after a lost response", function()
  local function nth_scroll(nth)
    local seen = 0
    return function(req)
      if req.path ~= "/_search/scroll" then return false end
      seen = seen + 1
      return seen == nth
    end
  end

  it("fails a scroll whose continuation was lost, naming the page, instead of skipping it", function()
    local c = client_mod.new{ transport = script.new(lossy_cluster(1000, nth_scroll(3))) }
    local s = c:scan("src", nil, { method = "scroll", size = 100 })
    local n = 0
    local page, err
    repeat
      page, err = s:next_page()
      if page then n = n + #page.hits end
    until not page
    assert.are.equal(300, n) -- pages 1..3 arrived, page 4's answer was lost
    assert.is_not_nil(err)
    assert.are.equal(4, err.page)
    assert.matches("scroll page 4 lost", tostring(err))
    assert.matches("Connection reset by peer", tostring(err))
  end)

  it("raises from the for-loop forms", function()
    local c = client_mod.new{ transport = script.new(lossy_cluster(1000, nth_scroll(2))) }
    local n = 0
    local ok, err = pcall(function()
      for _ in c:scan("src", nil, { method = "scroll", size = 100 }) do n = n + 1 end
    end)
    assert.is_false(ok)
    assert.are.equal(200, n)
    assert.matches("scroll page 3 lost", tostring(err))
  end)

  it("asks a PIT page again from the last sort values: every hit once", function()
    local lost = { [3] = true, [4] = true, [9] = true }
    local c = client_mod.new{ transport = script.new(lossy_cluster(1000, function(_, k) return lost[k] end)) }
    local seen, n = {}, 0
    for hit in c:scan("src", nil, { size = 100 }) do
      assert.is_nil(seen[hit._id], hit._id)
      seen[hit._id] = true
      n = n + 1
    end
    assert.are.equal(1000, n)
  end)

  it("gives up on a PIT page once retry_for is spent", function()
    local c = client_mod.new{ transport = script.new(lossy_cluster(1000, function(req)
      return req.path == "/_search" end)) }
    local s = c:scan("src", nil, { size = 100, retry_for = 2 })
    local page, err = s:next_page()
    assert.is_nil(page)
    assert.matches("PIT page 1: Connection reset by peer", tostring(err))
    assert.is_true(err.attempts > 1)
  end)

  it("rejects an unknown option, naming the nearest one", function()
    local c = client_mod.new{ transport = script.new(pit_server({})) }
    assert.has_error(function() c:scan("src", nil, { slice = 2 }) end,
      "scan: unknown option 'slice' (did you mean 'slices'?)")
  end)
end)

describe("scan resume", function()
  -- 300 hits; a PIT is live when its id is in `live`
  local function cluster(live)
    local opened = 0
    return function(req)
      if req.path:match("/_pit$") then
        opened = opened + 1
        live["new-" .. opened] = true
        return { status = 200, body = '{"id":"new-' .. opened .. '"}' }
      end
      if req.method == "DELETE" then return { status = 200, body = '{"succeeded":true}' } end
      local body = json.decode(req.body)
      if not live[body.pit.id] then
        return { status = 404, body = '{"error":{"type":"search_context_missing_exception",'
          .. '"reason":"No search context found"},"status":404}' }
      end
      local from = body.search_after and body.search_after[1] or 0
      local hits = {}
      for i = from + 1, math.min(from + body.size, 300) do
        hits[#hits + 1] = '{"_id":"d' .. i .. '","_source":{},"sort":[' .. i .. ']}'
      end
      return { status = 200,
        body = '{"pit_id":"' .. body.pit.id .. '","hits":{"hits":[' .. table.concat(hits, ",") .. ']}}' }
    end
  end

  local function ids(s)
    local out = {}
    for hit in s do out[#out + 1] = hit._id end
    return out
  end

  it("goes on from the saved positions on the saved PIT, opening none", function()
    local t = script.new(cluster{ old = true })
    local c = client_mod.new{ transport = t }
    local s = c:scan("src", nil, { size = 100, pit_id = "old", resume = { ["0"] = { search_after = { 200 } } } })
    local got = ids(s)
    assert.are.equal(100, #got)
    assert.are.equal("d201", got[1])
    assert.is_nil(s.restarted)
    for _, r in ipairs(t.sent) do assert.is_false(r.method == "POST" and r.path == "/src/_pit", "a PIT was opened") end
    assert.are.same({ ["0"] = { search_after = { 300 }, done = true } }, s:positions())
  end)

  it("starts the unfinished slices again on a new PIT when the saved one is gone", function()
    local c = client_mod.new{ transport = script.new(cluster{}) }
    local s = c:scan("src", nil, { size = 100, pit_id = "old", resume = { ["0"] = { search_after = { 200 } } } })
    local got = ids(s)
    assert.are.equal(300, #got)
    assert.are.equal("d1", got[1])
    assert.are.same({ 0 }, s.restarted)
  end)

  it("fails a scan whose PIT expires midway instead of starting over", function()
    local live = {}
    local c = client_mod.new{ transport = script.new(cluster(live)) }
    local s = c:scan("src", nil, { size = 100 })
    assert.is_not_nil(s:next_page())
    live["new-1"] = nil
    local page, err
    repeat page, err = s:next_page() until not page
    -- (page 2 was already fetched ahead)
    assert.matches("PIT page 3: No search context found", tostring(err))
    assert.are.equal(404, err.status)
  end)
end)

describe("scan on a cluster without point in time", function()
  -- _pit is unknown (400, as Elasticsearch before 7.10 answers); scrolls work
  local function old_cluster()
    local sent = 0
    return function(req)
      if req.path == "/" then -- asked before the first request: which cluster is this?
        return { status = 200, body = '{"version":{"number":"7.9.3"},"tagline":"You Know, for Search"}' }
      end
      if req.path:match("/_pit$") then
        return { status = 400, body = '{"error":{"type":"illegal_argument_exception",'
          .. '"reason":"request [/src/_pit] contains unrecognized parameter: [keep_alive]"},"status":400}' }
      end
      if req.method == "DELETE" then return { status = 200, body = '{"succeeded":true}' } end
      sent = sent + 1
      local hits = {}
      if sent <= 2 then
        for i = 1, 100 do hits[i] = '{"_id":"p' .. sent .. '-' .. i .. '","_source":{},"sort":[' .. i .. ']}' end
      end
      return { status = 200, body = '{"_scroll_id":"s-1","hits":{"hits":[' .. table.concat(hits, ",") .. ']}}' }
    end
  end

  it("falls back to a scroll when no method was asked for", function()
    local c = client_mod.new{ transport = script.new(old_cluster()) }
    local s = c:scan("src", nil, { size = 100 })
    local n = 0
    for _ in s do n = n + 1 end
    assert.are.equal(200, n)
    assert.are.equal("scroll", s.method)
    assert.are.same({}, s:positions()) -- a scroll cannot be resumed
  end)

  for _, opts in ipairs{ { method = "pit" }, { resume = { ["0"] = { search_after = { 5 } } } } } do
    local what = next(opts)
    it("never turns a scan with " .. what .. " into a scroll, and fails naming the version", function()
      local t = script.new(old_cluster())
      local c = client_mod.new{ transport = t }
      opts.size = 100
      local page, err = c:scan("src", nil, opts):next_page()
      assert.is_nil(page)
      assert.are.equal("config", err.kind)
      assert.matches("elasticsearch 7.9.3 has no point%-in%-time API", tostring(err))
      -- the version read first: no request the cluster would refuse was sent
      for _, r in ipairs(t.sent) do assert.is_nil(r.path:match("/_pit$")) end
    end)
  end
end)
