-- espipe indices and espipe count against the dev server.
local devserver = require "support.devserver"
local http = require "support.http"
local json = require "espipe.json"
local J = require "pipeline.jobs"
local S = require "pipeline.support"

describe("espipe indices and count #server", function()
  local server
  setup(function()
    server = devserver.start {}
    assert.equal(200, (http.json("PUT", server.url .. "/logs-a", { settings = { number_of_shards = 2,
      number_of_replicas = 0, refresh_interval = "30s" } })))
    assert.equal(200, (http.json("PUT", server.url .. "/logs-b", {})))
    local lines = {}
    for i = 1, 30 do
      lines[#lines + 1] = { index = { _index = i <= 10 and "logs-a" or "logs-b" } }
      lines[#lines + 1] = { status = i % 3 == 0 and 404 or 200 }
    end
    assert.equal(200, (http.bulk(server.url, lines, "?refresh=true")))
  end)
  teardown(function()
    if server then server.stop() end
    S.cleanup()
  end)

  it("lists the indices with docs, shards, replicas and refresh interval, aligned", function()
    local code, out, err = J.espipe("indices 'logs-*' --url " .. server.url)
    assert.equal(0, code, err)
    local lines = {}
    for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.equal(3, #lines, out)
    assert.matches("^index +health +docs +size +shards +replicas +refresh$", lines[1])
    assert.matches("^logs%-a +%a+ +10 +%S+ +2 +0 +30s$", lines[2])
    assert.matches("^logs%-b +%a+ +20 +%S+ +1 +1 +1s$", lines[3])
    assert.equal(#lines[1], #lines[2]) -- the columns line up
    local _, jout = J.espipe("indices logs-a --json --url " .. server.url)
    local rows = json.decode(jout)
    assert.equal("10", rows[1]["docs.count"])
    assert.equal("30s", rows[1].refresh)
  end)

  it("counts all documents, a query DSL object or query_string text", function()
    local function count(args)
      local code, out, err = J.espipe("count " .. args .. " --url " .. server.url)
      assert.equal(0, code, err)
      return tonumber(out)
    end
    assert.equal(30, count("'logs-*'"))
    assert.equal(10, count("logs-a"))
    assert.equal(10, count("'logs-*' --query '{\"term\":{\"status\":404}}'"))
    assert.equal(3, count("logs-a --query 'status:404'"))
  end)

  it("an index that is not there: one line, exit 2", function()
    local code, out, err = J.espipe("count nope --url " .. server.url)
    assert.equal(2, code)
    assert.equal("", out)
    assert.matches("^espipe count: 404 index_not_found_exception: no such index %[nope%]", err)
    assert.is_nil(err:find("usage:", 1, true))
  end)
end)
