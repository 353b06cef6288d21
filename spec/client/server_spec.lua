-- The client, bulk indexer and scan against the dev server (espipe serve).
local devserver = require("support.devserver")
local client_mod = require("espipe.client")
local json = require("espipe.json")

local function tmpname()
  local p = os.tmpname()
  os.remove(p)
  return p
end

local function read_lines(path)
  local out = {}
  local f = io.open(path)
  if not f then return out end
  for line in f:lines() do out[#out + 1] = line end
  f:close()
  return out
end

-- A context that was released answers 404 when used again.
local function pit_is_gone(c, pit_id)
  local res = assert(c:perform{ method = "POST", path = "/_search",
    headers = { ["Content-Type"] = "application/json" },
    body = json.encode{ pit = { id = pit_id, keep_alive = "1m" }, size = 1 } })
  return res.status == 404
end

local function scroll_is_gone(c, scroll_id)
  local res = assert(c:perform{ method = "POST", path = "/_search/scroll",
    headers = { ["Content-Type"] = "application/json" },
    body = json.encode{ scroll = "1m", scroll_id = scroll_id } })
  return res.status == 404
end

describe("client against espipe serve #server", function()
  local srv, c
  setup(function()
    srv = devserver.start{ chaos = "item_429=0.2,503=0.05,reset=0.02", seed = 42 }
    c = client_mod.new{ hosts = { srv.url } }
  end)
  teardown(function() if srv then srv.stop() end end)

  it("document APIs round-trip and report errors in one line", function()
    assert(c.indices:create{ index = "docs", settings = { number_of_shards = 2 } })
    assert.are.equal(true, c.indices:exists{ index = "docs" })
    local r = assert(c:index{ index = "docs", id = "a/1", body = { n = 1, big = 9007199254740993, tags = json.array() }, refresh = true })
    assert.are.equal("created", r.result)
    local g = assert(c:get{ index = "docs", id = "a/1" })
    assert.are.equal(9007199254740993, g._source.big)
    assert.is_true(json.is_array(g._source.tags))
    assert.are.equal(true, c:exists{ index = "docs", id = "a/1" })
    assert.are.equal(false, c:exists{ index = "docs", id = "nope" })
    local _, err = c:create{ index = "docs", id = "a/1", body = { n = 2 } }
    assert.are.equal(409, err.status)
    assert.are.equal("version_conflict_engine_exception", err.type)
    r = assert(c:update{ index = "docs", id = "a/1", doc = { n = 1 } })
    assert.are.equal("noop", r.result)
    r = assert(c:update{ index = "docs", id = "b", doc = { n = 5 }, doc_as_upsert = true })
    assert.are.equal("created", r.result)
    _, err = c:index{ index = "docs", id = "a/1", body = { n = 3 }, if_seq_no = 999, if_primary_term = 1 }
    assert.are.equal(409, err.status)
    local m = assert(c:mget{ index = "docs", ids = { "a/1", "zzz" } })
    assert.are.equal(true, m.docs[1].found)
    assert.are.equal(false, m.docs[2].found)
    assert(c:refresh{ index = "docs" })
    assert.are.equal(2, assert(c:count{ index = "docs" }).count)
    assert.are.equal("deleted", assert(c:delete{ index = "docs", id = "b" }).result)
    _, err = c:get{ index = "missing", id = "1" }
    assert.are.equal("404 index_not_found_exception: no such index [missing] (GET /missing/_doc/1)", tostring(err))
    assert(c.indices:delete{ index = "docs" })
  end)

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

  describe("scan", function()
    local N = 5003
    setup(function()
      local bi = c:bulk_indexer{ index = "scan", batch_docs = 500, retries = 12, backoff = { base = 0.01 } }
      for i = 1, N do bi:index({ n = i }, { id = "s" .. i }) end
      assert.are.equal(N, bi:close().ok)
      assert(c:refresh{ index = "scan" })
    end)

    for _, method in ipairs{ "pit", "scroll" } do
      for _, slices in ipairs{ 1, 4 } do
        it(method .. " with " .. slices .. " slice(s) returns every document once and releases its contexts", function()
          local s = c:scan("scan", nil, { method = method, slices = slices, size = 400 })
          local seen, n = {}, 0
          for hit in s do
            assert.is_nil(seen[hit._id])
            seen[hit._id] = true
            n = n + 1
          end
          assert.are.equal(N, n)
          for i = 1, N do assert.is_true(seen["s" .. i]) end
          if method == "pit" then
            assert.is_string(s.pit_id)
            assert.is_true(pit_is_gone(c, s.pit_id))
          else
            assert.is_true(next(s.scroll_ids) ~= nil)
            for id in pairs(s.scroll_ids) do assert.is_true(scroll_is_gone(c, id)) end
          end
        end)
      end
    end

    it("releases the context when the loop is left early or closed explicitly", function()
      local s = c:scan("scan", { range = { n = { lte = 2000 } } }, { size = 100 })
      local k = 0
      for _ in s do
        k = k + 1
        if k == 150 then break end
      end
      s:close()
      assert.is_true(pit_is_gone(c, s.pit_id))
      local s2 = c:scan("scan", nil, { method = "scroll", size = 100 })
      assert.truthy(s2())
      assert(s2:close())
      for id in pairs(s2.scroll_ids) do assert.is_true(scroll_is_gone(c, id)) end
    end)

    it("raises the error object for a missing index", function()
      local ok, err = pcall(function() for _ in c:scan("no-such-index", nil) do end end)
      assert.is_false(ok)
      assert.are.equal(404, err.status)
      assert.are.equal("index_not_found_exception", err.type)
    end)
  end)
end)
