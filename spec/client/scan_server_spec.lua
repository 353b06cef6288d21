-- Scans against the dev server: every document once, contexts released.
local json = require("espipe.json")

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

describe("scan against espipe serve #server", function()
  local server, c = require("spec.client.support.fixtures").chaos_server(), nil
  setup(function() c = server.start() end)
  teardown(server.stop)

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
