-- espipe.client.indices without a server: the request each index API sends.
local json = require("espipe.json")

local client_answering = require("spec.client.support.fixtures").client_answering

describe("client.indices requests", function()
  it("indices APIs use their endpoints", function()
    local c, t = client_answering(200, '{"acknowledged":true}')
    c.indices:create{ index = "i", settings = { number_of_shards = 2 }, mappings = { dynamic = "strict" } }
    c.indices:get_settings{ index = "i", flat_settings = true }
    c.indices:put_settings{ index = "i", settings = { index = { refresh_interval = "-1" } } }
    c.indices:get_mapping{ index = "i" }
    c.indices:put_mapping{ index = "i", properties = { n = { type = "long" } } }
    c.indices:update_aliases{ actions = { { add = { index = "i", alias = "a" } } } }
    c.indices:get_alias{ name = "a" }
    c.indices:get{ index = "i" }
    c.indices:delete{ index = "i" }
    local got = {}
    for i, s in ipairs(t.sent) do got[i] = s.method .. " " .. s.path .. (s.query and ("?" .. s.query) or "") end
    assert.are.same({
      "PUT /i", "GET /i/_settings?flat_settings=true", "PUT /i/_settings", "GET /i/_mapping",
      "PUT /i/_mapping", "POST /_aliases", "GET /_alias/a", "GET /i", "DELETE /i",
    }, got)
    assert.are.same({ settings = { number_of_shards = 2 }, mappings = { dynamic = "strict" } }, json.decode(t.sent[1].body))
  end)

  it("raises naming the caller's mistake", function()
    local c = client_answering(200, "{}")
    assert.has_error(function() c.indices:get_alias{ name = "" } end, 'index must be a non-empty string, got ""')
    local ok, err = pcall(function() c.indices:get_settings{ name = {} } end)
    assert.is_false(ok)
    assert.matches("^spec/client/indices_spec.lua:%d+: index must not be an empty list", err)
  end)
end)
