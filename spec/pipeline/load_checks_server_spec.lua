-- espipe load never succeeds silently while doing nothing: it refreshes
-- what it wrote, rejects an index pattern that cannot work before the first
-- request, and fails a load that indexed nothing unless --allow-empty.
-- A search right after the load: client:count with no refresh of our own,
-- on indices whose refresh_interval (60s) would hide the documents.
local S = require "pipeline.support"
local J = require "pipeline.jobs"

describe("espipe load checks #server", function()
  local env = require("pipeline.load_env").new()
  setup(env.start) teardown(env.stop) before_each(env.fresh)
  local server, client, dir
  before_each(function() server, client, dir = env.server, env.client, env.dir end)

  local function visible(index)
    return client:count { index = index }.count
  end

  local function slow_refreshing(index)
    assert(client.indices:create { index = index, settings = { refresh_interval = "60s" } })
  end

  it("refreshes the destination at the end, so a search right after the load sees every document", function()
    slow_refreshing("fresh")
    J.write_docs(dir .. "/d.ndjson", 700)
    local code, _, err = J.espipe("load " .. S.q(dir .. "/d.ndjson") .. " --index fresh --id-field id --quiet --url " .. server.url)
    assert.equal(0, code, err)
    assert.equal(700, visible("fresh"))
  end)

  it("refreshes every month index an index pattern wrote to", function()
    for _, m in ipairs { "01", "02" } do slow_refreshing("fm-2024." .. m) end
    S.write(dir .. "/m.ndjson", '{"t":"2024-01-05"}\n{"t":"2024-02-05"}\n{"t":"2024-02-06"}\n')
    local code, _, err = J.espipe("load " .. S.q(dir .. "/m.ndjson") .. " --index-pattern 'fm-{t:%Y.%m}' --quiet --url " .. server.url)
    assert.equal(0, code, err)
    assert.equal(1, visible("fm-2024.01"))
    assert.equal(2, visible("fm-2024.02"))
  end)

  it("leaves the refresh to the cluster with --no-refresh", function()
    slow_refreshing("lazy")
    J.write_docs(dir .. "/d.ndjson", 50)
    local code, _, err = J.espipe("load " .. S.q(dir .. "/d.ndjson") .. " --index lazy --no-refresh --quiet --url " .. server.url)
    assert.equal(0, code, err)
    assert.equal(0, visible("lazy"))
  end)

  it("rejects an unknown % directive before any request (nothing listens on the URL)", function()
    J.write_docs(dir .. "/d.ndjson", 3)
    local code, _, err = J.espipe("load " .. S.q(dir .. "/d.ndjson") .. " --index-pattern 'logs-{t:%Y.%q}' --url http://127.0.0.1:1")
    assert.equal(2, code, err)
    assert.matches("espipe load: index_pattern: unknown directive '%q'", err, 1, true)
    assert.is_nil(err:find("connect", 1, true))
  end)

  it("rejects a pattern field a CSV header lacks before any request", function()
    S.write(dir .. "/in.csv", "id,when\n1,2024-01-01\n")
    local code, _, err = J.espipe("load " .. S.q(dir .. "/in.csv") .. " --format csv --index-pattern 'csv-{ts:%Y}' --url http://127.0.0.1:1")
    assert.equal(1, code, err)
    assert.matches("the CSV header has no column 'ts' (columns: id, when)", err, 1, true)
    assert.is_nil(err:find("connect", 1, true))
  end)

  it("fails a load that indexed nothing, unless --allow-empty", function()
    S.write(dir .. "/empty.ndjson", "\n\n")
    local code, _, err = J.espipe("load " .. S.q(dir .. "/empty.ndjson") .. " --index nothing --quiet --url " .. server.url)
    assert.equal(1, code, err)
    assert.matches("indexed 0 documents", err, 1, true)
    code, _, err = J.espipe("load " .. S.q(dir .. "/empty.ndjson") .. " --index nothing --allow-empty --quiet --url " .. server.url)
    assert.equal(0, code, err)
  end)
end)
