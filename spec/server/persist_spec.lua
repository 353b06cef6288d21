-- --data: what was acknowledged survives kill -9 of nginx (master and
-- workers) and a restart on the same directory.
local devserver = require("spec.support.devserver")
local http = require("spec.support.http")

describe("espipe serve #server: --data", function()
  it("keeps acknowledged documents, metadata and versions across kill -9", function()
    local first = devserver.start { data = true }
    local second
    local ok, err = pcall(function()
      local url = first.url
      assert.matches("data is persisted in", first.output)
      http.json("PUT", url .. "/keep", { settings = { number_of_shards = 3, refresh_interval = "-1" },
        mappings = { dynamic = "strict", properties = { n = { type = "long" }, s = { type = "keyword" } } },
        aliases = { kept = {} } })
      local lines = {}
      for i = 1, 500 do
        lines[#lines + 1] = { index = { _index = "keep", _id = tostring(i) } }
        lines[#lines + 1] = '{"n":' .. i .. ',"s":"line\\nbreak ' .. i .. '"}'
      end
      local status, body = http.bulk(url, lines)
      assert.equal(200, status)
      assert.is_false(body.errors)
      -- a pretty-printed body: its line breaks must not split the log record
      http.json("PUT", url .. "/keep/_doc/7", '{\n  "n": 70\n}\n')
      http.json("DELETE", url .. "/keep/_doc/8")
      http.json("POST", url .. "/keep/_update/9", { doc = { s = "patched" } })
      http.json("PUT", url .. "/gone", {})
      http.json("DELETE", url .. "/gone")
      local _, before = http.json("GET", url .. "/keep/_doc/7")

      first.kill9()
      assert.equal(0, http.request { url = url .. "/", timeout = 2 }.status)

      second = devserver.start { data = first.data }
      url = second.url
      local _, count = http.json("GET", url .. "/keep/_count")
      assert.equal(499, count.count)
      local _, doc = http.json("GET", url .. "/keep/_doc/7")
      assert.same({ n = 70 }, doc._source)
      assert.same({ before._version, before._seq_no }, { doc._version, doc._seq_no })
      assert.equal(404, (http.json("GET", url .. "/keep/_doc/8")))
      _, doc = http.json("GET", url .. "/kept/_doc/9")
      assert.equal("patched", doc._source.s)
      _, doc = http.json("GET", url .. "/keep/_doc/10")
      assert.equal("line\nbreak 10", doc._source.s)
      assert.equal(404, http.request { method = "HEAD", url = url .. "/gone" }.status)
      local _, settings = http.json("GET", url .. "/keep/_settings")
      assert.equal("3", settings.keep.settings.index.number_of_shards)
      assert.equal("-1", settings.keep.settings.index.refresh_interval)
      -- the strict mapping still holds, and sequence numbers continue
      status, body = http.json("PUT", url .. "/keep/_doc/x", { other = 1 })
      assert.equal(400, status)
      assert.equal("strict_dynamic_mapping_exception", body.error.type)
      status, body = http.json("PUT", url .. "/keep/_doc/7", { n = 71 })
      assert.equal(200, status)
      assert.equal(before._version + 1, body._version)
      assert.is_true(body._seq_no > before._seq_no)
    end)
    if second then second.stop() end
    first.stop()
    assert(ok, err)
  end)

  it("answers 404 for a PIT or scroll id of an earlier start, never another context's pages", function()
    local first = devserver.start { data = true }
    local second
    local ok, err = pcall(function()
      http.json("PUT", first.url .. "/a/_doc/1?refresh=true", { n = 1 })
      local _, pit = http.json("POST", first.url .. "/a/_pit?keep_alive=5m")
      local _, page = http.json("POST", first.url .. "/a/_search?scroll=5m", { size = 1 })
      first.kill9() -- (stop would remove the data directory with the rest of its files)
      second = devserver.start { data = first.data }
      assert.equal(1, select(2, http.json("GET", second.url .. "/a/_count")).count)
      http.json("PUT", second.url .. "/b/_doc/1?refresh=true", { n = 2 })
      -- the new start's first contexts get the numbers the old ids carried
      local _, new_pit = http.json("POST", second.url .. "/b/_pit?keep_alive=5m")
      http.json("POST", second.url .. "/b/_search?scroll=5m", { size = 1 })
      assert.are_not.equal(pit.id, new_pit.id)
      local status, body = http.json("POST", second.url .. "/_search", { pit = { id = pit.id } })
      assert.equal(404, status)
      assert.equal("search_context_missing_exception", body.error.caused_by.type)
      status = http.json("POST", second.url .. "/_search/scroll", { scroll_id = page._scroll_id })
      assert.equal(404, status)
    end)
    if second then second.stop() end
    first.stop()
    assert(ok, err)
  end)

  it("says the data is in memory only without --data", function()
    local server = devserver.start()
    local out = server.output
    server.stop()
    assert.matches("data is kept in memory only; use %-%-data DIR to persist", out)
  end)
end)
