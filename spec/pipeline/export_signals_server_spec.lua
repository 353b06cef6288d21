-- espipe export --checkpoint stopped by a real SIGINT/SIGTERM: the file in
-- progress is finished and recorded, no manifest, exit 130/143; a rerun of
-- the same command leaves every document on disk exactly once and no file in
-- progress.
local devserver = require "support.devserver"
local json = require "espipe.json"
local checkpoint = require "espipe.pipeline.checkpoint"
local S = require "pipeline.support"
local J = require "pipeline.jobs"
local SJ = require "pipeline.signal_jobs"

local N = 6000

describe("espipe export, signals #server", function()
  local env = devserver.env { nodes = 1 }
  setup(env.start) teardown(env.stop) before_each(env.fresh)

  setup(function()
    -- dynamic = false: a Parquet export infers its columns from the first documents
    for _, index in ipairs { "sig", "sigd" } do
      assert(env.client.indices:create { index = index, settings = { number_of_shards = 2 },
        mappings = index == "sigd" and { dynamic = false } or nil })
      local bi = env.client:bulk_indexer { index = index, batch_docs = 1000 }
      for i = 1, N do bi:index({ n = i, s = "row " .. i }, { id = "r" .. i }) end
      assert.equal(N, bi:close().ok)
    end
    assert(env.client:refresh { index = "sig,sigd" })
  end)

  local function no_file_in_progress(out)
    for _, name in ipairs(S.listdir(out)) do assert.is_nil(name:find("inprogress"), name) end
  end

  -- the _id of every row in out/'s part files, counted; fails on a duplicate
  local function ndjson_rows(out)
    local seen, rows = {}, 0
    for _, name in ipairs(S.listdir(out)) do
      if name:match("^part%-") then
        for line in S.read(out .. "/" .. name):gmatch("[^\n]+") do
          local n = json.decode(line).n
          assert.is_nil(seen[n], "row " .. tostring(n) .. " twice")
          seen[n], rows = true, rows + 1
        end
      end
    end
    return rows
  end

  local function parquet_rows(out)
    local duckdb = require "parquet.duckdb"
    local r = duckdb.query { "SELECT count(*)::VARCHAR AS n, count(DISTINCT _id)::VARCHAR AS d FROM read_parquet("
      .. duckdb.quote(out .. "/*.parquet") .. ")" }
    assert.equal(r[1][1].n, r[1][1].d)
    return tonumber(r[1][1].n)
  end

  for _, case in ipairs { { "TERM", 143, "ndjson", "sig" }, { "INT", 130, "ndjson", "sig" },
                          { "TERM", 143, "parquet", "sigd" } } do
    local sig, format, index = "SIG" .. case[1], case[3], case[4]
    local rows_on_disk = format == "parquet" and parquet_rows or ndjson_rows
    it("on " .. sig .. " finishes the " .. format .. " file in progress, checkpoints it, exits " .. case[2]
      .. "; the rerun leaves every document on disk exactly once" .. (format == "parquet" and " #duckdb" or ""),
      function()
      local out, ck = env.dir .. "/out", env.dir .. "/ck.json"
      local args = "export " .. index .. " --to " .. S.q(out) .. " --format " .. format .. " --checkpoint "
        .. S.q(ck) .. " --slices 2 --workers 1 --size 100 --file-bytes 20000 --json --url " .. env.server.url
      local rc, stdout, err = SJ.signalled(env.dir, args .. " --rate 3000", case[1], function()
        local st = checkpoint.load(ck)
        return st and #st.files >= 2
      end)
      assert.equal(case[2], rc, err)
      local summary = json.decode(stdout)
      assert.is_table(summary, stdout .. err)
      assert.equal(sig, summary.interrupted)
      assert.is_true(summary.rows < N, "the signal came too late to test anything")
      assert.matches("interrupted by " .. sig .. " after " .. summary.rows .. " documents; checkpoint saved to "
        .. ck .. " (rerun the same command to resume)", err, 1, true)
      no_file_in_progress(out)
      assert.is_nil(io.open(out .. "/manifest.json"))
      -- the file in progress was finished and is in the checkpoint: disk == checkpoint == summary
      local mid = checkpoint.load(ck)
      assert.is_nil(mid.done)
      assert.equal(summary.rows, mid.rows)
      assert.equal(summary.files, #mid.files)
      assert.equal(summary.rows, rows_on_disk(out))

      local code, stdout2, err2 = J.espipe(args)
      assert.equal(0, code, err2)
      assert.equal(N, json.decode(stdout2).rows)
      no_file_in_progress(out)
      assert.equal(N, rows_on_disk(out))
      assert.equal(N, json.decode(S.read(out .. "/manifest.json")).rows)
      assert.is_true(checkpoint.load(ck).done)
    end)
  end

  it("ends a long --rate wait on SIGINT and keeps the page it took", function()
    local pits = env.client:json_request { method = "GET", path = "/_espipe/stats" }.search.open_pits
    local out = env.dir .. "/out"
    -- 1000 documents at 10 a second: a 100 s wait after the first page
    local rc, stdout, err = SJ.signalled(env.dir, "export sig --to " .. S.q(out) .. " --workers 1 --size 1000 --rate 10 --json --url "
      .. env.server.url, "INT", function()
      return env.client:json_request { method = "GET", path = "/_espipe/stats" }.search.open_pits > pits
    end, 15)
    assert.equal(130, rc, err)
    local summary = json.decode(stdout)
    assert.equal(1000, summary.rows)
    assert.equal(1000, ndjson_rows(out))
    no_file_in_progress(out)
    assert.matches("there is no manifest.json; without --checkpoint a rerun needs --overwrite", err, 1, true)
  end)

  it("on SIGTERM finishes a single-file export: every row taken is in the file, none in progress", function()
    local file = env.dir .. "/all.ndjson"
    local rc, stdout, err = SJ.signalled(env.dir, "export sig --to " .. S.q(file) .. " --size 100 --rate 3000 --json --url "
      .. env.server.url, "TERM", function()
      local f = io.open(file .. ".inprogress", "rb")
      local size = f and f:seek("end") or 0
      if f then f:close() end
      return size > 20000
    end)
    assert.equal(143, rc, err)
    local summary = json.decode(stdout)
    assert.is_true(summary.rows < N)
    assert.matches("interrupted by SIGTERM after " .. summary.rows .. " documents; " .. file
      .. " holds them (a single file cannot be resumed)", err, 1, true)
    assert.is_nil(io.open(file .. ".inprogress"))
    local rows = 0
    for _ in S.read(file):gmatch("[^\n]+") do rows = rows + 1 end
    assert.equal(summary.rows, rows)
  end)
end)
