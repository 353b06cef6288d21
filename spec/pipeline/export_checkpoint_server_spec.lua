-- espipe export --checkpoint against the dev server: killed with -9 and
-- rerun, every document is on disk exactly once and no file is left in
-- progress; a non-empty directory is refused without a checkpoint
-- (--overwrite replaces it); an export of nothing fails unless allowed.
local devserver = require "support.devserver"
local json = require "espipe.json"
local checkpoint = require "espipe.pipeline.checkpoint"
local export = require "espipe.pipeline.export"
local S = require "pipeline.support"
local J = require "pipeline.jobs"

local N = 6000

describe("espipe export --checkpoint #server", function()
  local env = devserver.env { nodes = 1 }
  setup(env.start) teardown(env.stop) before_each(env.fresh)

  setup(function()
    assert(env.client.indices:create { index = "ck", settings = { number_of_shards = 2 } })
    local bi = env.client:bulk_indexer { index = "ck", batch_docs = 1000 }
    for i = 1, N do bi:index({ n = i, s = "row " .. i }, { id = "r" .. i }) end
    assert.equal(N, bi:close().ok)
    -- no mapped fields: a Parquet export infers its columns from the first documents
    assert(env.client.indices:create { index = "ckd", mappings = { dynamic = false } })
    bi = env.client:bulk_indexer { index = "ckd", batch_docs = 1000 }
    for i = 1, N do bi:index({ n = i, s = "row " .. i }, { id = "r" .. i }) end
    assert.equal(N, bi:close().ok)
    assert(env.client.indices:create { index = "none" })
    assert(env.client:refresh { index = "ck,ckd,none" })
  end)

  local function open_pits()
    return env.client:json_request { method = "GET", path = "/_espipe/stats" }.search.open_pits
  end

  -- n of every NDJSON row in out/, counted; fails on a duplicate
  local function rows_on_disk(out)
    local seen, rows = {}, 0
    for _, name in ipairs(S.listdir(out)) do
      assert.is_nil(name:find("inprogress"), name)
      if name:match("^part%-") then
        for line in S.read(out .. "/" .. name):gmatch("[^\n]+") do
          local n = json.decode(line).n
          assert.is_nil(seen[n], "row " .. tostring(n) .. " twice")
          seen[n] = true
          rows = rows + 1
        end
      end
    end
    return rows
  end

  -- every row of the Parquet files in out/, and how many distinct ids
  local function parquet_rows(out)
    local duckdb = require "parquet.duckdb"
    local r = duckdb.query { "SELECT count(*)::VARCHAR AS n, count(DISTINCT _id)::VARCHAR AS d FROM read_parquet("
      .. duckdb.quote(out .. "/*.parquet") .. ")" }
    for _, name in ipairs(S.listdir(out)) do assert.is_nil(name:find("inprogress"), name) end
    assert.equal(r[1][1].n, r[1][1].d)
    return tonumber(r[1][1].n)
  end

  -- Starts a checkpointed export and kills it with -9 once three files are
  -- recorded; returns the command and the checkpoint as it was left.
  local function killed_export(out, ck, format, index)
    local args = "export " .. (index or "ck") .. " --to " .. S.q(out) .. " --format " .. format
      .. " --checkpoint " .. S.q(ck)
      -- one process: its checkpoint is the one described here (--workers: export_workers_server_spec)
      .. " --slices 2 --workers 1 --size 100 --file-bytes 20000 --quiet --url " .. env.server.url
    local pid = J.spawn(args .. " --rate 3000", env.dir .. "/log")
    J.wait_for(function()
      local st = checkpoint.load(ck)
      return st and #st.files >= 3
    end, 60, "the checkpoint to list finished files")
    J.exec("kill -9 " .. pid)
    J.wait_for(function() return not J.alive(pid) end, 10, "the export to die")
    local mid = checkpoint.load(ck)
    assert.is_nil(mid.done)
    assert.is_string(mid.pit_id)
    return args, mid
  end

  for _, case in ipairs { { "ndjson", "ck" }, { "parquet", "ck" }, { "parquet", "ckd" } } do
    local format, index = case[1], case[2]
    local tag = format == "parquet" and " #duckdb" or ""
    it("resumes a " .. format .. " export of " .. index
      .. " after kill -9 with every document on disk exactly once" .. tag, function()
      local out, ck = env.dir .. "/out", env.dir .. "/ck.json"
      local pits = open_pits()
      local args, mid = killed_export(out, ck, format, index)
      assert.equal(pits + 1, open_pits()) -- the killed export's PIT, kept for the resume
      local code, stdout, err = J.espipe(args .. " --json")
      assert.equal(0, code, err)
      local summary = json.decode(stdout)
      assert.equal(N, summary.rows)
      assert.is_nil(summary.restarted)
      assert.equal(N, format == "parquet" and parquet_rows(out) or rows_on_disk(out))
      local m = json.decode(S.read(out .. "/manifest.json"))
      assert.equal(N, m.rows)
      for i, f in ipairs(m.files) do assert.equal(string.format("part-%05d.%s", i - 1, format), f.name) end
      -- the finished files of the first run were kept as they were
      for i, f in ipairs(mid.files) do assert.same(f, m.files[i]) end
      assert.is_true(checkpoint.load(ck).done)
      -- the resume used that PIT (no other was opened) and freed it
      assert.equal(pits, open_pits())
      if index == "ckd" then
        -- inferred columns: the resume wrote the columns the first run inferred
        assert.is_table(mid.parquet_columns)
        assert.same({ "_id", "n", "s" }, (function()
          local names = {}
          for i, c in ipairs(m.columns) do names[i] = c.name end
          return names
        end)())
      end
    end)
  end

  it("starts over, exactly, when the saved point in time is gone", function()
    local out, ck = env.dir .. "/out", env.dir .. "/ck.json"
    local args, mid = killed_export(out, ck, "ndjson")
    assert(env.client:json_request { method = "DELETE", path = "/_pit", body = json.encode { id = mid.pit_id },
      headers = { ["Content-Type"] = "application/json" } })
    local code, stdout, err = J.espipe(args .. " --json")
    assert.equal(0, code, err)
    local summary = json.decode(stdout)
    assert.is_true(summary.restarted)
    assert.equal(N, summary.rows)
    assert.equal(N, rows_on_disk(out))
  end)

  it("refuses a non-empty directory without a checkpoint; --overwrite replaces it", function()
    local out = env.dir .. "/out"
    local args = "export ck --to " .. S.q(out) .. " --file-bytes 50000 --quiet --url " .. env.server.url
    local code, _, err = J.espipe(args)
    assert.equal(0, code, err)
    code, _, err = J.espipe(args)
    assert.are_not.equal(0, code)
    assert.matches("the export directory " .. out .. " is not empty", err, 1, true)
    assert.matches("--overwrite", err, 1, true)
    assert.equal(N, rows_on_disk(out))
    code, _, err = J.espipe(args .. " --overwrite")
    assert.equal(0, code, err)
    assert.equal(N, rows_on_disk(out))
    S.write(out .. "/notes.txt", "mine")
    local m, rerr = export.run { client = env.client, index = "ck", to = out, overwrite = true }
    assert.is_nil(m)
    assert.matches("holds notes.txt that espipe did not write", tostring(rerr))
  end)

  it("exits non-zero for an export of nothing, unless --allow-empty", function()
    local code, _, err = J.espipe("export none --to " .. S.q(env.dir .. "/a") .. " --quiet --url " .. env.server.url)
    assert.equal(1, code)
    assert.matches("0 documents exported", err)
    code, _, err = J.espipe("export none --to " .. S.q(env.dir .. "/b") .. " --allow-empty --quiet --url " .. env.server.url)
    assert.equal(0, code, err)
  end)

  it("refuses a checkpoint for a single-file target", function()
    local m, err = export.run { client = env.client, index = "ck", to = env.dir .. "/one.ndjson", checkpoint = env.dir .. "/ck" }
    assert.is_nil(m)
    assert.matches("needs a directory target", tostring(err))
    assert.same({}, S.listdir(env.dir))
  end)

  it("rejects unknown options, naming the nearest valid one", function()
    assert.has_error(function() export.run { client = env.client, index = "ck", to = env.dir, fromat = "csv" } end,
      "espipe.export: unknown option 'fromat' (did you mean 'format'?)")
  end)
end)
