-- Nested fields (LIST, STRUCT, LIST of STRUCT, geo points, MAP) written by
-- record shredding, read back by two independent readers (DuckDB and
-- parquet-wasm), row by row against the documents mapped by a reference
-- written here in Lua, and queried the way analysts do (UNNEST, geo.lat,
-- list_contains, GROUP BY).
local parquet = require "espipe.parquet"
local json = require "espipe.json"
local duckdb = require "parquet.duckdb"
local support = require "parquet.support"

local COLUMNS = {
  { name = "id", type = "string" },
  { name = "tags", type = "list", element = { type = "string" } },
  { name = "nums", type = "list", element = { type = "int64" } },
  { name = "scores", type = "list", element = { type = "double" } },
  { name = "user", type = "struct", fields = {
    { name = "name", type = "string" },
    { name = "caf\195\169", type = "string" },
    { name = "addr", type = "struct", fields = {
      { name = "city", type = "string" },
      { name = "zip", type = "struct", fields = { { name = "code", type = "int64" } } },
    } },
  } },
  { name = "geo", type = "geo_point" },
  { name = "items", type = "list", element = { type = "struct", fields = {
    { name = "sku", type = "string" },
    { name = "qty", type = "int64" },
    { name = "flags", type = "list", element = { type = "boolean" } },
  } } },
  { name = "labels", type = "map", value = "string" },
}

local ref = require "parquet.reference"
local expect, normal, is_array, absent, geo = ref.expect, ref.normal, ref.is_array, ref.absent, ref.geo

-- The documents, in every shape the rules cover.
local function corpus(n)
  local docs = {
    { id = "a", tags = { "web", "api" }, nums = { 1, 2, 3 }, scores = { 0.5, -2.25 },
      user = { name = "ann", ["caf\195\169"] = "\226\152\149", addr = { city = "Oslo", zip = { code = 150 } } },
      geo = { lat = 59.9, lon = 10.7 },
      items = { { sku = "s1", qty = 2, flags = { true, false } }, { sku = "s2" } },
      labels = { env = "prod", tier = "1" } },
    { id = "b", tags = "solo", nums = json.array {}, user = { name = "bob" }, geo = "41.12,-71.34",
      items = json.array {}, labels = {} },
    { id = "c", tags = json.array {}, geo = { -71.34, 41.12 } },
    { id = "d", tags = json.null, nums = { json.null, 5 }, geo = "drm3btev3e86",
      items = { sku = "s3", qty = 1, flags = true } },
    { id = "e", geo = "POINT (-71.34 41.12)", user = { { name = "eve" } }, scores = 7 },
    { id = "f", user = { addr = { zip = {} } }, items = { { flags = json.array {} } } },
  }
  for i = #docs + 1, n do
    docs[i] = { id = "g" .. i, tags = { "t" .. (i % 3), "t" .. (i % 5) }, nums = { i },
      user = { name = "u" .. (i % 4), addr = { city = "c" .. (i % 2) } },
      geo = { lat = (i % 90) + 0.5, lon = -(i % 180) - 0.25 },
      items = { { sku = "k" .. (i % 7), qty = i } } }
  end
  return docs
end

local function expected_rows(docs)
  local rows = {}
  for i, d in ipairs(docs) do
    local row = {}
    for _, c in ipairs(COLUMNS) do row[c.name] = expect(c, d[c.name]) end
    rows[i] = row
  end
  return rows
end

local function normal_rows(rows)
  local out = {}
  for i, r in ipairs(rows) do out[i] = normal(r) end
  return out
end

local function with_source(columns)
  local out = {}
  for i, c in ipairs(columns) do
    local copy = {}
    for k, v in pairs(c) do copy[k] = v end
    copy.path = { "_source", c.name }
    out[i] = copy
  end
  return out
end

local function page_body(docs)
  local hits = {}
  for i, d in ipairs(docs) do hits[i] = { _id = tostring(i), _source = d } end
  return json.encode { hits = { hits = hits } }
end

local function write(path, docs, how)
  if how == "rows" then return support.write(path, COLUMNS, docs) end
  local w = assert(parquet.open(path, with_source(COLUMNS), { page_bytes = 256 }))
  assert(w:write_page(page_body(docs)))
  return assert(w:close())
end

describe("Parquet nested fields #duckdb", function()
  local docs = corpus(300)
  local want = normal_rows(expected_rows(docs))

  for _, how in ipairs { "rows", "page" } do
    it("reads back document by document in DuckDB and parquet-wasm (" .. how .. ")", function()
      support.with_file(function(path)
        local info = write(path, docs, how)
        assert.equal(#docs, info.rows)
        assert.same({}, info.invalid)
        local q = duckdb.quote(path)
        local got = duckdb.query { "SELECT * EXCLUDE (file_row_number) FROM read_parquet(" .. q
          .. ", file_row_number = true) ORDER BY file_row_number" }[1]
        for i = 1, #docs do assert.same(want[i], normal(got[i]), "DuckDB row " .. i) end
        local file = duckdb.arrow { path }[1]
        assert.equal(#docs, #file.rows)
        for i = 1, #docs do assert.same(want[i], normal(file.rows[i]), "parquet-wasm row " .. i) end
        local types = {}
        for _, f in ipairs(file.schema) do types[f.name] = f.type end
        assert.equal("List<Utf8>", types.tags)
        assert.equal("Struct<{lat:Float64, lon:Float64}>", types.geo)
        assert.equal("Map<{key:Utf8, value:Utf8}>", types.labels)
      end)
    end)
  end

  it("answers UNNEST, geo.lat, list_contains and GROUP BY as the documents do", function()
    support.with_file(function(path)
      write(path, docs, "page")
      local unnest, tagged, north, by_user = {}, 0, 0, {}
      for _, d in ipairs(docs) do
        local tags = absent(d.tags) and {} or (is_array(d.tags) and d.tags or { d.tags })
        local has = false
        for _, t in ipairs(tags) do
          unnest[t] = (unnest[t] or 0) + 1
          if t == "t1" then has = true end
        end
        if has then tagged = tagged + 1 end
        local g = not absent(d.geo) and geo(d.geo)
        if g and g.lat > 45 then north = north + 1 end
        local user = is_array(d.user) and d.user[1] or d.user
        local u = type(user) == "table" and user.name
        if u then by_user[u] = (by_user[u] or 0) + 1 end
      end
      local q = duckdb.quote(path)
      local r = duckdb.query {
        "SELECT t, count(*) n FROM (SELECT UNNEST(tags) t FROM read_parquet(" .. q .. ")) GROUP BY t",
        "SELECT count(*) n FROM read_parquet(" .. q .. ") WHERE list_contains(tags, 't1')",
        "SELECT count(*) n FROM read_parquet(" .. q .. ") WHERE geo.lat > 45",
        "SELECT user.name u, count(*) n FROM read_parquet(" .. q .. ") WHERE user.name IS NOT NULL GROUP BY 1",
        "SELECT sum(qty) s FROM (SELECT UNNEST(items, recursive := true) FROM read_parquet(" .. q .. "))",
      }
      local got = {}
      for _, row in ipairs(r[1]) do got[row.t] = tonumber(row.n) end
      assert.same(unnest, got)
      assert.equal(tagged, tonumber(r[2][1].n))
      assert.equal(north, tonumber(r[3][1].n))
      got = {}
      for _, row in ipairs(r[4]) do got[row.u] = tonumber(row.n) end
      assert.same(by_user, got)
      local qty = 2 + 1
      for i = 7, #docs do qty = qty + i end
      assert.equal(qty, tonumber(r[5][1].s))
    end)
  end)

  it("keeps rows whole across pages and row groups", function()
    support.with_file(function(path)
      local many = corpus(3000)
      local w = assert(parquet.open(path, COLUMNS, { page_bytes = 64, row_group_bytes = 20000 }))
      assert(w:write_rows(many))
      local info = assert(w:close())
      assert.is_true(info.row_groups > 3)
      local q = duckdb.quote(path)
      local r = duckdb.query {
        "SELECT count(*) n, sum(len(tags)) t, sum(len(items)) i FROM read_parquet(" .. q .. ")",
      }[1][1]
      local tags, items = 0, 0
      for _, d in ipairs(many) do
        tags = tags + (absent(d.tags) and 0 or (is_array(d.tags) and #d.tags or 1))
        items = items + (absent(d.items) and 0 or (is_array(d.items) and #d.items or 1))
      end
      assert.equal(#many, tonumber(r.n))
      assert.equal(tags, tonumber(r.t))
      assert.equal(items, tonumber(r.i))
      local file = duckdb.arrow { path }[1]
      assert.equal(#many, #file.rows)
      assert.same(normal(expected_rows(many)[2999]), normal(file.rows[2999]))
    end)
  end)

  it("writes statistics and a dictionary for each leaf column, lists and structs included", function()
    -- each leaf's values and its entries without one (null or empty list, absent parent, null element)
    local leaves = { ["tags, list, element"] = { values = {}, nulls = 0 },
      ["nums, list, element"] = { values = {}, nulls = 0 },
      ["user, addr, city"] = { values = {}, nulls = 0 },
      ["items, list, element, qty"] = { values = {}, nulls = 0 } }
    local function entries(leaf, list, field)
      if list == ref.NULL or #list == 0 then leaf.nulls = leaf.nulls + 1 return end
      for _, x in ipairs(list) do
        local v = field and x ~= ref.NULL and x[field] or (not field and x) or ref.NULL
        if v == ref.NULL then leaf.nulls = leaf.nulls + 1 else leaf.values[#leaf.values + 1] = v end
      end
    end
    for _, row in ipairs(expected_rows(docs)) do
      entries(leaves["tags, list, element"], row.tags)
      entries(leaves["nums, list, element"], row.nums)
      local addr = row.user ~= ref.NULL and row.user.addr or ref.NULL
      entries(leaves["user, addr, city"], addr == ref.NULL and ref.NULL or { addr.city })
      entries(leaves["items, list, element, qty"], row.items, "qty")
    end
    support.with_file(function(path)
      write(path, docs, "page")
      local got = {}
      for _, m in ipairs(duckdb.query { "SELECT path_in_schema AS col, stats_min_value AS min,"
          .. " stats_max_value AS max, stats_null_count::INT AS nulls, encodings FROM parquet_metadata("
          .. duckdb.quote(path) .. ")" }[1]) do
        assert.is_nil(got[m.col], "one row group")
        got[m.col] = m
      end
      for col, leaf in pairs(leaves) do
        local numeric = col:find("nums") or col:find("qty")
        table.sort(leaf.values, function(a, b)
          if numeric then return tonumber(a) < tonumber(b) end
          return a < b -- ASCII here: byte order
        end)
        local m = assert(got[col], col)
        assert.equal(leaf.nulls, m.nulls, col)
        assert.equal(leaf.values[1], m.min, col)
        assert.equal(leaf.values[#leaf.values], m.max, col)
      end
      for _, col in ipairs { "tags, list, element", "user, addr, city", "items, list, element, sku" } do
        assert.matches("RLE_DICTIONARY", got[col].encodings, col)
      end
    end)
  end)

  it("counts a value that fits no field as invalid and writes null", function()
    support.with_file(function(path)
      local info = support.write(path, COLUMNS, {
        { id = "x", user = "not an object", geo = "nowhere!", items = { 1 } },
      })
      -- counted on the field's first leaf column
      assert.same({ ["user.name"] = 1, ["geo.lat"] = 1, ["items.sku"] = 1 }, info.invalid)
      local row = duckdb.query { "SELECT user IS NULL u, geo IS NULL g, items FROM read_parquet("
        .. duckdb.quote(path) .. ")" }[1][1]
      assert.is_true(row.u)
      assert.is_true(row.g)
    end)
  end)
end)
