-- The scan through the fault proxy (spec/support/fault_proxy.lua): responses
-- lost after the server acted on the request. A lost scroll continuation
-- fails the scan naming the page (the server advanced the scroll: asking
-- again would skip a page silently); lost or cut PIT pages are asked for
-- again from the last sort values, every hit once. Setup requests of a job
-- go through the same retry policy and fail the job when they fail for good.
local devserver = require "support.devserver"
local fault_proxy = require "support.fault_proxy"
local client_mod = require "espipe.client"
local json = require "espipe.json"
local S = require "pipeline.support"
local J = require "pipeline.jobs"

local N = 20000

describe("scan through the fault proxy #server", function()
  local server, client, proxy

  setup(function()
    server = devserver.start { nodes = 1 }
    client = client_mod.new { hosts = { server.url } }
    assert(client.indices:create { index = "docs", settings = { number_of_shards = 2 } })
    local bi = client:bulk_indexer { index = "docs", batch_docs = 2000 }
    for i = 1, N do bi:index({ n = i }, { id = "d" .. i }) end
    assert.equal(N, bi:close().ok)
    assert(client:refresh { index = "docs" })
  end)
  teardown(function()
    if proxy then proxy:stop() end
    if client then client:close() end
    if server then server.stop() end
    S.cleanup()
  end)
  after_each(function()
    if proxy then proxy:stop() end
    proxy = nil
  end)

  local function through(rules)
    proxy = fault_proxy.start { upstream = server.url, seed = 1, rules = rules }
    return client_mod.new { hosts = { proxy.url } }
  end

  it("fails a scroll whose continuation response was lost, naming the page", function()
    local c = through { { match = "POST /_search/scroll", action = "reset_response", nth = 3 } }
    local s = c:scan("docs", nil, { method = "scroll", size = 1000, retry_for = 5 })
    local seen, n = {}, 0
    local page, err
    repeat
      page, err = s:next_page()
      for _, hit in ipairs(page and page.hits or {}) do
        assert.is_nil(seen[hit._id])
        seen[hit._id], n = true, n + 1
      end
    until not page
    assert.equal(1, proxy:stats().reset_responses)
    -- pages 1 (the search) and 2, 3 (continuations 1, 2) arrived; continuation 3 was lost
    assert.equal(3000, n)
    assert.is_not_nil(err, "the scan ended as if complete with " .. n .. " of " .. N .. " hits")
    assert.equal(4, err.page)
    assert.matches("scroll page 4 lost", tostring(err))
    c:close()
  end)

  it("asks lost and truncated PIT pages again: every hit exactly once", function()
    local c = through {
      { match = "POST /_search", action = "reset_response", p = 0.15 },
      { match = "POST /_search", action = "truncate", p = 0.1 },
    }
    local seen, n = {}, 0
    for hit in c:scan("docs", nil, { size = 500, slices = 2, retry_for = 30 }) do
      assert.is_nil(seen[hit._id], hit._id .. " twice")
      seen[hit._id], n = true, n + 1
    end
    local st = proxy:stats()
    assert.is_true(st.reset_responses + st.truncations >= 3, "faults: " .. json.encode(st))
    assert.equal(N, n)
    c:close()
  end)

  it("retries a job's setup requests, and fails the job when they fail for good", function()
    through { { match = "_refresh", action = "status", status = 503, times = 2 } }
    local code, out, err = J.espipe("reindex docs copy --json --quiet --source-url " .. proxy.url
      .. " --dest-url " .. server.url)
    assert.equal(0, code, err)
    assert.equal(N, json.decode(out).ok)
    assert.equal(2, proxy:stats().statuses)
    local _
    proxy:set_rules { { match = "POST /docs/_refresh", action = "status", status = 403 } }
    code, _, err = J.espipe("reindex docs copy2 --json --quiet --source-url " .. proxy.url
      .. " --dest-url " .. server.url)
    assert.are_not.equal(0, code)
    assert.matches("403", err)
    assert.matches("_refresh", err)
    -- an export's count likewise: no "0 documents", no exit 0
    proxy:set_rules { { match = "/_count", action = "status", status = 403 } }
    code, _, err = J.espipe("export docs --to " .. S.q(S.tmpdir() .. "/out") .. " --quiet --url " .. proxy.url)
    assert.are_not.equal(0, code)
    assert.matches("403", err)
    assert.matches("_count", err)
  end)
end)
