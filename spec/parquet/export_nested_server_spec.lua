-- espipe export --format parquet, nested layout, against the dev server:
-- lists, structs three deep, nested documents, geo points in all four input
-- forms, date and date_nanos, unsigned_long, unicode and Athena-hostile
-- keys. Both readers (DuckDB and parquet-wasm) give back every document as
-- the reference mapping says (compared by _id), and the queries analysts
-- write (UNNEST, geo.lat, list_contains, GROUP BY) the documents' answers;
-- Hive partitions are pruned (EXPLAIN ANALYZE shows the filter on files).
local devserver = require "support.devserver"
local json = require "espipe.json"
local S = require "pipeline.support"
local J = require "pipeline.jobs"
local duckdb = require "parquet.duckdb"
local ref = require "parquet.reference"

local N = 1200
local BASE_MS = 1714567890123
local GEO_FORMS = {
  function(lat, lon) return { lat = lat, lon = lon } end,
  function(lat, lon) return lat .. "," .. lon end,
  function(lat, lon) return { lon, lat } end,
  function(lat, lon) return string.format("POINT (%s %s)", lon, lat) end,
}

local MAPPING = {
  dynamic = false,
  properties = {
    ["@timestamp"] = { type = "date" },
    seen_ns = { type = "date_nanos" },
    tags = { type = "keyword" },
    scores = { type = "double" },
    user = { properties = {
      name = { type = "keyword" }, ["caf\195\169"] = { type = "keyword" },
      addr = { properties = { city = { type = "keyword" }, zip = { properties = { code = { type = "long" } } } } },
    } },
    geo = { type = "geo_point" },
    items = { type = "nested", properties = { sku = { type = "keyword" }, qty = { type = "long" } } },
    ["a:b"] = { type = "keyword" },
    big = { type = "unsigned_long" },
    message = { type = "text" },
    labels = { type = "flattened" },
  },
}

-- What an analyst expects the columns to be (the names DuckDB shows).
local COLUMNS = {
  { name = "_id", type = "string" },
  { name = "@timestamp", type = "timestamp" },
  { name = "a_b", key = "a:b", type = "string" },
  { name = "big", type = "decimal" },
  { name = "geo", type = "geo_point" },
  { name = "labels", type = "map" },
  { name = "message", type = "string" },
  { name = "items", type = "list", element = { type = "struct", fields = {
    { name = "qty", type = "int64" }, { name = "sku", type = "string" } } } },
  { name = "scores", type = "list", element = { type = "double" } },
  { name = "seen_ns", type = "timestamp_ns" },
  { name = "tags", type = "list", element = { type = "string" } },
  { name = "user", type = "struct", fields = {
    { name = "addr", type = "struct", fields = {
      { name = "city", type = "string" },
      { name = "zip", type = "struct", fields = { { name = "code", type = "int64" } } } } },
    { name = "caf\195\169", type = "string" },
    { name = "name", type = "string" } } },
}

-- about 300 bytes of words that compress like log text (a fixed LCG: the same each run)
local function message(i)
  local words, x = {}, i * 2654435761 % 4294967296
  for k = 1, 40 do
    x = (x * 1103515245 + 12345) % 2147483648
    words[k] = string.format("%x", x % 65536)
  end
  return table.concat(words, " ")
end

local STEP_MS = 7 * 3600 * 1000 + 1237 -- 1200 documents over about 350 days

local function doc(i)
  local ms = BASE_MS + i * STEP_MS
  local d = {
    ["@timestamp"] = ms,
    seen_ns = os.date("!%Y-%m-%dT%H:%M:%S", math.floor(ms / 1000))
      .. string.format(".%09dZ", (ms % 1000) * 1000000 + i),
    user = { name = "u" .. (i % 7), ["caf\195\169"] = "\226\152\149" .. (i % 3),
      addr = { city = "c" .. (i % 5), zip = { code = i % 100 } } },
    geo = GEO_FORMS[i % 4 + 1]((i % 80) + 0.5, -((i % 170) + 0.25)),
    items = { { sku = "k" .. (i % 9), qty = i }, { sku = "x", qty = 1 } },
    ["a:b"] = "v" .. (i % 2),
    big = "1844674407370955" .. string.format("%04d", i),
    message = message(i),
    labels = { env = "e" .. (i % 2), tier = tostring(i % 3) },
  }
  if i % 10 == 0 then d.tags = json.array {} -- an empty list
  elseif i % 10 == 1 then d.tags = "solo" -- one value: a one-element list
  elseif i % 10 ~= 2 then d.tags = { "t" .. (i % 3), "t" .. (i % 4 + 3) } end -- 2: absent, null
  if i % 3 == 0 then d.scores = { i / 4, -i } end
  if i % 11 == 0 then d.user = nil; d.items = nil end
  return d
end

local function expected_row(i, d)
  local row = { _id = "d" .. i }
  for _, c in ipairs(COLUMNS) do
    if c.type ~= "timestamp" and c.type ~= "timestamp_ns" and c.type ~= "decimal" and c.name ~= "_id" then
      row[c.name] = ref.expect(c, d[c.key or c.name])
    end
  end
  return row
end

describe("espipe export --format parquet, nested #server #duckdb", function()
  local env = devserver.env { nodes = 1 }
  setup(env.start) teardown(env.stop) before_each(env.fresh)
  local docs = {}

  setup(function()
    assert(env.client.indices:create { index = "web", mappings = MAPPING })
    local bi = env.client:bulk_indexer { index = "web", batch_docs = 500 }
    for i = 1, N do
      docs[i] = doc(i)
      bi:index(docs[i], { id = "d" .. i })
    end
    assert.equal(N, bi:close().ok)
    env.client:refresh { index = "web" }
  end)

  local function export(out, extra)
    return J.espipe("export " .. env.server.url .. "/web --to " .. S.q(out) .. " --format parquet --json " .. (extra or ""))
  end

  -- every row of both readers, by _id, against the reference
  local function check_rows(glob, files)
    local plain = "* EXCLUDE (\"@timestamp\", seen_ns, big)"
    local rows = duckdb.query { "SELECT " .. plain .. " FROM read_parquet(" .. duckdb.quote(glob) .. ")" }[1]
    assert.equal(N, #rows)
    local by_id = {}
    for _, r in ipairs(rows) do by_id[r._id] = r end
    for i = 1, N do assert.same(ref.normal(expected_row(i, docs[i])), ref.normal(by_id["d" .. i]), "DuckDB d" .. i) end
    local arrow_rows = {}
    for _, f in ipairs(duckdb.arrow(files)) do
      for _, r in ipairs(f.rows) do arrow_rows[r._id] = r end
    end
    for i = 1, N do
      local r = assert(arrow_rows["d" .. i], "parquet-wasm lacks d" .. i)
      local ms = docs[i]["@timestamp"]
      assert.equal(tostring(ms), r["@timestamp"])
      local frac = tonumber(docs[i].seen_ns:match("%.(%d+)Z$"))
      assert.equal(string.format("%d", math.floor(ms / 1000)) .. string.format("%09d", frac), r.seen_ns)
      assert.equal(docs[i].big, r.big)
      r["@timestamp"], r.seen_ns, r.big = nil, nil, nil
      assert.same(ref.normal(expected_row(i, docs[i])), ref.normal(r), "parquet-wasm d" .. i)
    end
  end

  it("writes one file for --to x.parquet that both readers give back document by document", function()
    local out = env.dir .. "/web.parquet"
    local code, stdout, err = export(out, "--size 300")
    assert.equal(0, code, err)
    assert.equal(N, json.decode(stdout).rows)
    assert.is_nil(io.open(env.dir .. "/manifest.json"))
    assert.same({ "web.parquet" }, S.listdir(env.dir))
    assert.matches("renamed for Athena/Glue: a:b %-> a_b", err)
    check_rows(out, { out })
    local types = {}
    for _, r in ipairs(duckdb.query { "DESCRIBE SELECT * FROM read_parquet(" .. duckdb.quote(out) .. ")" }[1]) do
      types[r.column_name] = r.column_type
    end
    assert.same({
      _id = "VARCHAR", ["@timestamp"] = "TIMESTAMP WITH TIME ZONE", seen_ns = "TIMESTAMP WITH TIME ZONE",
      a_b = "VARCHAR", big = "DECIMAL(20,0)", message = "VARCHAR", labels = "MAP(VARCHAR, VARCHAR)",
      geo = "STRUCT(lat DOUBLE, lon DOUBLE)",
      items = "STRUCT(qty BIGINT, sku VARCHAR)[]", scores = "DOUBLE[]", tags = "VARCHAR[]",
      user = "STRUCT(addr STRUCT(city VARCHAR, zip STRUCT(code BIGINT)), \"caf\195\169\" VARCHAR, \"name\" VARCHAR)",
    }, types)
    local meta = duckdb.arrow { out }[1].metadata
    assert.same({ ["a:b"] = "a_b" }, json.decode(meta["espipe.renamed"]))
  end)

  it("answers UNNEST(tags), geo.lat, list_contains and GROUP BY on the rotated parts as the documents do", function()
    local out = env.dir .. "/parts"
    local code, _, err = export(out, "--file-bytes 50000 --size 10 --codec zstd --rename user.name=login")
    assert.equal(0, code, err)
    local m = json.decode(S.read(out .. "/manifest.json"))
    assert.is_true(#m.files >= 3, S.read(out .. "/manifest.json"))
    for k, f in ipairs(m.files) do
      if k < #m.files then
        assert.is_true(f.bytes >= 45000 and f.bytes <= 55000, f.name .. " has " .. f.bytes .. " bytes")
      end
    end
    local renamed = {}
    for _, r in ipairs(m.renamed) do renamed[r.field] = r.column end
    assert.same({ ["a:b"] = "a_b", ["user.name"] = "login" }, renamed)
    -- printed once for the export, not once per part file
    local _, printed = err:gsub("renamed for Athena/Glue", "")
    assert.equal(1, printed, err)
    local tags, with_t1, north, by_login, qty = {}, 0, 0, {}, 0
    for _, d in ipairs(docs) do
      local list = ref.absent(d.tags) and {} or (ref.is_array(d.tags) and d.tags or { d.tags })
      local has = false
      for _, t in ipairs(list) do
        tags[t] = (tags[t] or 0) + 1
        has = has or t == "t1"
      end
      if has then with_t1 = with_t1 + 1 end
      if ref.geo(d.geo).lat > 40 then north = north + 1 end
      if d.user then by_login[d.user.name] = (by_login[d.user.name] or 0) + 1 end
      for _, it in ipairs(d.items or {}) do qty = qty + it.qty end
    end
    local src = "read_parquet(" .. duckdb.quote(out .. "/*.parquet") .. ")"
    local r = duckdb.query {
      "SELECT t, count(*) n FROM (SELECT UNNEST(tags) t FROM " .. src .. ") GROUP BY t",
      "SELECT count(*) n FROM " .. src .. " WHERE list_contains(tags, 't1')",
      "SELECT count(*) n FROM " .. src .. " WHERE geo.lat > 40",
      "SELECT user.login l, count(*) n FROM " .. src .. " WHERE user IS NOT NULL GROUP BY 1",
      "SELECT sum(i.qty) s FROM (SELECT UNNEST(items) i FROM " .. src .. ")",
    }
    local got = {}
    for _, row in ipairs(r[1]) do got[row.t] = tonumber(row.n) end
    assert.same(tags, got)
    assert.equal(with_t1, tonumber(r[2][1].n))
    assert.equal(north, tonumber(r[3][1].n))
    got = {}
    for _, row in ipairs(r[4]) do got[row.l] = tonumber(row.n) end
    assert.same(by_login, got)
    assert.equal(qty, tonumber(r[5][1].s))
  end)

  it("writes Hive partitions that DuckDB prunes, with a cap on open files", function()
    local out = env.dir .. "/hive"
    local code, stdout, err = export(out,
      "--partition-by 'month={@timestamp:%Y-%m}' --max-open-partitions 2 --size 100")
    assert.equal(0, code, err)
    local per_month = {}
    for _, d in ipairs(docs) do
      local m = os.date("!%Y-%m", math.floor(d["@timestamp"] / 1000))
      per_month[m] = (per_month[m] or 0) + 1
    end
    local m = json.decode(S.read(out .. "/manifest.json"))
    assert.equal(N, json.decode(stdout).rows)
    local listed = {}
    for _, p in ipairs(m.partitions) do listed[p.name] = p.rows end
    local want = {}
    for month, n in pairs(per_month) do want["month=" .. month] = n end
    assert.same(want, listed)
    for _, f in ipairs(m.files) do
      assert.matches("^month=%d%d%d%d%-%d%d/part%-%d%d%d%d%d%.parquet$", f.name)
      assert.equal(f.bytes, #S.read(out .. "/" .. f.name))
    end
    local src = "read_parquet(" .. duckdb.quote(out .. "/*/*.parquet") .. ", hive_partitioning = true)"
    local month = "2024-09"
    local r = duckdb.query {
      "SELECT month::VARCHAR AS m, count(*) n FROM " .. src .. " GROUP BY 1",
      "EXPLAIN ANALYZE SELECT _id FROM " .. src .. " WHERE month = '" .. month .. "'",
      "SELECT count(*) n FROM " .. src .. " WHERE month = '" .. month .. "'",
    }
    local got = {}
    for _, row in ipairs(r[1]) do got[row.m] = tonumber(row.n) end
    assert.same(per_month, got)
    local in_month = 0
    for _, f in ipairs(m.files) do
      if f.name:find("month=" .. month .. "/", 1, true) then in_month = in_month + 1 end
    end
    -- the filter went to the partitions: only that directory's files are read
    local plan = r[2][1].explain_value:gsub("\226\148\130", " "):gsub("%s+", " ")
    assert.truthy(plan:find("File Filters: (month = '" .. month .. "')", 1, true), plan)
    assert.truthy(plan:find("Scanning Files: " .. in_month .. "/" .. #m.files .. " ", 1, true), plan)
    assert.equal(per_month[month], tonumber(r[3][1].n))
  end)

  it("infers lists and structs from the documents when the mapping has no fields", function()
    assert(env.client.indices:create { index = "bare", mappings = { dynamic = false } })
    local bi = env.client:bulk_indexer { index = "bare", batch_docs = 100 }
    for i = 1, 50 do bi:index({ tags = { "a", "b" .. i }, user = { name = "u" .. i, age = i } }, { id = "b" .. i }) end
    assert.equal(50, bi:close().ok)
    env.client:refresh { index = "bare" }
    local out = env.dir .. "/bare.parquet"
    local code, _, err = J.espipe("export " .. env.server.url .. "/bare --to " .. S.q(out) .. " --format parquet --quiet")
    assert.equal(0, code, err)
    local types = {}
    for _, r in ipairs(duckdb.query { "DESCRIBE SELECT * FROM read_parquet(" .. duckdb.quote(out) .. ")" }[1]) do
      types[r.column_name] = r.column_type
    end
    assert.same({ _id = "VARCHAR", tags = "VARCHAR[]", user = "STRUCT(age BIGINT, \"name\" VARCHAR)" }, types)
    local r = duckdb.query { "SELECT sum(user.age) s, count(*) FILTER (WHERE list_contains(tags, 'b7')) n "
      .. "FROM read_parquet(" .. duckdb.quote(out) .. ")" }[1][1]
    assert.same({ s = "1275", n = "1" }, r)
  end)
end)
