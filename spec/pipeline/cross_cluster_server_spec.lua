-- Reindex from one cluster to another: two dev servers, the command with
-- SRC and DEST as URLs, and the library with two clients.
local devserver = require "support.devserver"
local espipe = require "espipe"
local S = require "pipeline.support"

local function ids_and_sources(client, index)
  assert(client:refresh{ index = index })
  local out, n = {}, 0
  for hit in client:scan(index, nil, { raw_source = true }) do
    out[hit._id] = hit._source
    n = n + 1
  end
  return out, n
end

describe("reindex across clusters #server", function()
  local one, two = devserver.env {}, devserver.env {}
  setup(one.start) teardown(one.stop) before_each(one.fresh)
  setup(two.start) teardown(two.stop)

  setup(function()
    local bi = one.client:bulk_indexer{ index = "people", batch_docs = 300 }
    for i = 1, 2000 do
      bi:index('{"n":' .. i .. ',"name":"p' .. i .. '","big":' .. (9007199254740993 + i) .. '}', { _id = "p" .. i })
    end
    local st = bi:close()
    assert.same({ 2000, 0 }, { st.ok, st.failed })
  end)

  -- no refresh after loading: reindex refreshes the source itself, so the
  -- documents acknowledged a moment ago are copied too
  it("copies every document from one cluster to the other with the command", function()
    local cmd = "bin/espipe reindex " .. one.server.url .. "/people " .. two.server.url .. "/people-copy --slices 2 --quiet"
      .. " --dead-letter " .. S.q(one.dir .. "/dl.ndjson") .. " 2>&1; echo rc=$?"
    local p = assert(io.popen(cmd))
    local out = p:read("*a")
    p:close()
    assert.matches("rc=0", out, 1, true)
    local src, n = ids_and_sources(one.client, "people")
    local dst, m = ids_and_sources(two.client, "people-copy")
    assert.equal(2000, n)
    assert.equal(n, m)
    assert.same(src, dst)
    assert.is_false(one.client.indices:exists{ index = "people-copy" })
  end)

  it("copies with a transform through two clients", function()
    local summary = assert(espipe.reindex{
      source = { client = one.client, index = "people", slices = 3 },
      dest = { client = two.client, index = "people-odd" },
      transform = function(doc) if doc.n % 2 == 1 then doc.odd = true return doc end return nil end,
      dead_letter = one.dir .. "/dl.ndjson",
    })
    assert.same({ 2000, 1000, 1000, 0 }, { summary.scanned, summary.dropped, summary.ok, summary.failed })
    local dst, m = ids_and_sources(two.client, "people-odd")
    assert.equal(1000, m)
    assert.matches('"odd":true', dst.p1, 1, true)
    assert.is_nil(dst.p2)
  end)
end)
