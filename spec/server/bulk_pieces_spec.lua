-- _bulk bodies over 64 KB: the server reads them from the request socket in
-- 64 KB pieces and completes the action/source pairs a piece boundary cuts.
-- Each body here puts the boundary at a chosen place and checks that every
-- document is stored byte for byte and answered in order.
local devserver = require("spec.support.devserver")
local http = require("spec.support.http")
local json = require("espipe.server.json")

local NDJSON = { ["Content-Type"] = "application/x-ndjson" }
local PIECE = 65536

local function action(index, id, eol)
  return '{"index":{"_index":"' .. index .. '","_id":"' .. id .. '"}}' .. eol
end

-- A body whose second piece starts `offset` bytes into its second pair.
local function cut_body(index, offset, eol)
  local a1 = action(index, "first", eol)
  local pad = PIECE - offset - #a1 - #'{"n":1,"pad":""}' - #eol
  assert(pad > 0)
  local first = a1 .. '{"n":1,"pad":"' .. string.rep("x", pad) .. '"}' .. eol
  assert(#first == PIECE - offset)
  return first .. action(index, "second", eol) .. '{"n":2,"s":"two"}' .. eol
    .. action(index, "third", eol) .. '{"n":3}' .. eol
end

local function ids_of(body)
  local got = {}
  for i, item in ipairs(body.items) do
    local _, r = next(item)
    got[i] = r._id .. ":" .. r.status
  end
  return got
end

describe("espipe serve #server: _bulk bodies read in pieces", function()
  local server, url
  setup(function()
    server = devserver.start {}
    url = server.url
  end)
  teardown(function() server.stop() end)

  it("completes a pair cut anywhere by a piece boundary", function()
    for _, eol in ipairs({ "\n", "\r\n" }) do
      local a2 = #action("p", "second", eol)
      local src2 = #'{"n":2,"s":"two"}' + #eol
      -- at the pair's start, in its action line, between \r and \n, after
      -- the action line, in the source, on the source's newline
      for _, offset in ipairs({ 0, 1, 12, a2 - 1, a2, a2 + 5, a2 + src2 - 1 }) do
        local index = "p" .. (#eol == 2 and "crlf" or "lf") .. offset
        local status, body = http.json("POST", url .. "/_bulk", cut_body(index, offset, eol), NDJSON)
        assert.equal(200, status, index)
        assert.is_false(body.errors, index)
        assert.same({ "first:201", "second:201", "third:201" }, ids_of(body), index)
        local _, doc = http.json("GET", url .. "/" .. index .. "/_doc/second")
        assert.same({ n = 2, s = "two" }, doc._source, index)
        _, doc = http.json("GET", url .. "/" .. index .. "/_doc/first")
        assert.equal(PIECE - offset - #action(index, "first", eol) - 16 - #eol, #doc._source.pad, index)
        _, doc = http.json("GET", url .. "/" .. index .. "/_doc/third")
        assert.same({ n = 3 }, doc._source, index)
      end
    end
  end)

  it("keeps a document spanning several pieces byte for byte", function()
    local big = '{"big":"' .. string.rep("0123456789abcdef", 3 * PIECE / 16 + 7) .. '","z":[1,2.5,"\\u00e9"]}'
    local lines = {}
    for i = 1, 300 do
      lines[#lines + 1] = action("pbig", "d" .. i, "\n") .. '{"i":' .. i .. ',"s":"' .. string.rep("y", i) .. '"}\n'
      if i == 150 then lines[#lines + 1] = action("pbig", "big", "\n") .. big .. "\n" end
    end
    local status, body = http.json("POST", url .. "/_bulk", table.concat(lines), NDJSON)
    assert.equal(200, status)
    assert.is_false(body.errors)
    assert.equal(301, #body.items)
    assert.equal("big", body.items[151].index._id)
    assert.equal("d300", body.items[301].index._id)
    local res = http.request { url = url .. "/pbig/_doc/big" }
    assert.equal(200, res.status)
    assert.truthy(res.body:find(big, 1, true), "the stored source is the bytes sent")
    assert.equal(3 * PIECE + 7 * 16, #json.decode(res.body)._source.big)
    local _, d = http.json("GET", url .. "/pbig/_doc/d299")
    assert.same({ i = 299, s = string.rep("y", 299) }, d._source)
  end)

  it("fails the whole request on a malformed line in a later piece, with its line number", function()
    local lines = {}
    for i = 1, 400 do
      lines[#lines + 1] = action("pbad", "d" .. i, "\n") .. '{"i":' .. i .. ',"pad":"' .. string.rep("z", 300) .. '"}\n'
    end
    local good = table.concat(lines)
    assert.is_true(#good > 2 * PIECE)
    local status, body = http.json("POST", url .. "/_bulk", good .. '{}\n{"a":1}\n', NDJSON)
    assert.equal(400, status)
    assert.equal("Malformed action/metadata line [801], expected FIELD_NAME but found [END_OBJECT]", body.error.reason)
    assert.equal(404, (http.json("GET", url .. "/pbad/_doc/d1")))
    -- an action without its source at the very end
    status, body = http.json("POST", url .. "/_bulk", good .. action("pbad", "last", "\n"), NDJSON)
    assert.equal(400, status)
    assert.equal("Validation Failed: 1: source is missing;", body.error.reason)
    assert.equal(404, (http.json("GET", url .. "/pbad/_doc/d1")))
  end)

  it("takes the index from the URL for actions that name only _id, mixed with other shapes", function()
    -- the shape clients batching for one index send; a repeated prefix is the fast path
    local lines = {}
    for i = 1, 3000 do
      lines[#lines + 1] = '{"index":{"_id":"u' .. i .. '"}}\n{"n":' .. i .. '}\n'
      if i == 1500 then
        lines[#lines + 1] = '{"index":{"_index":"purl_other","_id":"o1"}}\n{"n":0}\n'
        lines[#lines + 1] = '{"create":{"_id":"u1"}}\n{"n":-1}\n'
        lines[#lines + 1] = '{"index":{"_id":"q\\"x"}}\n{"n":-2}\n'
      end
    end
    local status, body = http.json("POST", url .. "/purl/_bulk", table.concat(lines), NDJSON)
    assert.equal(200, status)
    assert.equal(3003, #body.items)
    assert.is_true(body.errors)
    for i, item in ipairs(body.items) do
      local op, r = next(item)
      if i == 1501 then
        assert.same({ "index", "purl_other", "o1", 201 }, { op, r._index, r._id, r.status })
      elseif i == 1502 then
        assert.same({ "create", "purl", "u1", 409 }, { op, r._index, r._id, r.status })
      elseif i == 1503 then
        assert.same({ "index", "purl", 'q"x', 201 }, { op, r._index, r._id, r.status })
      else
        local n = i <= 1500 and i or i - 3
        assert.same({ "index", "purl", "u" .. n, 201 }, { op, r._index, r._id, r.status })
      end
    end
    local _, doc = http.json("GET", url .. "/purl/_doc/u2999")
    assert.same({ n = 2999 }, doc._source)
    _, doc = http.json("GET", url .. "/purl/_doc/u1")
    assert.same({ n = 1 }, doc._source)
  end)

  it("answers 406 for a large body of the wrong content type", function()
    local res = http.request { method = "POST", url = url .. "/_bulk", body = cut_body("p406", 3, "\n"),
                               headers = { ["Content-Type"] = "text/plain" } }
    assert.equal(406, res.status)
    assert.equal(404, (http.json("GET", url .. "/p406/_doc/first")))
  end)
end)

describe("espipe serve #server: _bulk bodies read in pieces, --blackhole", function()
  local server, url
  setup(function()
    server = devserver.start { blackhole = true }
    url = server.url
  end)
  teardown(function() server.stop() end)

  it("acknowledges every item of a multi-piece body in order", function()
    for _, offset in ipairs({ 0, 7, 45 }) do
      local status, body = http.json("POST", url .. "/_bulk", cut_body("bh", offset, "\n"), NDJSON)
      assert.equal(200, status)
      assert.same({ "first:201", "second:201", "third:201" }, ids_of(body))
    end
  end)
end)
