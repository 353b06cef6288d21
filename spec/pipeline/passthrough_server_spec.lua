-- Without a transform, reindex and NDJSON export hand documents on as the
-- server's bytes: never decoded, so nothing about them can change (integers
-- beyond 2^53, 1.0 vs 1, key order, escapes, empty containers).
local devserver = require "support.devserver"
local http = require "support.http"
local espipe = require "espipe"

local SOURCES = {
  '{"z":1,"a":2,"big":9223372036854775807,"f":1.0,"neg":-0.0}',
  '{"esc":"a\\/b \\u00e9 \\ud83d\\ude00","empty":[],"obj":{},"nil":null}',
  '{ "spaced" : [ 1 , 2 ] ,"exp":1E+2,"deep":{"x":{"y":[[],{}]}}}',
  '{"unicode":"Γειά σου Κόσμε","big_neg":-18446744073709551616}',
}

local function get_raw_source(url, index, id)
  local res = http.request{ url = url .. "/" .. index .. "/_source/" .. id }
  assert.equal(200, res.status, res.body)
  return res.body
end

describe("passthrough of _source bytes #server", function()
  local env = devserver.env { cluster = true }
  setup(env.start) teardown(env.stop) before_each(env.fresh)

  setup(function()
    local lines = {}
    for i, src in ipairs(SOURCES) do
      lines[#lines + 1] = '{"index":{"_index":"raw-src","_id":"' .. i .. '"}}'
      lines[#lines + 1] = src
    end
    local res = http.request{ method = "POST", url = env.server.url .. "/_bulk?refresh=true",
      headers = { ["Content-Type"] = "application/x-ndjson" }, body = table.concat(lines, "\n") .. "\n" }
    assert.equal(200, res.status, res.body)
    assert.is_nil(res.body:find('"errors":true', 1, true), res.body)
    for i, src in ipairs(SOURCES) do assert.equal(src, get_raw_source(env.server.url, "raw-src", i)) end
  end)

  it("reindex without a transform writes the very bytes it read", function()
    local summary = assert(espipe.reindex{
      source = { client = env.client, index = "raw-src", slices = 2 },
      dest = { client = env.client, index = "raw-dst" },
      dead_letter = env.dir .. "/dl.ndjson",
    })
    assert.same({ #SOURCES, 0 }, { summary.ok, summary.failed })
    for i, src in ipairs(SOURCES) do
      assert.equal(src, get_raw_source(env.server.url, "raw-dst", i))
    end
  end)

  -- the C path takes the usual hits of a page, the per-hit path the others,
  -- and batches end in the middle of pages
  it("reindex copies ids, routing and sources exactly, usual hits or not", function()
    local ids = { "plain-1", 'q\\"uote', "caf\195\169", "sp ace", "plain-2", "plain-3", "r1", "r2" }
    local lines = {}
    for i, id in ipairs(ids) do
      local action = { _index = "mixed-src", _id = id, routing = i > 6 and ("shard-" .. i) or nil }
      lines[#lines + 1] = require("espipe.json").encode { index = action }
      lines[#lines + 1] = SOURCES[(i - 1) % #SOURCES + 1]
    end
    local res = http.request{ method = "POST", url = env.server.url .. "/_bulk?refresh=true",
      headers = { ["Content-Type"] = "application/x-ndjson" }, body = table.concat(lines, "\n") .. "\n" }
    assert.equal(200, res.status, res.body)
    local summary = assert(espipe.reindex{
      source = { client = env.client, index = "mixed-src", size = 3 },
      dest = { client = env.client, index = "mixed-dst" }, batch_docs = 2,
      dead_letter = env.dir .. "/dl.ndjson",
    })
    assert.same({ #ids, #ids, 0 }, { summary.scanned, summary.ok, summary.failed })
    local function all(index)
      local got = {}
      for h in env.client:scan(index, nil, { raw_source = true }) do
        got[h._id] = { routing = h._routing, source = h._source }
      end
      return got
    end
    local src, dst = all("mixed-src"), all("mixed-dst")
    for _, id in ipairs(ids) do assert.is_truthy(src[id], id) end
    assert.equal("shard-8", src.r2.routing)
    assert.same(src, dst)
  end)

  it("NDJSON export of whole documents writes the very bytes it read", function()
    local out = env.dir .. "/raw.ndjson"
    local summary = assert(espipe.export{ client = env.client, index = "raw-src", to = out, format = "ndjson" })
    assert.is_truthy(summary)
    local f = assert(io.open(out, "rb"))
    local got = {}
    for line in f:lines() do got[line] = true end
    f:close()
    for _, src in ipairs(SOURCES) do assert.is_true(got[src], "missing line " .. src) end
  end)
end)
