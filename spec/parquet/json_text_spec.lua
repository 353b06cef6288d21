-- JSON columns (and arrays or numbers in string columns) hold exactly the
-- text espipe.json.encode gives when written from Lua values (write_rows:
-- the writer links the same encoder); from a raw page (write_page) they hold
-- the value's bytes as the server sent them, the faithful choice.
local json = require "espipe.json"
local support = require "parquet.support"
local duckdb = require "parquet.duckdb"

local VALUES = {
  { "slash and quote", { path = "/a/b", q = 'say "hi"\\' } },
  { "control characters", "tab\tnl\ncr\rbell\7" },
  { "non-ASCII", { name = "Zoë ☃ 𝄞" } },
  { "2^53 and a negative integer", { big = 9007199254740992, neg = -42 } },
  { "floats", { 0.1, 1e300, -2.5e-7, 123.456 } },
  { "empty array and nested arrays", { e = json.array(), m = { { 1, 2 }, { "x" } } } },
  { "null inside", { a = json.null, b = true, c = false } },
  { "deep object", { a = { b = { c = { d = { e = "f" } } } } } },
}

describe("Parquet JSON text #duckdb", function()
  it("equals espipe.json.encode byte for byte", function()
    support.with_file(function(path)
      local docs = {}
      for i, case in ipairs(VALUES) do docs[i] = { id = i, j = case[2] } end
      local result = support.write(path, { { name = "id", type = "int64" }, { name = "j", type = "json" } }, docs)
      assert.are.same({}, result.invalid)
      local got = duckdb.query({ "SELECT id::VARCHAR AS id, j::VARCHAR AS j FROM read_parquet("
        .. duckdb.quote(path) .. ") ORDER BY id" })[1]
      assert.are.equal(#VALUES, #got)
      for i, case in ipairs(VALUES) do
        assert.are.equal(json.encode(case[2]), got[i].j, case[1])
      end
    end)
  end)

  it("keeps the codec's choices: '/' unescaped, 2^53 exact, \\u00XX for controls", function()
    support.with_file(function(path)
      support.write(path, { { name = "j", type = "json" } },
        { { j = { "/", 9007199254740992, "\1" } } })
      local got = duckdb.query({ "SELECT j::VARCHAR AS j FROM read_parquet(" .. duckdb.quote(path) .. ")" })[1]
      assert.are.equal('["/",9007199254740992,"\\u0001"]', got[1].j)
    end)
  end)

  it("writes arrays and numbers in string columns as their JSON text, counted as coerced", function()
    support.with_file(function(path)
      local docs = { { s = { "a/b", 1, 2.5 } }, { s = 17 }, { s = -0.5 }, { s = "plain" } }
      local result = support.write(path, { { name = "s", type = "string" } }, docs)
      assert.are.same({ s = 3 }, result.coerced)
      local got = duckdb.query({ "SELECT s FROM read_parquet(" .. duckdb.quote(path)
        .. ", file_row_number = true) ORDER BY file_row_number" })[1]
      for i = 1, 3 do assert.are.equal(json.encode(docs[i].s), got[i].s) end
      assert.are.equal("plain", got[4].s)
    end)
  end)

  it("counts values JSON cannot carry as invalid and writes null", function()
    support.with_file(function(path)
      local docs = { { j = { ok = 1 } }, { j = { bad = "\255" } }, { j = { f = print } }, { j = 0 / 0 } }
      local result = support.write(path, { { name = "j", type = "json" } }, docs)
      assert.are.same({ j = 3 }, result.invalid)
      local got = duckdb.query({ "SELECT j::VARCHAR AS j FROM read_parquet(" .. duckdb.quote(path)
        .. ", file_row_number = true) ORDER BY file_row_number" })[1]
      assert.are.equal('{"ok":1}', got[1].j)
      for i = 2, 4 do assert.are.equal(json.null, got[i].j) end
    end)
  end)

  it("from a raw page (write_page) keeps each value's bytes as sent", function()
    support.with_file(function(path)
      local texts = { '{ "b" : [1, 2.50, 1E2],"a":"\\u00e9\\/"}', '"caf\\u00e9"', '-0.0', '[ ]', '{}' }
      local hits = {}
      for i, text in ipairs(texts) do
        hits[i] = '{"_id":"' .. i .. '","_source":{"j":' .. text .. ',"s":' .. text .. '}}'
      end
      local parquet = require "espipe.parquet"
      local w = assert(parquet.open(path, { { name = "j", type = "json", path = { "_source", "j" } },
        { name = "s", type = "string", path = { "_source", "s" } } }))
      assert(w:write_page('{"hits":{"hits":[' .. table.concat(hits, ",") .. ']}}'))
      local result = assert(w:close())
      assert.are.same({ s = 2 }, result.invalid)  -- the two objects
      local got = duckdb.query({ "SELECT j::VARCHAR AS j, s FROM read_parquet(" .. duckdb.quote(path)
        .. ", file_row_number = true) ORDER BY file_row_number" })[1]
      for i, text in ipairs(texts) do assert.are.equal(text, got[i].j) end
      -- a string column reads strings as strings and numbers as espipe.json writes them
      assert.are.equal("caf\195\169", got[2].s)
      assert.are.equal(json.encode(json.decode("-0.0")), got[3].s)
      assert.are.equal(json.null, got[4].s)  -- [] is no value
    end)
  end)
end)
