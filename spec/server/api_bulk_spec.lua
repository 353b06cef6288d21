-- _bulk: item results and errors as ES gives them, the NDJSON rules,
-- gzip bodies, the 413 limit, filter_path, mappings enforced per item.
local devserver = require("spec.support.devserver")
local http = require("spec.support.http")

local NDJSON = { ["Content-Type"] = "application/x-ndjson" }

describe("espipe serve #server: _bulk", function()
  local server, url
  setup(function()
    server = devserver.start { args = { "--max-content-length", "64kb" } }
    url = server.url
  end)
  teardown(function() server.stop() end)

  it("returns the updated source in an update item's get when the action, body or URL asks", function()
    http.bulk(url, { { index = { _index = "bg", _id = "1" } }, { foo = "bar", bar = "foo" } })
    local _, body = http.bulk(url, {
      { update = { _index = "bg", _id = "1", _source = { includes = "foo" } } }, { doc = { foo = "baz" } },
      { update = { _index = "bg", _id = "1" } }, { doc = { foo = "qux" } },
    })
    assert.same({ foo = "baz" }, body.items[1].update.get._source)
    assert.is_true(body.items[1].update.get.found)
    assert.is_nil(body.items[2].update.get)
    _, body = http.bulk(url .. "/bg", { { update = { _id = "1" } }, { doc = { foo = "x" } } }, "?_source_includes=bar")
    assert.same({ bar = "foo" }, body.items[1].update.get._source)
  end)

  it("answers an index action with op_type create as a create", function()
    local _, body = http.bulk(url, {
      { index = { _index = "bo", _id = "1", op_type = "create" } }, { a = 1 },
      { index = { _index = "bo", _id = "1", op_type = "create" } }, { a = 2 },
    })
    assert.equal(201, body.items[1].create.status)
    assert.equal(409, body.items[2].create.status)
  end)

  it("runs all four actions and answers per item, 200 even when items fail", function()
    local status, body = http.bulk(url, {
      { index = { _index = "b1", _id = "1" } }, { a = 1 },
      { create = { _index = "b1", _id = "2" } }, { a = 2 },
      { update = { _index = "b1", _id = "1" } }, { doc = { b = 1 } },
      { delete = { _index = "b1", _id = "2" } },
      { delete = { _index = "b1", _id = "zz" } },
      { create = { _index = "b1", _id = "1" } }, { a = 3 },
      { update = { _index = "b1", _id = "nope" } }, { doc = { b = 1 } },
    })
    assert.equal(200, status)
    assert.is_true(body.errors)
    local got = {}
    for i, item in ipairs(body.items) do
      local op, r = next(item)
      got[i] = { op, r.status, r.result or r.error.type }
    end
    assert.same({
      { "index", 201, "created" }, { "create", 201, "created" }, { "update", 200, "updated" },
      { "delete", 200, "deleted" }, { "delete", 404, "not_found" },
      { "create", 409, "version_conflict_engine_exception" }, { "update", 404, "document_missing_exception" },
    }, got)
    assert.equal(2, body.items[3].update._version)
    assert.equal("[1]: version conflict, document already exists (current version [2])", body.items[6].create.error.reason)
    assert.equal("b1", body.items[6].create.error.index)
  end)

  it("uses the index of the path as default and skips blank lines", function()
    local res = http.request { method = "POST", url = url .. "/b2/_bulk", headers = NDJSON,
      body = '{"index":{"_id":"1"}}\n{"a":1}\n\n{"index":{"_id":"2"}}\r\n{"a":2}\r\n' }
    assert.equal(200, res.status)
    local _, got = http.json("GET", url .. "/b2/_doc/2")
    assert.same({ a = 2 }, got._source)
  end)

  it("requires the trailing newline", function()
    local res = http.request { method = "POST", url = url .. "/_bulk", headers = NDJSON,
      body = '{"index":{"_index":"b3"}}\n{"a":1}' }
    assert.equal(400, res.status)
    local body = require("espipe.server.json").decode(res.body)
    assert.equal("illegal_argument_exception", body.error.type)
    assert.equal("The bulk request must be terminated by a newline [\\n]", body.error.reason)
    assert.equal(body.error.reason, body.error.root_cause[1].reason)
    assert.truthy(res.body:find("newline [\\\\n]", 1, true))
  end)

  it("fails the whole request on a malformed action line", function()
    local status, body = http.json("POST", url .. "/_bulk", '{}\n{"a":1}\n', NDJSON)
    assert.equal(400, status)
    assert.equal("Malformed action/metadata line [1], expected FIELD_NAME but found [END_OBJECT]", body.error.reason)
    status, body = http.json("POST", url .. "/_bulk", '{"index":{"_index":"x","bogus":1}}\n{"a":1}\n', NDJSON)
    assert.equal(400, status)
    assert.equal("Action/metadata line [1] contains an unknown parameter [bogus]", body.error.reason)
    status, body = http.json("POST", url .. "/_bulk", "\n", NDJSON)
    assert.equal(400, status)
    assert.equal("Validation Failed: 1: no requests added;", body.error.reason)
  end)

  it("accepts gzip bodies", function()
    local res = http.request { method = "POST", url = url .. "/_bulk", headers = NDJSON, gzip = true,
      body = http.ndjson({ { index = { _index = "gz", _id = "1" } }, { zipped = true } }) }
    assert.equal(200, res.status)
    local _, got = http.json("GET", url .. "/gz/_doc/1")
    assert.same({ zipped = true }, got._source)
  end)

  it("answers 413 with an empty body over http.max_content_length, compressed or not", function()
    local lines = {}
    for i = 1, 800 do
      lines[#lines + 1] = { index = { _index = "big", _id = tostring(i) } }
      lines[#lines + 1] = { pad = string.rep("x", 100) }
    end
    local body = http.ndjson(lines)
    assert.is_true(#body > 64 * 1024)
    local res = http.request { method = "POST", url = url .. "/_bulk", headers = NDJSON, body = body }
    assert.equal(413, res.status)
    assert.equal("", res.body)
    assert.equal("Elasticsearch", res.headers["x-elastic-product"])
    res = http.request { method = "POST", url = url .. "/_bulk", headers = NDJSON, body = body, gzip = true }
    assert.equal(413, res.status)
    assert.equal("", res.body)
    assert.equal(404, (http.json("GET", url .. "/big/_doc/1")))
  end)

  it("applies filter_path to bulk responses", function()
    local status, body = http.bulk(url, {
      { index = { _index = "fp", _id = "1" } }, { a = 1 },
      { create = { _index = "fp", _id = "1" } }, { a = 1 },
    }, "?filter_path=items.*.error")
    assert.equal(200, status)
    assert.equal(1, #body.items)
    assert.equal("version_conflict_engine_exception", body.items[1].create.error.type)
    assert.is_nil(body.took)
    status, body = http.bulk(url, { { index = { _index = "fp", _id = "2" } }, { a = 1 } }, "?filter_path=errors")
    assert.equal(200, status)
    assert.same({ errors = false }, body)
  end)

  it("filters bulk items as they are written exactly as the generic filter_path would", function()
    local fp = require("espipe.server.filter_path")
    local lines = {
      { index = { _index = "cmp", _id = "1" } }, { a = 1 },
      { create = { _index = "cmp", _id = "1" } }, { a = 2 },
      { update = { _index = "cmp", _id = "1" } }, { doc = { b = 1 } },
      { delete = { _index = "cmp", _id = "nope" } },
      { index = { _index = "cmp" } }, { auto = true },
    }
    for _, spec in ipairs{ "errors,items.*.status,items.*.error,items.*.result", "took,items.*._id",
                           "items.*._shards,items.*._seq_no,items.*._version", "items.*.error", "errors" } do
      http.json("DELETE", url .. "/cmp")
      local _, full = http.bulk(url, lines)
      http.json("DELETE", url .. "/cmp")
      local status, filtered = http.bulk(url, lines, "?filter_path=" .. spec)
      assert.equal(200, status)
      local expected = fp.apply(full, spec) or {}
      -- took, the auto-generated id and the recreated index's uuid differ between the two requests
      expected.took, filtered.took = nil, nil
      for _, body in ipairs{ expected, filtered } do
        for _, item in ipairs(body.items or {}) do
          if item.index and item.index._id and item.index._id ~= "1" then item.index._id = "<auto>" end
          for _, inner in pairs(item) do
            if inner.error then inner.error.index_uuid = nil end
          end
        end
      end
      assert.same(expected, filtered, spec)
    end
  end)

  it("enforces strict and typed mappings per item", function()
    http.json("PUT", url .. "/strict", { mappings = { dynamic = "strict", properties = { n = { type = "long" } } } })
    local _, body = http.bulk(url, {
      { index = { _index = "strict", _id = "1" } }, { n = 5 },
      { index = { _index = "strict", _id = "2" } }, { n = "7" },
      { index = { _index = "strict", _id = "3" } }, { n = "abc" },
      { index = { _index = "strict", _id = "4" } }, { other = 1 },
    })
    assert.same({ 201, 201, 400, 400 }, { body.items[1].index.status, body.items[2].index.status,
      body.items[3].index.status, body.items[4].index.status })
    assert.equal("document_parsing_exception", body.items[3].index.error.type)
    assert.matches("failed to parse field %[n%] of type %[long%] in document with id '3'%. Preview of field's value: 'abc'",
      body.items[3].index.error.reason)
    assert.equal("strict_dynamic_mapping_exception", body.items[4].index.error.type)
    assert.matches("mapping set to strict, dynamic introduction of %[other%] within %[_doc%] is not allowed",
      body.items[4].index.error.reason)
    assert.equal(404, (http.json("GET", url .. "/strict/_doc/3")))
  end)

  it("refreshes with refresh=true and reports forced_refresh", function()
    http.json("PUT", url .. "/rf", { settings = { refresh_interval = "-1" } })
    local _, body = http.bulk(url, { { index = { _index = "rf", _id = "1" } }, { a = 1 } }, "?refresh=true")
    assert.is_true(body.items[1].index.forced_refresh)
    local _, count = http.json("GET", url .. "/rf/_count")
    assert.equal(1, count.count)
  end)

  it("derives dynamic mappings from bulk documents", function()
    http.bulk(url, { { index = { _index = "dyn", _id = "1" } },
      { l = 1, f = 1.5, b = true, s = "text", d = "2024-01-02T03:04:05Z", o = { k = "v" } } })
    local _, body = http.json("GET", url .. "/dyn/_mapping")
    local p = body.dyn.mappings.properties
    assert.same({ "long", "float", "boolean", "text", "date" }, { p.l.type, p.f.type, p.b.type, p.s.type, p.d.type })
    assert.same({ type = "keyword", ignore_above = 256 }, p.s.fields.keyword)
    assert.same({ k = { type = "text", fields = { keyword = { type = "keyword", ignore_above = 256 } } } },
      p.o.properties)
  end)

  it("accepts the 8.x vendor media types and answers with the vendor type", function()
    local res = http.request { method = "POST", url = url .. "/_bulk",
      headers = { ["Content-Type"] = "application/vnd.elasticsearch+x-ndjson; compatible-with=8",
                  Accept = "application/vnd.elasticsearch+json; compatible-with=8" },
      body = http.ndjson({ { index = { _index = "vnd", _id = "1" } }, { a = 1 } }) }
    assert.equal(200, res.status)
    assert.equal("application/vnd.elasticsearch+json;compatible-with=8", res.headers["content-type"])
    assert.equal("Elasticsearch", res.headers["x-elastic-product"])
  end)

  it("counts stats per request and resets them", function()
    http.json("POST", url .. "/_espipe/stats/reset")
    http.bulk(url, { { index = { _index = "st", _id = "1" } }, { a = 1 }, { delete = { _index = "st", _id = "1" } } })
    local _, stats = http.json("GET", url .. "/_espipe/stats")
    assert.equal(2, stats.nodes["node-0"].docs)
    assert.equal(0, stats.nodes["node-0"].forwarded)
    assert.equal(1, stats.nodes["node-0"].bulk_requests)
    assert.equal(2, stats.nodes["node-0"].requests) -- the reset, the bulk
    http.json("POST", url .. "/_espipe/stats/reset")
    _, stats = http.json("GET", url .. "/_espipe/stats")
    assert.equal(0, stats.nodes["node-0"].docs)
    assert.equal(0, stats.bulk.requests)
  end)
end)

describe("espipe serve #server: _bulk refuses what ES refuses", function()
  local server = devserver.start()
  local url = server.url
  teardown(function() server.stop() end)

  it("fails items whose _id is over 512 bytes or whose source is not UTF-8, keeping the rest", function()
    http.json("PUT", url .. "/u", { mappings = { properties = { a = { type = "keyword" } } } })
    local long = string.rep("x", 513)
    local body = http.ndjson({ { index = { _index = "u", _id = long } }, { a = 1 },
                               { index = { _index = "u", _id = "bad" } }, '{"a":"\255\254"}',
                               { index = { _index = "u", _id = "ok" } }, '{"a":"Γειά 🙂"}',
                               { index = { _index = "u", _id = "cut" } }, '{"a":"\206"}' })
    local status, res = http.json("POST", url .. "/_bulk?refresh=true", body,
      { ["Content-Type"] = "application/x-ndjson" })
    assert.equal(200, status)
    assert.equal(400, res.items[1].index.status)
    assert.matches("is too long, must be no longer than 512 bytes but was: 513", res.items[1].index.error.reason)
    assert.equal("document_parsing_exception", res.items[2].index.error.type)
    assert.matches("^%[1:7%] failed to parse: Invalid UTF%-8 start byte 0xff", res.items[2].index.error.reason)
    assert.equal(201, res.items[3].index.status)
    assert.equal(400, res.items[4].index.status)
    local _, count = http.json("GET", url .. "/u/_count")
    assert.equal(1, count.count)
    status = http.json("PUT", url .. "/u/_doc/x", '{"a":"\255"}')
    assert.equal(400, status)
  end)

  -- (an index with only dynamic mappings takes _bulk's fast path)
  it("fails a source that is not UTF-8 as ES does on the fast path too, indexing the others", function()
    local body = http.ndjson({ { index = { _index = "dyn", _id = "a" } }, '{"t":"plain"}',
                               { index = { _index = "dyn", _id = "b" } }, '{"t":"caf\195(x"}',
                               { index = { _index = "dyn", _id = "c" } }, '{"t":"Γειά 🙂"}',
                               { create = { _index = "dyn", _id = "d" } }, '{"t":"\128"}' })
    -- (no ?refresh=true: a forced refresh leaves the fast path)
    local status, res = http.json("POST", url .. "/_bulk", body, { ["Content-Type"] = "application/x-ndjson" })
    assert.equal(200, status)
    assert.is_true(res.errors)
    assert.equal(400, res.items[2].index.status)
    assert.equal("document_parsing_exception", res.items[2].index.error.type)
    assert.equal("[1:10] failed to parse: Invalid UTF-8 middle byte 0x28", res.items[2].index.error.reason)
    assert.equal("[1:7] failed to parse: Invalid UTF-8 start byte 0x80", res.items[4].create.error.reason)
    local _, got = http.json("POST", url .. "/dyn/_mget", { ids = { "a", "b", "c", "d" } })
    assert.same({ true, false, true, false }, { got.docs[1].found, got.docs[2].found, got.docs[3].found,
                                                got.docs[4].found })
    assert.equal("Γειά 🙂", got.docs[3]._source.t)
  end)

  it("checks a source cut by the 64 KB boundary the server reads the body in", function()
    local piece = 65536
    local first = '{"index":{"_index":"dyn2","_id":"fill"}}\n{"f":"'
    local second = '"}\n{"index":{"_index":"dyn2","_id":"cut"}}\n'
    -- the second pair's source starts 10 bytes before the boundary, its bad byte after it
    local fill = string.rep("x", piece - 10 - #first - #second)
    local body = first .. fill .. second .. '{"t":"abcdefghij\255"}\n'
      .. '{"index":{"_index":"dyn2","_id":"after"}}\n{"t":"ok"}\n'
    assert.equal(piece - 10, #first + #fill + #second)
    local _, res = http.json("POST", url .. "/_bulk", body, { ["Content-Type"] = "application/x-ndjson" })
    assert.equal(201, res.items[1].index.status)
    assert.equal("[1:17] failed to parse: Invalid UTF-8 start byte 0xff", res.items[2].index.error.reason)
    assert.equal(201, res.items[3].index.status)
    http.json("POST", url .. "/dyn2/_refresh")
    local _, count = http.json("GET", url .. "/dyn2/_count")
    assert.equal(2, count.count)
  end)

  -- ES parses every source: a line that is not one JSON object fails its
  -- item (400, the others are indexed) and is never stored
  it("fails a source that is not one JSON object, on the fast path and on a mapped index", function()
    http.json("PUT", url .. "/jm", { mappings = { properties = { a = { type = "keyword" } } } })
    for _, index in ipairs { "jdyn", "jm" } do
      local body = http.ndjson({ { index = { _index = index, _id = "ok" } }, '{"a":"x"}',
                                 { index = { _index = index, _id = "word" } }, 'undefined',
                                 -- (on the dynamic fast path only the outer bytes are checked)
                                 { index = { _index = index, _id = "two" } },
                                 index == "jm" and '{"a":"y"} {"b":1}' or '{"a":"y"} {"b":1',
                                 { index = { _index = index, _id = "junk" } }, '{"a":"y"} junk',
                                 { index = { _index = index, _id = "str" } }, '"str"',
                                 { create = { _index = index, _id = "cut" } }, '{"a":',
                                 { index = { _index = index, _id = "ok2" } }, ' {"a":"z"} ' })
      local status, res = http.json("POST", url .. "/_bulk", body, NDJSON)
      assert.equal(200, status)
      assert.is_true(res.errors)
      local st = {}
      for i, item in ipairs(res.items) do
        local _, r = next(item)
        st[i] = r.status
        if r.status == 400 then
          assert.equal("document_parsing_exception", r.error.type, index .. " " .. r._id)
          assert.matches("failed to parse", r.error.reason, 1, true)
        end
      end
      assert.same({ 201, 400, 400, 400, 400, 400, 201 }, st, index)
      if index == "jm" then
        assert.equal("Malformed content, found extra data after parsing: START_OBJECT",
                     res.items[3].index.error.caused_by.reason)
      end
      assert.equal("Unrecognized token 'junk': was expecting (JSON String, Number, Array, Object or token "
        .. "'null', 'true' or 'false')", res.items[4].index.error.caused_by.reason)
      http.json("POST", url .. "/" .. index .. "/_refresh")
      local _, count = http.json("GET", url .. "/" .. index .. "/_count")
      assert.equal(2, count.count, index)
      local _, got = http.json("GET", url .. "/" .. index .. "/_doc/word")
      assert.is_false(got.found)
    end
  end)
end)
