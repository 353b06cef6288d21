-- The part files of a Parquet export (espipe.pipeline.export.parquet_parts)
-- fed rows directly: Hive partitions interleaved past the cap on open files,
-- so the least recently used one is finished and later reopened as a new part.
local parquet = require "espipe.parquet"
local parquet_parts = require "espipe.pipeline.export.parquet_parts"
local S = require "pipeline.support"
local duckdb = require "parquet.duckdb"

local COLUMNS = parquet.schema.from_mapping({ properties = {
  ["@timestamp"] = { type = "date" }, n = { type = "long" } } }, { prefix = "_source", meta = { "_id" } })

-- the export writer: the finished files it is told of
local function recorder()
  local w = { files = {} }
  function w.add_file(self, name, rows) self.files[#self.files + 1] = { name = name, rows = rows } end
  return w
end

-- files still being written, in every partition directory
local function in_progress(dir)
  return tonumber(S.sh("find " .. S.q(dir) .. " -name '*.inprogress' | wc -l"))
end

describe("parquet_parts, partitioned #duckdb", function()
  after_each(S.cleanup)

  it("keeps at most max_open_partitions files open, finishing the least recently used", function()
    local dir = S.tmpdir()
    local w = recorder()
    local parts = parquet_parts.new(parquet, dir, w,
      { partition_by = "day={@timestamp:%Y-%m-%d}", max_open_partitions = 2, parquet_codec = "none" })
    local days, written, most_open, sums = { "2024-01-01", "2024-01-02", "2024-01-03" }, 0, 0, {}
    -- pages of 10 rows, each of one day, the days taking turns: every page reopens a day
    for page = 1, 9 do
      local day, hits = days[(page - 1) % 3 + 1], {}
      for k = 1, 10 do
        written = written + 1
        sums[day] = (sums[day] or 0) + written
        hits[k] = { _id = tostring(written), _source = { ["@timestamp"] = day .. "T10:00:00Z", n = written } }
      end
      assert(parts.write(COLUMNS, hits))
      most_open = math.max(most_open, in_progress(dir))
    end
    assert.equal(2, most_open)
    assert(parts.finish_file())
    assert.equal(0, in_progress(dir))
    local per_day = {}
    for _, p in ipairs(parts.partitions) do per_day[p.name] = p.rows end
    assert.same({ ["day=2024-01-01"] = 30, ["day=2024-01-02"] = 30, ["day=2024-01-03"] = 30 }, per_day)
    -- each day was written three times, its file finished in between: three parts
    local names = {}
    for _, f in ipairs(w.files) do names[#names + 1] = f.name end
    table.sort(names)
    assert.equal(9, #names)
    assert.equal("day=2024-01-01/part-00002.parquet", names[3])
    local r = duckdb.query { "SELECT day::VARCHAR AS d, count(*)::VARCHAR AS n, sum(n)::VARCHAR AS s FROM read_parquet("
      .. duckdb.quote(dir .. "/*/*.parquet") .. ", hive_partitioning = true) GROUP BY 1 ORDER BY 1" }[1]
    local want = {}
    for i, day in ipairs(days) do want[i] = { d = day, n = "30", s = tostring(sums[day]) } end
    assert.same(want, r)
  end)
end)
