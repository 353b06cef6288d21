-- The bulk indexer against the dev server under chaos (espipe serve).
local json = require("espipe.json")

local fixtures = require("spec.client.support.fixtures")
local tmpname, read_lines = fixtures.tmpname, fixtures.read_lines


describe("bulk indexer against espipe serve #server", function()
  local server, c = require("spec.client.support.fixtures").chaos_server(), nil
  setup(function() c = server.start() end)
  teardown(server.stop)

  it("indexes 200k documents under chaos exactly once, and scans them back #slow", function()
    local dead = tmpname()
    local bi = c:bulk_indexer{ index = "chaos", batch_docs = 1000, concurrency = 4, retries = 12,
                               backoff = { base = 0.01, max = 0.5 }, dead_letter = dead }
    local N = 200000
    for i = 1, N do bi:index({ n = i, body = "document number " .. i }, { id = tostring(i) }) end
    local stats = bi:close()
    assert.are.equal(N, stats.added)
    assert.are.equal(N, stats.ok)
    assert.are.equal(0, stats.failed)
    assert.is_true(stats.retried > 0) -- chaos happened
    assert.are.equal(0, #read_lines(dead))
    os.remove(dead)
    assert(c:refresh{ index = "chaos" })
    assert.are.equal(N, assert(c:count{ index = "chaos" }).count)
    local seen, n = {}, 0
    for page in c:scan("chaos", nil, { slices = 4, size = 2000 }):pages() do
      for _, hit in ipairs(page.hits) do
        assert.is_nil(seen[hit._id])
        seen[hit._id] = true
        n = n + 1
      end
    end
    assert.are.equal(N, n)
    for i = 1, N, 997 do assert.is_true(seen[tostring(i)]) end
    assert(c.indices:delete{ index = "chaos" })
  end)

  it("dead-letters exactly the documents a strict mapping rejects", function()
    assert(c.indices:create{ index = "strict", mappings = { dynamic = "strict",
      properties = { n = { type = "long" }, s = { type = "keyword" } } } })
    local dead = tmpname()
    local reported = 0
    local bi = c:bulk_indexer{ index = "strict", batch_docs = 100, retries = 12,
      backoff = { base = 0.01, max = 0.5 }, dead_letter = dead,
      on_error = function() reported = reported + 1 end }
    local bad = {}
    for i = 1, 3000 do
      if i % 97 == 0 then
        bi:index({ n = i, extra = "not in the mapping" }, { id = tostring(i) }); bad[tostring(i)] = "strict_dynamic_mapping_exception"
      elseif i % 101 == 0 then
        bi:index({ n = "abc" .. i }, { id = tostring(i) }); bad[tostring(i)] = true
      else
        bi:index({ n = i, s = "ok" }, { id = tostring(i) })
      end
    end
    local stats = bi:close()
    local nbad = 0
    for _ in pairs(bad) do nbad = nbad + 1 end
    assert.are.equal(nbad, stats.failed)
    assert.are.equal(3000 - nbad, stats.ok)
    assert.are.equal(nbad, reported)
    local got = {}
    for _, line in ipairs(read_lines(dead)) do
      local rec = assert(json.decode(line))
      local id = rec.action.index._id
      assert.is_nil(got[id])
      got[id] = true
      assert.are.equal(400, rec.status)
      -- a chaos 429 may come first: then it is rejected on a later attempt
      assert.is_true(rec.attempts >= 1 and rec.attempts <= 13)
      assert.are.equal("strict", rec.action.index._index)
      if bad[id] == "strict_dynamic_mapping_exception" then
        assert.are.equal("strict_dynamic_mapping_exception", rec.error.type)
      else
        assert.truthy(rec.error.type:find("parsing_exception", 1, true))
      end
      assert.are.equal(tonumber(id), tonumber(tostring(rec.source.n):match("%d+")))
    end
    for id in pairs(bad) do assert.is_true(got[id], "missing from the dead letter: " .. id) end
    os.remove(dead)
    assert(c:refresh{ index = "strict" })
    assert.are.equal(3000 - nbad, assert(c:count{ index = "strict" }).count)
    assert(c.indices:delete{ index = "strict" })
  end)
end)

describe("bulk indexer and mapping types #server", function()
  local devserver = require("spec.support.devserver")
  local version = require("espipe.client.version")
  local client_mod = require("espipe.client")
  local six, eight
  setup(function()
    six = devserver.start { args = { "--flavor", "es-6.8" } }
    eight = devserver.start { args = { "--flavor", "es-8.15" } }
  end)
  teardown(function()
    six.stop()
    eight.stop()
  end)

  local function index_all(client, opts, n)
    local dead = tmpname()
    opts.dead_letter = dead
    local bi = assert(client:bulk_indexer(opts))
    for i = 1, n do assert(bi:index({ n = i }, { id = tostring(i) })) end
    local stats = bi:close()
    local dl = read_lines(dead)
    os.remove(dead)
    return stats, dl
  end

  it("names _doc on 6.8 once the client has read the version", function()
    local c = client_mod.new { hosts = { six.url } }
    assert.equal(6, assert(version.of(c)).major)
    local stats = index_all(c, { index = "t6" }, 50)
    assert.equal(50, stats.ok)
    -- whole answers, whose items name the type, read as well as filtered ones
    stats = index_all(c, { index = "t6", filter_path = false }, 50)
    assert.equal(50, stats.ok)
    assert.equal(50, stats.updated)
    local r = assert(c:json_request { method = "GET", path = "/t6/_mapping" })
    assert.is_table(r.t6.mappings._doc)
    c:close()
  end)

  it("names the type it is given, which a 6.x index holds one of", function()
    local c = client_mod.new { hosts = { six.url } }
    assert(version.of(c))
    assert.equal(10, index_all(c, { index = "t6b", doc_type = "doc" }, 10).ok)
    local stats, dl = index_all(c, { index = "t6b" }, 3) -- _doc now: a second type
    assert.equal(3, stats.failed)
    assert.matches("more than 1 type", json.encode(json.decode(dl[1]).error))
    c:close()
  end)

  it("sends no _type where the cluster has none, and a 6.8 cluster refuses that loudly", function()
    local c8 = client_mod.new { hosts = { eight.url } }
    assert(version.of(c8))
    assert.equal(20, index_all(c8, { index = "t8" }, 20).ok)
    c8:close()
    local unread = client_mod.new { hosts = { six.url } } -- (its version never read)
    local stats = index_all(unread, { index = "t6c" }, 5)
    assert.equal(5, stats.failed)
    unread:close()
  end)

  it("refuses a doc_type that is not a name", function()
    local c = client_mod.new { hosts = { eight.url } }
    assert.error_matches(function() c:bulk_indexer { doc_type = "" } end, "doc_type must be a non%-empty string")
    c:close()
  end)
end)

describe("bulk indexer with auto batches against a server's http.max_content_length #server", function()
  local devserver = require("spec.support.devserver")
  local server, c
  setup(function()
    server = devserver.start { args = { "--max-content-length", "256kb" } }
    c = require("espipe.client").new { hosts = { server.url } }
  end)
  teardown(function()
    if c then c:close() end
    if server then server.stop() end
  end)

  it("lowers its cap on the server's 413s and still indexes every document", function()
    -- (the cap is learned from 413s, 3/4 of the smallest refused body; the
    -- server's http.max_content_length is not read beforehand)
    local bi = c:bulk_indexer { index = "limited", concurrency = 2, batch_bytes = "auto" }
    local sizes, refused = {}, math.huge
    local submit = c._submit
    c._submit = function(self, owner, req)
      if tostring(req.path):find("_bulk", 1, true) then sizes[#sizes + 1] = #req.body:body() end
      return submit(self, owner, req)
    end
    for i = 1, 6000 do assert(bi:index({ n = i, text = string.rep("x", 200) })) end
    local st = bi:close()
    c._submit = submit
    assert.are.equal(6000, st.ok)
    assert.are.equal(0, st.failed)
    for _, n in ipairs(sizes) do if n > 256 * 1024 then refused = math.min(refused, n) end end
    assert.is_true(sizes[1] > 256 * 1024 and refused < math.huge)
    assert.are.equal(math.floor(refused * 0.75), st.adaptive.max_batch_bytes)
    assert.are.equal("413: body too large", st.adaptive.batch_reason)
  end)
end)
