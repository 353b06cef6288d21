-- w:write_page(body): rows straight from the bytes of a search response,
-- checked against w:write_rows on the same page decoded by
-- core.search_response: the two files must be the same bytes.
local parquet = require "espipe.parquet"
local json = require "espipe.json"
local core = require "espipe.core"
local support = require "parquet.support"

local function read_all(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- Writes body both ways; returns both files' bytes and close results.
local function both_ways(columns, bodies, opts)
  local out = {}
  for _, way in ipairs { "rows", "page" } do
    support.with_file(function(path)
      local w = assert(parquet.open(path, columns, opts))
      for _, body in ipairs(bodies) do
        if way == "rows" then
          local page = assert(core.search_response(body))
          assert(w:write_rows(page.hits.hits))
        else
          assert(w:write_page(body))
        end
      end
      out[way] = assert(w:close())
      out[way .. "_bytes"] = read_all(path)
    end)
  end
  return out
end

local function page(hits, extra)
  local body = { took = 3, timed_out = false, hits = { total = { value = #hits, relation = "eq" },
    max_score = json.null, hits = json.array(hits) } }
  for k, v in pairs(extra or {}) do body[k] = v end
  return json.encode(body)
end

local COLUMNS = {
  { name = "_id", type = "string", path = { "_id" } },
  { name = "s", type = "string", path = { "_source", "s" } },
  { name = "i", type = "int64", path = { "_source", "i" } },
  { name = "d", type = "double", path = { "_source", "d" } },
  { name = "b", type = "boolean", path = { "_source", "b" } },
  { name = "t", type = "timestamp", path = { "_source", "t" } },
  { name = "j", type = "json", path = { "_source", "j" } },
  { name = "host_name", type = "string", path = { "_source", "host", "name" } },
  { name = "deep", type = "int64", path = { "_source", "a", "b", "c" } },
}

-- Every kind of value each column meets, cycled so each column sees each.
local VALUES = {
  "plain", "esc \"q\" \\ / \n\t \1", "caf\195\169 \240\159\152\128", "", "42", "-7", "42.7", "1e3",
  "true", "false", "2024-05-01T12:34:56.789Z", "2024-05-01", "1714567890123", "not a number",
  0, 1, -1, 42, 9007199254740993, -9223372036854775807, 1.5, -0.25, 1e300, 100.0, 2 ^ 63, -2 ^ 63,
  true, false, json.null, json.array(), { "one" }, { 7 }, { "a", "b" }, { 1, 2.5, "x" }, { { "nested" } },
  { k = "v" }, { { k = "v" } },
}

local function value(i, col)
  return VALUES[(i * 7 + col * 3) % #VALUES + 1]
end

local function make_hits(n, offset)
  local hits = {}
  for i = 1, n do
    local k = i + offset
    local src = { s = value(k, 1), i = value(k, 2), d = value(k, 3), b = value(k, 4), t = value(k, 5),
      host = { name = value(k, 6) }, a = { b = { c = value(k, 7) } } }
    local j = value(k, 8)
    -- a JSON column's text is the bytes as sent: keep to values with one spelling
    if type(j) == "table" and getmetatable(j) == nil and next(j) ~= nil and type(next(j)) == "string" then
      j = "object"
    end
    src.j = j
    if k % 11 == 0 then src.host = nil; src["host.name"] = "dotted-" .. k end
    if k % 13 == 0 then src.a = { ["b.c"] = k } end
    if k % 17 == 0 then src.s = nil end
    hits[i] = { _index = "logs", _id = "id-" .. k, _score = json.null, _source = src, sort = { k } }
  end
  return hits
end

describe("parquet w:write_page", function()
  it("writes the same bytes as write_rows on the decoded page, with the same counts", function()
    for _, codec in ipairs { "none", "snappy", "zstd" } do
      local bodies = {}
      for p = 0, 4 do bodies[#bodies + 1] = page(make_hits(#VALUES * 3, p * 1000), { pit_id = "p" .. p }) end
      local got = both_ways(COLUMNS, bodies, { codec = codec, page_bytes = 4096, row_group_bytes = 20000 })
      assert.are.equal(#VALUES * 3 * 5, got.page.rows)
      assert.is_true(got.page.row_groups > 1)
      assert.are.same(got.rows.invalid, got.page.invalid)
      assert.are.same(got.rows.coerced, got.page.coerced)
      assert.is_true(next(got.page.invalid) ~= nil and next(got.page.coerced) ~= nil)
      assert.is_true(got.rows_bytes == got.page_bytes, codec .. ": files differ")
    end
  end)

  it("follows the decoder on duplicate keys, dotted keys, escaped keys and nulls on the path", function()
    local cols = {
      { name = "host_name", type = "string", path = { "_source", "host", "name" } },
      { name = "x", type = "string", path = { "_source", "x" } },
      { name = "n", type = "int64", path = { "_source", "a", "b" } },
    }
    local hits = {
      '{"_source":{"host":{"name":"first"},"host":{"ip":"1"},"host.name":"dotted"}}',
      '{"_source":{"host":{"name":"nested"},"host.name":"dotted"}}',
      '{"_source":{"host":null,"host.name":"dotted"},"_source":{"host":{"name":"second source"}}}',
      '{"_source":{"host":{"name":null},"host.name":"dotted"}}',
      '{"_source":{"host":["a"],"host.name":"array then dotted"}}',
      '{"_source":{"\\u0068ost":{"n\\u0061me":"escaped key"},"x":"a","x":"b"}}',
      '{"_source":{"a":{"b":1},"a":{"c":2},"a.b":3}}',
      '{"_source":{"a":{"b":"12"},"a":{"b":"13"}}}',
      '{"_source": { "a" : { "b" : [ 5 ] } , "x" : [ ] } }',
      '{"_id":"no source"}',
    }
    local body = '{"hits":{"hits":[' .. table.concat(hits, ",") .. ']}}'
    local got = both_ways(cols, { body })
    assert.are.equal(#hits, got.page.rows)
    assert.are.same(got.rows.coerced, got.page.coerced)
    assert.is_true(got.rows_bytes == got.page_bytes)
  end)

  it("returns the rows and the page's position: pit_id, scroll_id, last sort values", function()
    support.with_file(function(path)
      local w = assert(parquet.open(path, COLUMNS))
      local body = '{"pit_id":"p\\u0031","_scroll_id":"s1","hits":{"hits":['
        .. '{"_id":"a","_source":{},"sort":[1,"x"]},'
        .. '{"_id":"b","_source":{},"sort":[18446744073709551615,-1]}]}}'
      local n, pos = w:write_page(body)
      assert.are.equal(2, n)
      assert.are.equal(2, pos.hits)
      assert.are.equal("p1", pos.pit_id)
      assert.are.equal("s1", pos.scroll_id)
      -- too big for a double: kept as its text so search_after resumes exactly
      assert.are.same({ "18446744073709551615", -1 }, pos.search_after)
      assert.are.same(pos, parquet.page_position(body))
      n, pos = w:write_page('{"hits":{"hits":[]}}')
      assert.are.equal(0, n)
      assert.is_nil(pos.search_after)
      assert.are.equal(2, w:rows())
      assert(w:close())
    end)
  end)

  it("rejects a malformed page with the byte offset and writes none of its rows", function()
    support.with_file(function(path)
      local w = assert(parquet.open(path, COLUMNS))
      local good = '{"hits":{"hits":[{"_id":"a","_source":{"i":1}}]}}'
      assert(w:write_page(good))
      -- { body, the text the error is at (its first occurrence), [why the
      --   decoder, which reads any JSON, accepts it] }
      local cases = {
        { '{"hits":{"hits":[{"_id":"a","_source":{"i":1}},{"_id":"b","_source":{"i":01}}]}}', "01" },
        { '{"hits":{"hits":[{"_id":"a"}, 7]}}', "7", "a hit that is not an object" },
        { '{"hits":{"hits":[{"_id":"a","_source":{"s":"\255"}}]}}', "\255" },
        { '{"hits":{"hits":[{"_id":"a"}]}} x', "x" },
        { '{"hits":{"hits":[{"_id":"a" "_source":{}}]}}', '"_source' },
        { '[]', "[" },
        -- inside values no column reads (objects and arrays are walked, not skipped whole)
        { '{"hits":{"hits":[{"_id":"a","_source":{"o":{"p":[1,[2,02]]}}}]}}', "02" },
        { '{"hits":{"hits":[{"_id":"a","_source":{"o":{"p" 1}}}]}}', "1}}}" },
        { '{"hits":{"hits":[{"_id":"a","_source":{"o":[{"\255":1}]}}]}}', "\255" },
        { '{"hits":{"hits":[{"_id":"a","_source":{"o":[1 2]}}]}}', "2]" },
        { '{"hits":{"hits":[{"_id":"a","_source":{"o":{"p":1,}}}]}}', "}}}]" },
      }
      for _, case in ipairs(cases) do
        local body, at = case[1], case[1]:find(case[2], 1, true)
        local n, err = w:write_page(body)
        assert.is_nil(n, body)
        assert.are.equal("parse", err.kind)
        assert.are.equal(at, err.offset, body .. ": " .. tostring(err))
        -- the decoder agrees about where the body goes wrong
        local ok, _, offset = core.search_response(body)
        if case[3] then
          assert.is_table(ok, case[3])
        else
          assert.is_nil(ok)
          assert.are.equal(at, offset)
        end
      end
      local n, err = w:write_page('{"took":1}')
      assert.is_nil(n)
      assert.matches("without hits", tostring(err))
      assert.are.equal(1, w:rows())
      local r = assert(w:close())
      assert.are.equal(1, r.rows)
    end)
  end)

  it("raises on a body that is not a string", function()
    support.with_file(function(path)
      local w = assert(parquet.open(path, COLUMNS))
      assert.has_error(function() w:write_page({}) end, "write_page: body must be a string or a response body, got table")
      assert(w:close())
    end)
  end)
end)

-- Dictionaries large enough for write_page's prefetching (past 8192 slots),
-- rehashed as they grow, cleared between row groups: DuckDB reads back every
-- value, in order.
describe("parquet w:write_page with large dictionaries #duckdb", function()
  local duckdb = require "parquet.duckdb"

  it("keeps every value of a column with tens of thousands of distinct strings", function()
    local cols = {
      { name = "_id", type = "string", path = { "_id" } },
      { name = "user", type = "string", path = { "_source", "user" } },
      { name = "ip", type = "string", path = { "_source", "ip" } },
    }
    local bodies, want, seed = {}, {}, 7
    for p = 0, 5 do
      local hits = {}
      for i = 1, 5000 do
        seed = (seed * 16807) % 2147483647
        local k = p * 5000 + i
        -- ids sharing a prefix (the case that piled up in few slots), some long
        local user = (k % 5 == 0) and ("user-with-a-longer-name-" .. seed % 20000) or ("u-" .. seed % 20000)
        local ip = "10." .. seed % 7 .. "." .. seed % 251 .. "." .. k % 97
        hits[i] = { _id = "id-" .. k, _source = { user = user, ip = ip }, sort = { k } }
        want[k] = { user, ip }
      end
      bodies[#bodies + 1] = page(hits)
    end
    support.with_file(function(path)
      local w = assert(parquet.open(path, cols, { codec = "snappy", row_group_bytes = 400000 }))
      for _, body in ipairs(bodies) do assert(w:write_page(body)) end
      local r = assert(w:close())
      assert.are.equal(30000, r.rows)
      assert.is_true(r.row_groups > 1)
      local rows = duckdb.query({ "SELECT _id, \"user\", ip FROM read_parquet(" .. duckdb.quote(path)
        .. ", file_row_number = true) ORDER BY file_row_number" })[1]
      assert.are.equal(30000, #rows)
      for k = 1, 30000 do
        local row = rows[k]
        if row._id ~= "id-" .. k or row.user ~= want[k][1] or row.ip ~= want[k][2] then
          error(string.format("row %d: got %s %s %s, want id-%d %s %s", k, tostring(row._id),
            tostring(row.user), tostring(row.ip), k, want[k][1], want[k][2]))
        end
      end
    end)
  end)
end)
