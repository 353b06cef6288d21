-- Edge cases read back by DuckDB: empty and all-null data, text that is not
-- ASCII, extremes of every type, dictionary overflow, and the statistics
-- DuckDB reads from the footer.
local json = require "espipe.json"
local duckdb = require "parquet.duckdb"
local support = require "parquet.support"

local function unnull(v)
  if v == json.null then return nil end
  return v
end

local function rows_of(path, select, extra)
  return duckdb.query({ "SELECT " .. select .. " FROM read_parquet(" .. duckdb.quote(path)
    .. ", file_row_number = true) " .. (extra or "") .. " ORDER BY file_row_number" })[1]
end

local function metadata(path)
  local r = duckdb.query({ "SELECT path_in_schema AS col, row_group_id::INT AS rg, stats_min_value AS min,"
    .. " stats_max_value AS max, stats_null_count::INT AS nulls, encodings, num_values::INT AS n"
    .. " FROM parquet_metadata(" .. duckdb.quote(path) .. ") ORDER BY row_group_id, column_id" })[1]
  local by = {}
  for _, m in ipairs(r) do
    by[m.col] = by[m.col] or {}
    by[m.col][#by[m.col] + 1] = m
  end
  return by
end

-- Byte-wise order, whatever the locale Lua's < would use.
local function bytes_less(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

describe("Parquet edge cases read back by DuckDB #duckdb", function()
  it("writes a file of 0 rows that still has its schema", function()
    support.with_file(function(path)
      local r = support.write(path, { { name = "a", type = "string" }, { name = "b", type = "int64" } }, {})
      assert.are.equal(0, r.rows)
      assert.are.equal(0, r.row_groups)
      local res = duckdb.query({
        "SELECT count(*) AS n FROM read_parquet(" .. duckdb.quote(path) .. ")",
        "SELECT name, type FROM parquet_schema(" .. duckdb.quote(path) .. ") WHERE name <> 'schema' ORDER BY name",
      })
      assert.are.equal("0", res[1][1].n)
      assert.are.same({ { name = "a", type = "BYTE_ARRAY" }, { name = "b", type = "INT64" } }, res[2])
    end)
  end)

  it("writes 1 row", function()
    support.with_file(function(path)
      support.write(path, { { name = "a", type = "string" }, { name = "b", type = "double" } }, { { a = "x", b = 2.5 } })
      assert.are.same({ { a = "x", b = 2.5 } }, rows_of(path, "a, b"))
    end)
  end)

  it("writes an all-null column with null_count and no bounds", function()
    support.with_file(function(path)
      local docs = {}
      for i = 1, 300 do docs[i] = { a = "v" .. i } end
      support.write(path, { { name = "a", type = "string" }, { name = "never", type = "int64" },
                            { name = "nothing", type = "string" } }, docs)
      local res = duckdb.query({ "SELECT count(never) AS c1, count(nothing) AS c2, count(a) AS c3 FROM read_parquet("
        .. duckdb.quote(path) .. ")" })[1]
      assert.are.same({ { c1 = "0", c2 = "0", c3 = "300" } }, res)
      local m = metadata(path)
      assert.are.equal(300, m.never[1].nulls)
      assert.are.equal(json.null, m.never[1].min)
      assert.are.equal(300, m.nothing[1].nulls)
    end)
  end)

  it("keeps empty strings, non-ASCII and astral characters byte for byte, with byte-order bounds", function()
    local values = { "", "a", "caf\195\169", "\230\151\165\230\156\172\232\170\158", "\240\159\152\128",
                     "z", "\239\188\161", "tab\there", "quote\"s" }
    support.with_file(function(path)
      local docs = {}
      for i, v in ipairs(values) do docs[i] = { s = v } end
      support.write(path, { { name = "s", type = "string" } }, docs)
      local got = rows_of(path, "s, octet_length(encode(s)) AS len")
      for i, v in ipairs(values) do
        assert.are.equal(v, got[i].s)
        assert.are.equal(#v, tonumber(got[i].len))
      end
      local sorted = {}
      for i, v in ipairs(values) do sorted[i] = v end
      table.sort(sorted, bytes_less)
      local m = metadata(path).s[1]
      assert.are.equal(sorted[1], m.min)
      assert.are.equal(sorted[#sorted], m.max)
    end)
  end)

  it("spreads rows over several row groups and every row is there once", function()
    support.with_file(function(path)
      local docs = {}
      for i = 1, 20000 do docs[i] = { n = i, s = "row " .. i } end
      local r = support.write(path, { { name = "n", type = "int64" }, { name = "s", type = "string" } },
        docs, { row_group_bytes = 64 * 1024 })
      assert.is_true(r.row_groups >= 4)
      local res = duckdb.query({
        "SELECT count(*) AS n, count(DISTINCT n) AS d, sum(n)::VARCHAR AS s FROM read_parquet(" .. duckdb.quote(path) .. ")",
        "SELECT count(*) AS rgs, sum(n) AS rows FROM (SELECT DISTINCT row_group_id, num_values AS n FROM parquet_metadata("
          .. duckdb.quote(path) .. ") WHERE path_in_schema = 'n')",
      })
      assert.are.same({ n = "20000", d = "20000", s = tostring(20000 * 20001 / 2):gsub("%.0$", "") }, res[1][1])
      assert.are.equal(r.row_groups, tonumber(res[2][1].rgs))
      assert.are.equal(20000, tonumber(res[2][1].rows))
    end)
  end)

  it("falls back from dictionary to PLAIN mid-chunk and reads back every value", function()
    for _, limit in ipairs({ { dictionary_entries = 50 }, { dictionary_bytes = 600 } }) do
      support.with_file(function(path)
        local docs = {}
        for i = 1, 3000 do
          docs[i] = {}
          if i % 200 ~= 0 then docs[i].s = "value-" .. (i % 200) end
        end
        local opts = { page_bytes = 2048 }
        for k, v in pairs(limit) do opts[k] = v end
        support.write(path, { { name = "s", type = "string" } }, docs, opts)
        local got = rows_of(path, "s")
        assert.are.equal(3000, #got)
        for i = 1, 3000 do assert.are.equal(docs[i].s, unnull(got[i].s)) end
        local m = metadata(path).s[1]
        assert.matches("RLE_DICTIONARY", m.encodings)
        assert.matches("PLAIN", m.encodings)
        assert.are.equal(15, m.nulls)
        assert.are.equal("value-1", m.min)
        assert.are.equal("value-99", m.max)
      end)
    end
  end)

  it("writes timestamps before 1970 and with zone offsets", function()
    -- expected epoch milliseconds are well-known constants, not writer output
    local cases = {
      { "1970-01-01T00:00:00Z", 0 },
      { "1969-12-31T23:59:59.999Z", -1 },
      { "1900-01-01T00:00:00Z", -2208988800000 },
      { "0001-01-01T00:00:00Z", -62135596800000 },
      { "1970-01-01T01:00:00+01:00", 0 },
      { "1969-12-31T19:00:00-0500", 0 },
      { "2000-02-29", 951782400000 },
      { "1960-06", -302486400000 },
      { -1.5, -2 },
      { "-86400000", -86400000 },
    }
    support.with_file(function(path)
      local docs = {}
      for i, c in ipairs(cases) do docs[i] = { t = c[1] } end
      local r = support.write(path, { { name = "t", type = "timestamp" } }, docs)
      assert.are.same({}, r.invalid)
      local got = rows_of(path, "epoch_ms(t)::VARCHAR AS ms")
      for i, c in ipairs(cases) do assert.are.equal(string.format("%.0f", c[2]), got[i].ms, tostring(c[1])) end
    end)
  end)

  it("keeps INT64 extremes exactly and orders its statistics signed", function()
    local docs = { { n = "9223372036854775807" }, { n = "-9223372036854775808" }, { n = -1 }, { n = 0 },
                   { n = "9223372036854775808" } }
    if math.maxinteger then
      docs[#docs + 1] = { n = math.maxinteger }
      docs[#docs + 1] = { n = math.mininteger }
    end
    support.with_file(function(path)
      local r = support.write(path, { { name = "n", type = "int64" } }, docs)
      assert.are.same({ n = 1 }, r.invalid) -- 2^63 does not fit
      local got = rows_of(path, "n::VARCHAR AS n")
      assert.are.equal("9223372036854775807", got[1].n)
      assert.are.equal("-9223372036854775808", got[2].n)
      assert.are.equal("-1", got[3].n)
      assert.are.equal(json.null, got[5].n)
      local m = metadata(path).n[1]
      assert.are.equal("-9223372036854775808", m.min)
      assert.are.equal("9223372036854775807", m.max)
      assert.are.equal(1, m.nulls)
    end)
  end)

  it("keeps -0.0 and huge doubles, and writes NaN and infinities as null (counted)", function()
    local docs = { { d = -0.0 }, { d = 1e308 }, { d = -1e308 }, { d = 5e-324 }, { d = 0 / 0 },
                   { d = math.huge }, { d = -math.huge }, { d = 0.1 } }
    support.with_file(function(path)
      local r = support.write(path, { { name = "d", type = "double" } }, docs)
      assert.are.same({ d = 3 }, r.invalid)
      local got = rows_of(path, "d, signbit(d) AS neg")
      assert.are.equal(0, got[1].d)
      assert.is_true(got[1].neg)
      assert.are.equal(1e308, got[2].d)
      assert.are.equal(-1e308, got[3].d)
      assert.are.equal(5e-324, got[4].d)
      for i = 5, 7 do assert.are.equal(json.null, got[i].d) end
      assert.are.equal(0.1, got[8].d)
      local m = metadata(path).d[1]
      assert.are.equal(-1e308, tonumber(m.min))
      assert.are.equal(1e308, tonumber(m.max))
      assert.are.equal(3, m.nulls)
    end)
  end)

  it("writes chunk statistics equal to the real bounds and null counts of each row group", function()
    local cols = { { name = "i", type = "int64" }, { name = "d", type = "double" }, { name = "b", type = "boolean" },
                   { name = "s", type = "string" } }
    support.with_file(function(path)
      local docs = {}
      for k = 1, 4000 do
        local x = (k * 7907) % 4001 - 2000
        docs[k] = { i = (k % 11 ~= 0) and x or nil, d = (k % 13 ~= 0) and x / 8 or nil,
                    b = (k % 5 == 0) or nil, s = (k % 17 ~= 0) and ("s" .. x) or nil }
      end
      local r = support.write(path, cols, docs, { row_group_bytes = 32 * 1024, page_bytes = 1024 })
      assert.is_true(r.row_groups > 1)
      local m = metadata(path)
      -- the rows of each row group, from the num_values of its chunks
      local first = 1
      for g = 1, r.row_groups do
        local n = m.i[g].n
        local want = { i = {}, d = {}, b = {}, s = {} }
        for _, c in ipairs(cols) do want[c.name] = { nulls = 0 } end
        for k = first, first + n - 1 do
          for _, c in ipairs(cols) do
            local v, w = docs[k][c.name], want[c.name]
            if v == nil then
              w.nulls = w.nulls + 1
            elseif c.type == "string" then
              if w.min == nil or bytes_less(v, w.min) then w.min = v end
              if w.max == nil or bytes_less(w.max, v) then w.max = v end
            elseif c.type == "boolean" then
              w.min, w.max = true, true
            else
              if w.min == nil or v < w.min then w.min = v end
              if w.max == nil or v > w.max then w.max = v end
            end
          end
        end
        first = first + n
        assert.are.equal(want.i.nulls, m.i[g].nulls)
        assert.are.equal(want.i.min, tonumber(m.i[g].min))
        assert.are.equal(want.i.max, tonumber(m.i[g].max))
        assert.are.equal(want.d.nulls, m.d[g].nulls)
        assert.are.equal(want.d.min, tonumber(m.d[g].min))
        assert.are.equal(want.d.max, tonumber(m.d[g].max))
        assert.are.equal(want.b.nulls, m.b[g].nulls)
        assert.are.equal("true", m.b[g].min)
        assert.are.equal(want.s.nulls, m.s[g].nulls)
        assert.are.equal(want.s.min, m.s[g].min)
        assert.are.equal(want.s.max, m.s[g].max)
      end
      assert.are.equal(4001, first)
    end)
  end)

  it("writes large values whole and leaves bounds longer than 512 bytes out of the statistics", function()
    local big = string.rep("0123456789abcdef", 12800) -- 200 KiB
    support.with_file(function(path)
      support.write(path, { { name = "s", type = "string" } },
        { { s = big }, { s = string.rep("b", 600) }, { s = "a" } }, { page_bytes = 1024 })
      local got = rows_of(path, "length(s) AS n, md5(s) AS h")
      assert.are.equal("204800", tostring(got[1].n))
      assert.are.equal(600, tonumber(got[2].n))
      local want = duckdb.query({ "SELECT md5(repeat('0123456789abcdef', 12800)) AS h" })[1][1].h
      assert.are.equal(want, got[1].h)
      local m = metadata(path).s[1]
      assert.are.equal(json.null, m.min)
      assert.are.equal(json.null, m.max)
      assert.are.equal(0, m.nulls)
    end)
  end)
end)
