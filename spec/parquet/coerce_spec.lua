-- Values that do not fit their column: coerced the way Elasticsearch coerces,
-- otherwise null, and counted per column. Read back by DuckDB.
local json = require "espipe.json"
local duckdb = require "parquet.duckdb"
local support = require "parquet.support"

local NULL = json.null

-- { input, expected as DuckDB returns it (NULL for null), outcome }
-- outcome: "ok" (as is), "coerced", "invalid" (null and counted), "none" (null, not counted)
local CASES = {
  i = { type = "int64", cast = "::VARCHAR",
    { 42, "42", "ok" }, { "42", "42", "coerced" }, { "-42.7", "-42", "coerced" }, { 3.9, "3", "coerced" },
    { -3.9, "-3", "coerced" }, { "1e3", "1000", "coerced" }, { true, NULL, "invalid" }, { "abc", NULL, "invalid" },
    { " 42", NULL, "invalid" }, { { 7 }, "7", "ok" }, { { 1, 2 }, NULL, "invalid" }, { json.array(), NULL, "none" },
    { { a = 1 }, NULL, "invalid" }, { NULL, NULL, "none" }, { 1e19, NULL, "invalid" },
  },
  d = { type = "double", cast = "",
    { 1.5, 1.5, "ok" }, { 3, 3, "ok" }, { "2.5", 2.5, "coerced" }, { "x", NULL, "invalid" }, { true, NULL, "invalid" },
    { "1e400", NULL, "invalid" }, { "nan", NULL, "invalid" }, { { 0.5 }, 0.5, "ok" },
  },
  b = { type = "boolean", cast = "",
    { true, true, "ok" }, { false, false, "ok" }, { "true", true, "coerced" }, { "false", false, "coerced" },
    { "", false, "coerced" }, { "yes", NULL, "invalid" }, { 1, NULL, "invalid" },
  },
  s = { type = "string", cast = "",
    { "s", "s", "ok" }, { 42, "42", "coerced" }, { 1.5, "1.5", "coerced" }, { true, "true", "coerced" },
    { { "a", "b" }, '["a","b"]', "coerced" }, { { "only" }, "only", "ok" }, { { a = 1 }, NULL, "invalid" },
    { "\255bad", NULL, "invalid" }, { -1e21, "-1e+21", "coerced" },
  },
  t = { type = "timestamp", cast = "",
    { 1000, "1000", "ok" }, { "2024-02-30T00:00:00Z", NULL, "invalid" }, { "yesterday", NULL, "invalid" },
    { "2024-01-01 10:00:00", NULL, "invalid" }, { true, NULL, "invalid" }, { "1700000000000", "1700000000000", "ok" },
  },
}
local ORDER = { "i", "d", "b", "s", "t" }

describe("coercion of values that do not fit their column #duckdb", function()
  it("coerces as Elasticsearch does, nulls the rest, and counts both per column", function()
    local n, columns = 0, {}
    for _, name in ipairs(ORDER) do
      columns[#columns + 1] = { name = name, type = CASES[name].type }
      n = math.max(n, #CASES[name])
    end
    local docs = {}
    for r = 1, n do
      docs[r] = {}
      for _, name in ipairs(ORDER) do
        local case = CASES[name][r]
        if case then docs[r][name] = case[1] end
      end
    end
    support.with_file(function(path)
      local result = support.write(path, columns, docs)
      local want_invalid, want_coerced = {}, {}
      for _, name in ipairs(ORDER) do
        for _, case in ipairs(CASES[name]) do
          if case[3] == "invalid" then want_invalid[name] = (want_invalid[name] or 0) + 1 end
          if case[3] == "coerced" then want_coerced[name] = (want_coerced[name] or 0) + 1 end
        end
      end
      assert.are.same(want_invalid, result.invalid)
      assert.are.same(want_coerced, result.coerced)
      local got = duckdb.query({ "SELECT i::VARCHAR AS i, d, b, s, epoch_ms(t)::VARCHAR AS t FROM read_parquet("
        .. duckdb.quote(path) .. ", file_row_number = true) ORDER BY file_row_number" })[1]
      for _, name in ipairs(ORDER) do
        for r, case in ipairs(CASES[name]) do
          assert.are.equal(case[2], got[r][name],
            string.format("column %s row %d input %s", name, r, tostring(case[1])))
        end
      end
    end)
  end)

  if math.type then
    it("writes a float in a string column the way espipe.json writes it (2.0 stays 2.0)", function()
      support.with_file(function(path)
        support.write(path, { { name = "s", type = "string" }, { name = "j", type = "json" } },
          { { s = 2.0, j = { x = 2.0, y = 3 } } })
        local got = duckdb.query({ "SELECT s, j FROM read_parquet(" .. duckdb.quote(path) .. ")" })[1][1]
        assert.are.equal("2.0", got.s)
        assert.are.equal(json.encode({ x = 2.0, y = 3 }):len(), #got.j)
        local back = json.decode(got.j)
        assert.are.equal("float", math.type(back.x))
        assert.are.equal("integer", math.type(back.y))
      end)
    end)
  end
end)
