-- reindex --create-index-from-source (espipe.pipeline.index_copy): the
-- destination indices get the source's settings and mappings across
-- releases, without what only the source index or its release has, and the
-- summary names what was left out.
local devserver = require "spec.support.devserver"
local http = require "spec.support.http"
local json = require "espipe.json"
local J = require "pipeline.jobs"
local S = require "pipeline.support"

local MAPPING = { properties = { n = { type = "long" }, tag = { type = "keyword" } } }

-- docs ids name.1 .. name.n, every third with a routing
local function fill(url, name, n, typed)
  local lines = {}
  for i = 1, n do
    lines[#lines + 1] = { index = { _index = name, _id = name .. "." .. i, _type = typed and "doc" or nil,
                                    routing = i % 3 == 0 and ("r" .. i) or nil } }
    lines[#lines + 1] = { n = i, tag = name }
  end
  local s, body = http.bulk(url, lines, "?refresh=true")
  assert.equal(200, s)
  assert.is_false(body.errors)
end

local function settings_of(url, index)
  local _, body = http.json("GET", url .. "/" .. index .. "/_settings")
  return body[index].settings.index
end

local function hits(url, index)
  local _, body = http.json("POST", url .. "/" .. index .. "/_search", { size = 100, sort = { "n" } })
  return body.hits.hits
end

describe("reindex --create-index-from-source #server", function()
  local old, new, six
  setup(function()
    old = devserver.start { args = { "--flavor", "es-6.8" } }
    new = devserver.start { args = { "--flavor", "es-8.15" } }
    six = devserver.start { args = { "--flavor", "es-6.8" } }
    for i, name in ipairs { "logs-1", "logs-2" } do
      -- as a 6.8 cluster shows its own indices: created by 6.8.23, typed
      assert.equal(200, (http.json("PUT", old.url .. "/" .. name, {
        settings = { index = { number_of_shards = 2, ["version.created"] = "6082399",
                               analysis = { analyzer = { low = { type = "custom", tokenizer = "keyword" } } } } },
        mappings = { doc = MAPPING } })))
      fill(old.url, name, 10 * i, true)
    end
  end)
  teardown(function()
    old.stop()
    new.stop()
    six.stop()
    S.cleanup()
  end)

  it("6.8 logs-* -> 8.15 one index per source index: settings, mappings and routing carried over", function()
    local code, out, err = J.espipe("reindex " .. S.q(old.url .. "/logs-*") .. " " .. S.q(new.url .. "/")
      .. " --create-index-from-source --json --quiet")
    assert.equal(0, code, out .. err)
    local summary = json.decode(out)
    assert.same({ { name = "logs-1", from = "logs-1" }, { name = "logs-2", from = "logs-2" } },
                summary.index_copy.created)
    for _, dropped in ipairs { "index.creation_date", "index.provided_name", "index.uuid",
                                "index.version.created", "mappings: type level [doc]" } do
      assert.truthy(summary.index_copy.dropped[1] and table.concat(summary.index_copy.dropped, "|"):find(dropped, 1, true),
        dropped .. " not in " .. json.encode(summary.index_copy.dropped))
    end
    for i, name in ipairs { "logs-1", "logs-2" } do
      local src, dst = settings_of(old.url, name), settings_of(new.url, name)
      assert.equal("2", dst.number_of_shards)
      assert.are_not.equal(src.uuid, dst.uuid)
      assert.equal("8512000", dst.version.created) -- the destination's own release
      assert.same(src.analysis, dst.analysis)
      local _, m = http.json("GET", new.url .. "/" .. name .. "/_mapping")
      assert.same(MAPPING, m[name].mappings)
      local got = hits(new.url, name)
      assert.equal(10 * i, #got)
      for k, h in ipairs(got) do
        assert.equal(name .. "." .. k, h._id)
        assert.equal(k % 3 == 0 and ("r" .. k) or nil, h._routing)
      end
    end
  end)

  it("8.15 -> 6.8 into one index: made from the first source index, under a type", function()
    -- (the 8.15 indices of the case before are the source now)
    local code, out, err = J.espipe("reindex " .. S.q(new.url .. "/logs-*") .. " " .. S.q(six.url .. "/all")
      .. " --create-index-from-source --quiet")
    assert.equal(0, code, out .. err)
    local _, m = http.json("GET", six.url .. "/all/_mapping")
    assert.same(MAPPING, m.all.mappings._doc)
    assert.equal("2", settings_of(six.url, "all").number_of_shards)
    assert.equal(30, #hits(six.url, "all"))
  end)

  it("refuses what acts on one destination index when DEST names none", function()
    for _, flag in ipairs { "--tune-dest", "--swap-alias a", "--presort" } do
      local code, _, err = J.espipe("reindex " .. S.q(old.url .. "/logs-*") .. " " .. S.q(new.url .. "/")
        .. " --create-index-from-source " .. flag)
      assert.equal(2, code, err)
      assert.matches("act on one destination index", err)
    end
  end)

  it("names the created indices and what was left out in the summary", function()
    local code, out, err = J.espipe("reindex " .. S.q(old.url .. "/logs-1") .. " " .. S.q(new.url .. "/copy1")
      .. " --create-index-from-source")
    assert.equal(0, code, out .. err)
    assert.matches("new indices%s+copy1 %(from logs%-1%)", err)
    assert.matches("not copied%s+index%.creation_date, index%.provided_name, index%.uuid, index%.version%.created, "
      .. "mappings: type level %[doc%]", err)
  end)
end)
