-- date_nanos as TIMESTAMP(NANOS), unsigned_long as DECIMAL(20,0), read back
-- exactly by DuckDB and parquet-wasm; the footer is the same bytes for the
-- same data and metadata.
local parquet = require "espipe.parquet"
local duckdb = require "parquet.duckdb"
local support = require "parquet.support"

local COLUMNS = {
  { name = "ts", type = "timestamp_ns", path = { "_source", "ts" } },
  { name = "u", type = "decimal", path = { "_source", "u" } },
}

local BODY = [[{"hits":{"hits":[
  {"_source":{"ts":"2024-01-15T10:00:00.123456789Z","u":18446744073709551615}},
  {"_source":{"ts":1700000000123,"u":"42"}},
  {"_source":{"ts":"1969-12-31T23:59:59.5+00:00","u":-1}},
  {"_source":{"ts":"not a date","u":7.9}}]}}]]

local function read(path)
  return assert(io.open(path, "rb")):read("*a")
end

describe("Parquet date_nanos and unsigned_long #duckdb", function()
  it("keeps nanoseconds and all 20 digits", function()
    support.with_file(function(path)
      local w = assert(parquet.open(path, COLUMNS))
      assert(w:write_page(BODY))
      local info = assert(w:close())
      assert.same({ u = 1, ts = 1 }, info.invalid)
      local file = duckdb.arrow { path }[1]
      assert.equal("Timestamp<NANOSECOND, UTC>", file.schema[1].type)
      assert.equal("Decimal[20e0]", file.schema[2].type)
      local ts, u = {}, {}
      for i, r in ipairs(file.rows) do ts[i], u[i] = r.ts, r.u end
      assert.same({ "1705312800123456789", "1700000000123000000", "-500000000" }, { ts[1], ts[2], ts[3] })
      assert.same({ "18446744073709551615", "42" }, { u[1], u[2] })
      assert.equal(require("espipe.json").null, u[3])
      assert.equal("7", u[4])
      local r = duckdb.query { "SELECT typeof(u) t, max(u)::VARCHAR m, sum(u)::VARCHAR s FROM read_parquet("
        .. duckdb.quote(path) .. ") GROUP BY 1" }[1][1]
      assert.same({ t = "DECIMAL(20,0)", m = "18446744073709551615", s = "18446744073709551664" }, r)
    end)
  end)

  it("writes the same bytes twice, whatever order the metadata table has", function()
    support.with_file(function(a)
      support.with_file(function(b)
        local meta1, meta2 = {}, {}
        for i = 1, 20 do meta1["k" .. i] = tostring(i) end
        for i = 20, 1, -1 do meta2["k" .. i] = tostring(i) end
        for _, p in ipairs { { a, meta1 }, { b, meta2 } } do
          local w = assert(parquet.open(p[1], COLUMNS, { metadata = p[2] }))
          assert(w:write_page(BODY))
          assert(w:close())
        end
        assert.equal(read(a), read(b))
        -- in the footer, each key is a Thrift binary: its length byte, then its bytes
        local bytes, sorted = read(a), { "espipe.columns" }
        for i = 1, 20 do sorted[#sorted + 1] = "k" .. i end
        table.sort(sorted)
        local last = 0
        for _, k in ipairs(sorted) do
          local at = bytes:find(string.char(#k) .. k, 1, true)
          assert.is_true(at > last, k .. " is out of order")
          last = at
        end
        assert.equal(21, #duckdb.arrow { a }[1].metadata_keys)
      end)
    end)
  end)
end)
