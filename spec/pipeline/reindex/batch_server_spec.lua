-- espipe reindex with a batch transform against the dev server: each batch
-- enriched from a lookup index with one ctx:mget; a lookup that times out
-- (the fault proxy stalls it) dead-letters that batch's documents as they
-- were read, and every other document is copied enriched.
local devserver = require "support.devserver"
local fault_proxy = require "support.fault_proxy"
local json = require "espipe.json"
local S = require "pipeline.support"
local J = require "pipeline.jobs"

local TRANSFORM = [==[
local users_url = os.getenv("USERS_URL")
return { size = 20, timeout = 0.3, retries = 0, batch = function(docs, ctx, hits)
  local ids = {}
  for i, d in ipairs(docs) do ids[i] = "u" .. (d.n % 5) end
  local users, err = ctx:mget(users_url, ids)
  if not users then error(err) end -- every document of this batch is dead-lettered
  local out = {}
  for i, d in ipairs(docs) do
    d.user, d.from_hit = users[ids[i]], hits[i]._id
    out[i] = d
  end
  return out
end }]==]

describe("espipe reindex, batch transform #server", function()
  local env = devserver.env { nodes = 1 }
  setup(function()
    env.start()
    env.fresh()
    for i = 0, 4 do assert(env.client:index { index = "users", id = "u" .. i, body = { name = "user " .. i } }) end
    J.write_docs(env.dir .. "/src.ndjson", 120)
    local code, _, err = J.espipe("load " .. S.q(env.dir .. "/src.ndjson") .. " --index src --id-field id --quiet --url "
      .. env.server.url)
    assert.equal(0, code, err)
    env.client:refresh { index = "users,src" }
  end)
  teardown(env.stop) before_each(env.fresh)

  local function reindex(dest, users_url)
    local t = env.dir .. "/t.lua"
    S.write(t, TRANSFORM)
    return J.espipe("reindex src " .. dest .. " --size 50 --transform " .. S.q(t) .. " --dead-letter "
      .. S.q(env.dir .. "/dl.ndjson") .. " --json --quiet --source-url " .. env.server.url, "USERS_URL=" .. users_url)
  end

  it("enriches every document from one mget per batch", function()
    local code, out, err = reindex("enriched", env.server.url .. "/users")
    assert.equal(0, code, err)
    assert.equal(120, json.decode(out).ok)
    local src = J.dump(env.client, "src")
    local dst, n = J.dump(env.client, "enriched")
    assert.equal(120, n)
    for id, doc in pairs(src) do
      doc.user, doc.from_hit = { name = "user " .. (doc.n % 5) }, id
      assert.same(doc, dst[id])
    end
  end)

  it("a lookup that times out dead-letters its batch unchanged; nothing is lost", function()
    local proxy = fault_proxy.start { upstream = env.server.url, rules = { { match = "_mget", action = "stall", nth = 2 } } }
    local code, out, err = reindex("partly", proxy.url .. "/users")
    proxy:stop()
    assert.equal(1, code, err)
    local s = json.decode(out)
    assert.equal(20, s.transform_errors)
    assert.equal(100, s.ok)
    local src = J.dump(env.client, "src")
    local dst, n = J.dump(env.client, "partly")
    assert.equal(100, n)
    local dead = {}
    for line in S.read(env.dir .. "/dl.ndjson.transform"):gmatch("[^\n]+") do
      local r = json.decode(line)
      assert.matches("timed out", r.error, 1, true)
      dead[r._id] = r.source
    end
    for id, doc in pairs(src) do
      if dead[id] then
        assert.is_nil(dst[id])
        assert.same(doc, dead[id]) -- as read: no half-done enrichment
      else
        assert.same({ name = "user " .. (doc.n % 5) }, dst[id].user)
      end
    end
  end)
end)
