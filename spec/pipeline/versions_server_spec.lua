-- espipe.pipeline.versions: the jobs read each cluster's release up front,
-- so their first data request is the one that release takes: a load into
-- Elasticsearch 6.8 names the type its index wants, an export of a 6.8
-- index reads its typed mapping.
local devserver = require "spec.support.devserver"
local http = require "spec.support.http"
local client_mod = require "espipe.client"
local versions = require "espipe.pipeline.versions"
local setup_mod = require "espipe.pipeline.setup"
local retry = require "espipe.client.retry"
local duckdb = require "parquet.duckdb"
local J = require "pipeline.jobs"
local S = require "pipeline.support"

describe("jobs read the version first #server", function()
  local six, eight, dir
  setup(function()
    six = devserver.start { args = { "--flavor", "es-6.8" } }
    eight = devserver.start { args = { "--flavor", "es-8.15" } }
    dir = S.tmpdir()
    J.write_docs(dir .. "/in.ndjson", 200)
  end)
  teardown(function()
    six.stop()
    eight.stop()
    S.cleanup()
  end)

  it("knows the type a 6.x index wants: its mapping's, else _doc; none on 8.x", function()
    -- label: mapped, in no document (only the mapping says it is a column)
    assert.equal(200, (http.json("PUT", six.url .. "/typed",
      { mappings = { doc = { properties = { label = { type = "keyword" } } } } })))
    local policy = retry.new({ retry_for = 5 }, 2)
    local c6, c8 = client_mod.new { hosts = { six.url } }, client_mod.new { hosts = { eight.url } }
    assert(versions.read(policy, c6, c8))
    local s6 = setup_mod.new(c6, policy)
    assert.equal("doc", versions.doc_type(s6, "typed"))
    assert.equal("_doc", versions.doc_type(s6, "missing"))
    assert.equal("_doc", versions.doc_type(s6, nil))
    assert.is_nil(versions.doc_type(setup_mod.new(c8, policy), "typed"))
    c6:close()
    c8:close()
  end)

  it("espipe load into 6.8 writes every line, under the index's own type", function()
    local code, out, err = J.espipe("load " .. S.q(dir .. "/in.ndjson") .. " --index typed --id-field id --url "
      .. S.q(six.url) .. " --quiet")
    assert.equal(0, code, out .. err)
    local _, n = http.json("GET", six.url .. "/typed/_count")
    assert.equal(200, n.count)
    local _, m = http.json("GET", six.url .. "/typed/_mapping")
    assert.is_table(m.typed.mappings.doc.properties.n)
  end)

  it("espipe export of a 6.8 index takes its columns from the typed mapping", function()
    local out = dir .. "/six.parquet"
    local code, o, e = J.espipe("export " .. S.q(six.url .. "/typed") .. " --format parquet --to " .. S.q(out)
      .. " --quiet")
    assert.equal(0, code, o .. e)
    local names = {}
    for _, row in ipairs(duckdb.query { "DESCRIBE SELECT * FROM read_parquet(" .. duckdb.quote(out) .. ")" }[1]) do
      names[row.column_name] = true
    end
    assert.truthy(names.label, "no column for the mapped field label")
    assert.truthy(names.n)
  end)
end)
