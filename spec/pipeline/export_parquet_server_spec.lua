-- espipe export --format parquet against the dev server, checked by DuckDB:
-- every codec reads back equal to the documents that were loaded (counts,
-- sums, min/max, nulls, distinct counts, sampled rows value by value);
-- rotation at a small --file-bytes; a value that does not fit its column is
-- null and counted; schemas inferred when the mapping has no fields.
local devserver = require "support.devserver"
local json = require "espipe.json"
local S = require "pipeline.support"
local J = require "pipeline.jobs"
local duckdb = require "parquet.duckdb"

local N = 3000
local BASE_MS = 1714567890123
local LEVELS = { "INFO", "WARN", "ERROR", "DEBUG" }
local STATUS = { 200, 201, 304, 404, 500 }

-- Expected values are built here from i alone, not read back from anything
-- espipe wrote.
local function expected(i)
  local ms = BASE_MS + i * 1237
  local e = {
    id = "log-" .. i, ms = ms,
    host_name = "web-" .. (i % 17), host_ip = "10.0." .. (i % 8) .. "." .. (i % 250),
    level = (i % 11 ~= 0) and LEVELS[i % 4 + 1] or nil,
    http_status = STATUS[i % 5 + 1], http_bytes = i * 3000001,
    duration_ms = i / 8 + 0.001, ok = i % 3 ~= 0,
    user_id = "u-" .. (i % 101),
    message = "caf\195\169 \226\152\131 request " .. i .. " \"quoted\" / done",
  }
  if i % 5 == 0 then
    e.tags_value, e.tags_text = { "solo" }, "solo"
  else
    local region = ({ "eu-west-1", "us-east-1", "ap-south-1" })[i % 3 + 1]
    e.tags_value, e.tags_text = { "prod", region }, '["prod","' .. region .. '"]'
  end
  if i % 13 == 0 then
    e.code_value, e.code = "n/a", nil -- a long field holding text: null, counted invalid
  elseif i % 17 == 0 then
    e.code_value, e.code = tostring(i), i -- a numeric string: ES coerces it, counted
  else
    e.code_value, e.code = i * 2, i * 2
  end
  return e
end

local function source(e, i)
  local ts
  if i % 7 == 0 then
    ts = e.ms -- epoch_millis as a number, which a date field also takes
  else
    ts = os.date("!%Y-%m-%dT%H:%M:%S", math.floor(e.ms / 1000)) .. string.format(".%03dZ", e.ms % 1000)
  end
  return {
    ["@timestamp"] = ts, host = { name = e.host_name, ip = e.host_ip }, level = e.level,
    http = { status = e.http_status, bytes = e.http_bytes }, duration_ms = e.duration_ms,
    ok = e.ok, tags = e.tags_value, message = e.message, user = { id = e.user_id },
    code = e.code_value,
  }
end

local MAPPING = {
  dynamic = false,
  properties = {
    ["@timestamp"] = { type = "date" },
    host = { properties = { name = { type = "keyword" }, ip = { type = "ip" } } },
    level = { type = "keyword" },
    http = { properties = { status = { type = "integer" }, bytes = { type = "long" } } },
    duration_ms = { type = "double" }, ok = { type = "boolean" },
    tags = { type = "keyword" }, message = { type = "text" },
    user = { properties = { id = { type = "keyword" } } },
  },
}

local function big(x) return string.format("%.0f", x) end

local function parquet_glob(dir) return duckdb.quote(dir .. "/*.parquet") end

local function read_manifest(dir) return json.decode(S.read(dir .. "/manifest.json")) end

describe("espipe export --format parquet #server #duckdb", function()
  local env = devserver.env { nodes = 1 }
  setup(env.start) teardown(env.stop) before_each(env.fresh)
  local want = {}

  setup(function()
    assert(env.client.indices:create { index = "logs", mappings = MAPPING })
    local bi = env.client:bulk_indexer { index = "logs", batch_docs = 500 }
    for i = 1, N do
      want[i] = expected(i)
      bi:index(source(want[i], i), { id = want[i].id })
    end
    local stats = bi:close()
    assert(stats.ok == N, "loaded " .. tostring(stats.ok) .. " of " .. N)
    -- mapped after the fact, as ES allows: _source keeps "n/a" in a long field
    assert(env.client.indices:put_mapping { index = "logs", properties = { code = { type = "long" } } })
    env.client:refresh { index = "logs" }
  end)

  local function export(out, extra)
    return J.espipe("export " .. env.server.url .. "/logs --to " .. S.q(out) .. " --format parquet --flatten --quiet --json "
      .. (extra or ""))
  end

  -- the figures DuckDB must find, from the expected documents
  local totals = { bytes_sum = 0, bytes_min = math.huge, bytes_max = -math.huge, dur_min = math.huge,
    dur_max = -math.huge, dur_sum = 0, level_nulls = 0, ok_true = 0, code_sum = 0, code_count = 0,
    hosts = {}, users = {}, invalid = 0, coerced = 0, tags_as_json = 0, ms_min = math.huge, ms_max = -math.huge }
  local function compute_totals()
    if totals.done then return totals end
    local t = totals
    local nh, nu = 0, 0
    for i = 1, N do
      local e = want[i]
      t.bytes_sum = t.bytes_sum + e.http_bytes
      t.bytes_min, t.bytes_max = math.min(t.bytes_min, e.http_bytes), math.max(t.bytes_max, e.http_bytes)
      t.dur_sum = t.dur_sum + e.duration_ms
      t.dur_min, t.dur_max = math.min(t.dur_min, e.duration_ms), math.max(t.dur_max, e.duration_ms)
      t.ms_min, t.ms_max = math.min(t.ms_min, e.ms), math.max(t.ms_max, e.ms)
      if e.level == nil then t.level_nulls = t.level_nulls + 1 end
      if e.ok then t.ok_true = t.ok_true + 1 end
      if e.code then t.code_sum = t.code_sum + e.code; t.code_count = t.code_count + 1 end
      if e.code_value == "n/a" then t.invalid = t.invalid + 1 end
      if type(e.code_value) == "string" and e.code then t.coerced = t.coerced + 1 end
      if #e.tags_value > 1 then t.tags_as_json = t.tags_as_json + 1 end
      if not t.hosts[e.host_name] then t.hosts[e.host_name] = true; nh = nh + 1 end
      if not t.users[e.user_id] then t.users[e.user_id] = true; nu = nu + 1 end
    end
    t.distinct_hosts, t.distinct_users, t.done = nh, nu, true
    return t
  end

  local SAMPLE = { 1, 2, 5, 7, 11, 13, 17, 35, 143, 221, 1001, N }

  for _, codec in ipairs { "none", "snappy", "zstd", "gzip" } do
    it("writes " .. codec .. " files that DuckDB reads back equal to the source documents", function()
      local out = env.dir .. "/" .. codec
      local code, stdout, err = export(out, "--codec " .. codec .. " --slices 2 --size 400")
      assert.equal(0, code, err)
      local t = compute_totals()
      local m = read_manifest(out)
      assert.equal(N, m.rows)
      assert.equal(codec, m.compression)
      local ids = {}
      for _, s in ipairs(SAMPLE) do ids[#ids + 1] = duckdb.quote(want[s].id) end
      local src = "read_parquet(" .. parquet_glob(out) .. ")"
      local r = duckdb.query {
        "SELECT count(*)::VARCHAR AS n, count(DISTINCT _id)::VARCHAR AS ids,"
          .. " sum(http_bytes)::VARCHAR AS bytes_sum, min(http_bytes)::VARCHAR AS bytes_min,"
          .. " max(http_bytes)::VARCHAR AS bytes_max, sum(duration_ms) AS dur_sum, min(duration_ms) AS dur_min,"
          .. " max(duration_ms) AS dur_max, min(epoch_ms(_timestamp))::VARCHAR AS ms_min,"
          .. " max(epoch_ms(_timestamp))::VARCHAR AS ms_max, count(*) FILTER (WHERE _timestamp IS NULL)::VARCHAR AS ts_nulls,"
          .. " count(*) FILTER (WHERE level IS NULL)::VARCHAR AS level_nulls,"
          .. " count(*) FILTER (WHERE ok)::VARCHAR AS ok_true, count(DISTINCT host_name)::VARCHAR AS hosts,"
          .. " count(DISTINCT user_id)::VARCHAR AS users, sum(code)::VARCHAR AS code_sum,"
          .. " count(code)::VARCHAR AS code_count FROM " .. src,
        "SELECT _id, epoch_ms(_timestamp)::VARCHAR AS ms, host_name, host_ip, level, http_status::VARCHAR AS http_status,"
          .. " http_bytes::VARCHAR AS http_bytes, duration_ms, ok, tags, message, user_id, code::VARCHAR AS code FROM "
          .. src .. " WHERE _id IN (" .. table.concat(ids, ",") .. ")",
        "SELECT DISTINCT typeof(_timestamp) AS ts, typeof(http_bytes) AS b, typeof(duration_ms) AS d,"
          .. " typeof(ok) AS o, typeof(code) AS c FROM " .. src,
      }
      local agg = r[1][1]
      assert.equal(tostring(N), agg.n)
      assert.equal(tostring(N), agg.ids)
      assert.equal(big(t.bytes_sum), agg.bytes_sum)
      assert.equal(big(t.bytes_min), agg.bytes_min)
      assert.equal(big(t.bytes_max), agg.bytes_max)
      assert.is_true(math.abs(agg.dur_sum - t.dur_sum) <= 1e-9 * t.dur_sum, "sum(duration_ms)")
      assert.equal(t.dur_min, agg.dur_min)
      assert.equal(t.dur_max, agg.dur_max)
      assert.equal(big(t.ms_min), agg.ms_min)
      assert.equal(big(t.ms_max), agg.ms_max)
      assert.equal("0", agg.ts_nulls)
      assert.equal(tostring(t.level_nulls), agg.level_nulls)
      assert.equal(tostring(t.ok_true), agg.ok_true)
      assert.equal(tostring(t.distinct_hosts), agg.hosts)
      assert.equal(tostring(t.distinct_users), agg.users)
      assert.equal(big(t.code_sum), agg.code_sum)
      assert.equal(tostring(t.code_count), agg.code_count)

      local rows = {}
      for _, row in ipairs(r[2]) do rows[row._id] = row end
      for _, s in ipairs(SAMPLE) do
        local e, row = want[s], rows[want[s].id]
        assert.is_table(row, e.id)
        assert.equal(big(e.ms), row.ms, e.id)
        assert.equal(e.host_name, row.host_name)
        assert.equal(e.host_ip, row.host_ip)
        assert.equal(e.level == nil and json.null or e.level, row.level, e.id)
        assert.equal(tostring(e.http_status), row.http_status)
        assert.equal(big(e.http_bytes), row.http_bytes)
        assert.equal(e.duration_ms, row.duration_ms)
        assert.equal(e.ok, row.ok)
        assert.equal(e.tags_text, row.tags, e.id)
        assert.equal(e.message, row.message)
        assert.equal(e.user_id, row.user_id)
        assert.equal(e.code and big(e.code) or json.null, row.code, e.id)
      end
      assert.same({ { ts = "TIMESTAMP WITH TIME ZONE", b = "BIGINT", d = "DOUBLE", o = "BOOLEAN", c = "BIGINT" } }, r[3])

      -- the text in a long field is null and counted; numeric strings and
      -- arrays in a keyword column (JSON text) are counted as coerced
      local summary = json.decode(stdout)
      local coerced = { code = t.coerced, tags = t.tags_as_json }
      assert.same({ code = t.invalid }, summary.invalid)
      assert.same(coerced, summary.coerced)
      assert.equal(t.invalid, summary.invalid_values)
      assert.same({ code = t.invalid }, m.invalid)
      assert.same(coerced, m.coerced)
      assert.matches(t.invalid .. " value%(s%) did not fit their column and were written as null: code=" .. t.invalid, err)
    end)
  end

  it("rotates at a small --file-bytes into complete files, each listed with its rows and bytes", function()
    local out = env.dir .. "/rot"
    local code, _, err = export(out, "--file-bytes 20000 --size 200") -- compressed bytes per file
    assert.equal(0, code, err)
    local m = read_manifest(out)
    assert.is_true(#m.files >= 4, #m.files .. " files")
    local names = S.listdir(out)
    assert.equal(#m.files + 1, #names) -- the parts and manifest.json, no temporary names
    local per_file = {}
    local r = duckdb.query { "SELECT parse_filename(filename) AS f, count(*)::VARCHAR AS n, count(DISTINCT _id)::VARCHAR AS d FROM read_parquet("
      .. parquet_glob(out) .. ", filename = true) GROUP BY 1" }
    for _, row in ipairs(r[1]) do per_file[row.f] = row end
    local rows, invalid = 0, 0
    for i, f in ipairs(m.files) do
      assert.equal(string.format("part-%05d.parquet", i - 1), f.name)
      local body = S.read(out .. "/" .. f.name)
      assert.equal(#body, f.bytes)
      assert.equal("PAR1", body:sub(1, 4))
      assert.equal("PAR1", body:sub(-4))
      assert.equal(tostring(f.rows), per_file[f.name].n)
      assert.equal(tostring(f.rows), per_file[f.name].d)
      rows = rows + f.rows
      invalid = invalid + ((f.invalid or {}).code or 0)
      -- nothing bigger than the limit plus the page that crossed it
      assert.is_true(f.bytes < 20000 + 200 * 400, f.name .. " has " .. f.bytes .. " bytes")
    end
    assert.equal(N, rows)
    assert.equal(N, m.rows)
    assert.equal(compute_totals().invalid, invalid)
    local total = duckdb.query { "SELECT count(DISTINCT _id)::VARCHAR AS n FROM read_parquet(" .. parquet_glob(out) .. ")" }
    assert.equal(tostring(N), total[1][1].n)
  end)

  it("sizes row groups by --row-group-bytes (uncompressed), one row group by default for a small export", function()
    local function groups(file)
      return duckdb.query { "SELECT row_group_id, max(row_group_num_rows)::VARCHAR AS n,"
        .. " sum(total_uncompressed_size)::VARCHAR AS b FROM parquet_metadata(" .. duckdb.quote(file)
        .. ") GROUP BY 1 ORDER BY 1" }[1]
    end
    local one = env.dir .. "/one.parquet"
    local code, _, err = export(one)
    assert.equal(0, code, err)
    local g = groups(one)
    assert.equal(1, #g)
    assert.equal(tostring(N), g[1].n)
    local limit = math.floor(tonumber(g[1].b) / 6)
    local split = env.dir .. "/split.parquet"
    code, _, err = export(split, "--row-group-bytes " .. limit)
    assert.equal(0, code, err)
    g = groups(split)
    assert.is_true(#g >= 6, #g .. " row groups")
    local rows = 0
    for k, rg in ipairs(g) do
      rows = rows + tonumber(rg.n)
      -- the limit bounds the buffered data (dictionary indices, levels), more than the pages it becomes
      assert.is_true(tonumber(rg.b) <= limit, "row group " .. k .. ": " .. rg.b .. " bytes")
    end
    assert.equal(N, rows)
  end)

  it("exports --fields only, and returns a config error (no files) when none is mapped", function()
    local out = env.dir .. "/fields"
    local code, _, err = export(out, "--fields host,code")
    assert.equal(0, code, err)
    local m = read_manifest(out)
    local names = {}
    for i, c in ipairs(m.columns) do names[i] = c.name end
    assert.same({ "_id", "host_ip", "host_name", "code" }, names)

    local export_mod = require "espipe.pipeline.export"
    local bad = env.dir .. "/none"
    local manifest, perr = export_mod.run { client = env.client, index = "logs", to = bad, format = "parquet",
      fields = { "no_such_field" } }
    assert.is_nil(manifest)
    assert.equal("config", perr.kind)
    assert.matches("no_such_field", tostring(perr))
    assert.is_nil(io.open(bad .. "/manifest.json"))
  end)

  it("infers the columns from the documents when the mapping has no fields", function()
    assert(env.client.indices:create { index = "bare", mappings = { dynamic = false } })
    local bi = env.client:bulk_indexer { index = "bare" }
    local sum = 0
    for i = 1, 120 do
      bi:index({ n = i, name = "x" .. i, flag = i % 2 == 0, seen_at = "2024-01-02T03:04:05.000Z",
        obj = { k = i * 0.5 } }, { id = tostring(i) })
      sum = sum + i
    end
    assert.equal(120, bi:close().ok)
    env.client:refresh { index = "bare" }
    local out = env.dir .. "/bare"
    local code, _, err = J.espipe("export " .. env.server.url .. "/bare --to " .. S.q(out) .. " --format parquet --flatten --quiet --size 50")
    assert.equal(0, code, err)
    local m = read_manifest(out)
    local types = {}
    for _, c in ipairs(m.columns) do types[c.name] = c.type end
    assert.same({ _id = "string", n = "int64", name = "string", flag = "boolean", seen_at = "timestamp",
      obj_k = "double" }, types)
    local r = duckdb.query { "SELECT sum(n)::VARCHAR AS s, count(*) FILTER (WHERE flag)::VARCHAR AS f,"
      .. " min(epoch_ms(seen_at))::VARCHAR AS seen_at, sum(obj_k) AS k FROM read_parquet(" .. parquet_glob(out) .. ")" }
    assert.equal(tostring(sum), r[1][1].s)
    assert.equal("60", r[1][1].f)
    assert.equal("1704164645000", r[1][1].seen_at)
    assert.equal(sum * 0.5, r[1][1].k)
  end)
end)
