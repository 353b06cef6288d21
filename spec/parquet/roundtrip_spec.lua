-- Files written with every codec, read back by DuckDB: aggregates, null
-- counts, distinct counts and rows value by value against the Lua data.
local json = require "espipe.json"
local duckdb = require "parquet.duckdb"
local support = require "parquet.support"

local COLUMNS = {
  { name = "id", type = "int64" },
  { name = "user", type = "string" },
  { name = "msg", type = "string" },
  { name = "ok", type = "boolean" },
  { name = "score", type = "double" },
  { name = "ts", type = "timestamp" },
  { name = "meta", type = "json" },
  { name = "host_name", type = "string", path = { "host", "name" } },
}

local N = 5000

local function make_docs()
  local docs = {}
  for i = 1, N do
    docs[i] = {
      id = i * 7919 - 10000000,
      user = "user-" .. (i % 97),
      msg = "message " .. i .. " caf\195\169 \240\159\152\128",
      ok = (i % 10 ~= 0) and (i % 3 == 0) or nil,
      score = (i % 7 ~= 0) and (i * 0.25 - 100) or nil,
      ts = 1700000000000 + i * 1000,
      meta = { n = i, tags = { "a", "b" .. i } },
      host = { name = "host-" .. (i % 5) },
    }
  end
  return docs
end

local function expected(docs)
  local e = { sum_id = 0, min_id = math.huge, max_id = -math.huge, score_nulls = 0,
              ok_nulls = 0, sum_score = 0, users = {}, n_users = 0 }
  for _, d in ipairs(docs) do
    e.sum_id = e.sum_id + d.id
    e.min_id = math.min(e.min_id, d.id)
    e.max_id = math.max(e.max_id, d.id)
    if d.score == nil then e.score_nulls = e.score_nulls + 1 else e.sum_score = e.sum_score + d.score end
    if d.ok == nil then e.ok_nulls = e.ok_nulls + 1 end
    if not e.users[d.user] then e.users[d.user] = true; e.n_users = e.n_users + 1 end
  end
  return e
end

local function unnull(v)
  if v == json.null then return nil end
  return v
end

local function ms_to_utc_text(ms)
  -- independent of the writer: os.date on the seconds, then the milliseconds
  local s = os.date("!%Y-%m-%d %H:%M:%S", math.floor(ms / 1000))
  local frac = ms % 1000
  return frac == 0 and s or string.format("%s.%03d", s, frac)
end

describe("Parquet files read back by DuckDB #duckdb", function()
  local docs = make_docs()
  local e = expected(docs)

  for _, codec in ipairs(support.codecs) do
    it("round-trips " .. N .. " documents with codec " .. codec, function()
      support.with_file(function(path)
        local r = support.write(path, COLUMNS, docs,
          { codec = codec, row_group_bytes = 128 * 1024, page_bytes = 8 * 1024 }, 700)
        assert.are.equal(N, r.rows)
        assert.is_true(r.row_groups > 1, "expected several row groups, got " .. r.row_groups)
        assert.are.same({}, r.invalid)
        local f = "read_parquet(" .. duckdb.quote(path) .. ", file_row_number = true)"
        local res = duckdb.query({
          "SELECT count(*) AS n, sum(id)::VARCHAR AS sum_id, min(id)::VARCHAR AS min_id, max(id)::VARCHAR AS max_id,"
            .. " count(*) - count(score) AS score_nulls, count(*) - count(ok) AS ok_nulls,"
            .. " sum(score) AS sum_score, count(DISTINCT \"user\") AS users,"
            .. " count(DISTINCT msg) AS msgs FROM " .. f,
          "SELECT file_row_number, id::VARCHAR AS id, \"user\", msg, ok, score,"
            .. " strftime(ts AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S') AS ts_text, epoch_ms(ts)::VARCHAR AS ts_ms,"
            .. " meta, host_name FROM " .. f .. " WHERE file_row_number % 97 = 3 ORDER BY file_row_number",
          "SELECT DISTINCT compression FROM parquet_metadata(" .. duckdb.quote(path) .. ")",
          "SELECT count(DISTINCT row_group_id) AS rgs FROM parquet_metadata(" .. duckdb.quote(path) .. ")",
        })
        local agg = res[1][1]
        assert.are.equal(N, tonumber(agg.n))
        assert.are.equal(tostring(e.sum_id), agg.sum_id)
        assert.are.equal(tostring(e.min_id), agg.min_id)
        assert.are.equal(tostring(e.max_id), agg.max_id)
        assert.are.equal(e.score_nulls, tonumber(agg.score_nulls))
        assert.are.equal(e.ok_nulls, tonumber(agg.ok_nulls))
        assert.are.equal(e.sum_score, agg.sum_score)
        assert.are.equal(e.n_users, tonumber(agg.users))
        assert.are.equal(N, tonumber(agg.msgs))

        assert.is_true(#res[2] > 40)
        for _, row in ipairs(res[2]) do
          local d = docs[tonumber(row.file_row_number) + 1]
          assert.are.equal(tostring(d.id), row.id)
          assert.are.equal(d.user, row.user)
          assert.are.equal(d.msg, row.msg)
          assert.are.equal(d.ok, unnull(row.ok))
          assert.are.equal(d.score, unnull(row.score))
          assert.are.equal(tostring(d.ts), row.ts_ms)
          assert.are.equal(ms_to_utc_text(d.ts), row.ts_text)
          assert.are.same(d.meta, json.decode(row.meta))
          assert.are.equal(d.host.name, row.host_name)
        end
        local want = codec == "none" and "UNCOMPRESSED" or codec:upper()
        assert.are.same({ { compression = want } }, res[3])
        assert.are.equal(r.row_groups, tonumber(res[4][1].rgs))
      end)
    end)
  end
end)

describe("codec levels #duckdb", function()
  for _, case in ipairs({ { "gzip", 1 }, { "gzip", 9 }, { "zstd", 1 }, { "zstd", 19 } }) do
    it("writes readable files with " .. case[1] .. " level " .. case[2], function()
      support.with_file(function(path)
        local docs = {}
        for i = 1, 2000 do docs[i] = { id = i, user = "user-" .. (i % 7), msg = string.rep("x", i % 50) } end
        support.write(path, COLUMNS, docs, { codec = case[1], level = case[2] })
        local got = duckdb.query({ "SELECT count(*) AS n, sum(id)::VARCHAR AS s, sum(length(msg)) AS l FROM read_parquet("
          .. duckdb.quote(path) .. ")" })[1][1]
        local l = 0
        for i = 1, 2000 do l = l + i % 50 end
        assert.are.same({ n = "2000", s = "2001000", l = tostring(l) }, got)
      end)
    end)
  end
end)
