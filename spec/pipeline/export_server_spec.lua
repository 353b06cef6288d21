-- espipe export against the dev server: rotation, atomic names, manifest,
-- CSV flattening, compression, queries, Parquet when built; and the demo.
local devserver = require "support.devserver"
local json = require "espipe.json"
local S = require "pipeline.support"
local J = require "pipeline.jobs"

describe("espipe export #server", function()
  local env = devserver.env { nodes = 1 }
  setup(env.start) teardown(env.stop) before_each(env.fresh)

  setup(function()
    local d = env.tmpdir()
    J.write_docs(d .. "/docs.ndjson", 2500)
    local code, _, err = J.espipe("load " .. S.q(d .. "/docs.ndjson") .. " --index ex --id-field id --quiet --url " .. env.server.url)
    assert(code == 0, err)
    env.client:refresh { index = "ex" }
  end)

  it("rotates NDJSON files by size, lists them in manifest.json, leaves no temp names", function()
    local code, _, err = J.espipe("export " .. env.server.url .. "/ex --to " .. S.q(env.dir .. "/out") .. " --file-bytes 50000 --slices 2 --quiet")
    assert.equal(0, code, err)
    local m = json.decode(S.read(env.dir .. "/out/manifest.json"))
    assert.equal(2500, m.rows)
    assert.equal("ndjson", m.format)
    assert.equal(env.server.url .. "/ex", m.source)
    assert.is_true(#m.files >= 3)
    local names = S.listdir(env.dir .. "/out")
    assert.equal(#m.files + 1, #names) -- nothing but the parts and the manifest
    local seen, rows = {}, 0
    for i, f in ipairs(m.files) do
      assert.equal(string.format("part-%05d.ndjson", i - 1), f.name)
      local body = S.read(env.dir .. "/out/" .. f.name)
      assert.equal(#body, f.bytes)
      for line in body:gmatch("[^\n]+") do
        local doc = json.decode(line)
        assert.is_nil(seen[doc.id])
        seen[doc.id] = true
        rows = rows + 1
      end
    end
    assert.equal(2500, rows)
  end)

  it("exports the hits of a query as gzip CSV with flattened columns", function()
    assert(env.client:index { index = "nested", id = "1", body = { a = { b = 1, c = { d = "x,y" } }, list = { 1, 2 } }, refresh = "true" })
    local code, _, err = J.espipe("export " .. env.server.url .. "/nested --to " .. S.q(env.dir .. "/csv") .. " --format csv --compress gzip --quiet")
    assert.equal(0, code, err)
    local m = json.decode(S.read(env.dir .. "/csv/manifest.json"))
    assert.equal("part-00000.csv.gz", m.files[1].name)
    local text = S.sh("gzip -dc " .. S.q(env.dir .. "/csv/part-00000.csv.gz"))
    assert.equal('_id,a.b,a.c.d,list\n1,1,"x,y","[1,2]"\n', text)
    code, _, err = J.espipe("export " .. env.server.url .. "/ex --to " .. S.q(env.dir .. "/q.ndjson")
      .. [[ --query '{"range":{"n":{"lte":10}}}' --fields id,n --quiet]])
    assert.equal(0, code, err)
    local n = 0
    for line in S.read(env.dir .. "/q.ndjson"):gmatch("[^\n]+") do
      local doc = json.decode(line)
      assert.is_true(doc.n <= 10)
      assert.is_nil(doc.text)
      n = n + 1
    end
    assert.equal(10, n)
  end)

  it("writes Parquet files DuckDB can count, when espipe.parquet is built", function()
    if not pcall(require, "espipe.parquet") then
      pending("espipe.parquet is not built")
      return
    end
    local code, _, err = J.espipe("export " .. env.server.url .. "/ex --to " .. S.q(env.dir .. "/pq") .. " --format parquet --quiet")
    assert.equal(0, code, err)
    local m = json.decode(S.read(env.dir .. "/pq/manifest.json"))
    assert.equal(2500, m.rows)
    local magic = S.read(env.dir .. "/pq/" .. m.files[1].name)
    assert.equal("PAR1", magic:sub(1, 4))
    assert.equal("PAR1", magic:sub(-4))
  end)

  it("the demo runs the examples end to end on its own server and cleans up", function()
    local code, out, err = J.espipe("demo --count 400")
    assert.equal(0, code, err .. out)
    assert.matches("logs%-enriched%s+%d+ docs", out)
    local enriched = tonumber(out:match("logs%-enriched%s+(%d+) docs"))
    assert.is_true(enriched > 0 and enriched < 400)
    assert.matches("part%-00000%.csv%.gz", out)
  end)
end)
