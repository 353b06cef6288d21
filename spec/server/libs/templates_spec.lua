-- espipe.server.templates: which templates an index being created gets,
-- how they compose, and the checks on their definitions.
local templates = require("espipe.server.templates")

local function reset()
  for _, store in ipairs({ templates.index, templates.component, templates.legacy }) do
    for k in pairs(store) do store[k] = nil end
  end
end

describe("server index templates", function()
  before_each(reset)

  it("leaves a creation alone when no template matches", function()
    local body = { settings = { number_of_shards = 2 } }
    assert.equal(body, templates.apply("logs", body))
    assert.is_nil(templates.put_index("t", { index_patterns = { "other-*" }, template = {} }))
    assert.is_nil(templates.apply("logs", nil))
  end)

  it("composes components in order, then the template, then the request", function()
    assert.is_nil(templates.put_component("base", { template = {
      settings = { index = { number_of_shards = 3, refresh_interval = "5s" } },
      mappings = { properties = { a = { type = "keyword" }, o = { properties = { x = { type = "long" } } } } },
      aliases = { ["{index}-alias"] = {} } } }))
    assert.is_nil(templates.put_component("more", { template = { settings = { ["index.number_of_shards"] = 2 },
      mappings = { properties = { o = { properties = { y = { type = "date" } } } } } } }))
    assert.is_nil(templates.put_index("logs", { index_patterns = "logs-*", composed_of = { "base", "more" },
      template = { mappings = { dynamic = "strict", properties = { b = { type = "long" } } } } }))
    local body = templates.apply("logs-1", { settings = { number_of_replicas = 0 },
      mappings = { properties = { a = { type = "text" } } } })
    assert.same({ number_of_shards = "2", refresh_interval = "5s", number_of_replicas = "0" }, body.settings)
    assert.same({ dynamic = "strict", properties = { a = { type = "text" }, b = { type = "long" },
      o = { properties = { x = { type = "long" }, y = { type = "date" } } } } }, body.mappings)
    assert.same({ ["logs-1-alias"] = {} }, body.aliases)
  end)

  it("picks the composable template of highest priority over legacy ones", function()
    assert.is_nil(templates.put_index("low", { index_patterns = { "a*" }, priority = 1,
      template = { settings = { number_of_shards = 1 } } }))
    assert.is_nil(templates.put_index("high", { index_patterns = { "ab*" }, priority = 5,
      template = { settings = { number_of_shards = 4 } } }))
    assert.is_nil(templates.put_legacy("old", { index_patterns = { "*" }, settings = { number_of_shards = 9 } }))
    assert.equal("4", templates.apply("abc", nil).settings.number_of_shards)
    assert.equal("1", templates.apply("ax", nil).settings.number_of_shards)
    assert.equal("9", templates.apply("zzz", nil).settings.number_of_shards)
  end)

  it("merges legacy templates by ascending order", function()
    assert.is_nil(templates.put_legacy("second", { index_patterns = { "x*" }, order = 2,
      settings = { number_of_shards = 2 } }))
    assert.is_nil(templates.put_legacy("first", { index_patterns = { "x*" }, order = 1,
      settings = { number_of_shards = 1, number_of_replicas = 1 } }))
    assert.same({ number_of_shards = "2", number_of_replicas = "1" }, templates.apply("x1", {}).settings)
  end)

  it("checks definitions as ES does", function()
    local _, s, c
    s, c = templates.put_index("t", { template = {} })
    assert.same({ 400, "action_request_validation_exception", "Validation Failed: 1: index patterns are missing;" },
      { s, c.type, c.reason })
    _, c = templates.put_index("t", { index_patterns = { "a*" }, composed_of = { "nope" } })
    assert.same({ "invalid_index_template_exception",
      "index template [t] specifies component templates [nope] that do not exist" }, { c.type, c.reason })
    _, c = templates.put_index("t", { index_patterns = { "a*" }, templat = {} })
    assert.equal("[index_template] unknown field [templat]", c.reason)
    assert.is_nil(templates.put_index("t1", { index_patterns = { "a*" } }))
    _, c = templates.put_index("t2", { index_patterns = { "a*" } })
    assert.matches("that have the same priority %[0%]", c.reason)
    assert.is_nil(templates.put_index("t2", { index_patterns = { "a*" }, priority = 1 }))
    s, c = templates.put_index("t2", { index_patterns = { "a*" }, priority = 2 }, true)
    assert.equal("index template [t2] already exists", c.reason)
    assert.is_nil(templates.put_component("c", { template = {} }))
    assert.is_nil(templates.put_index("t3", { index_patterns = { "q*" }, composed_of = { "c" } }))
    assert.same({ "t3" }, templates.component_users("c"))
    assert.same({ "t1", "t2" }, templates.matching_names(templates.index, "t1,t2"))
    assert.same({ "t1", "t2", "t3" }, templates.matching_names(templates.index, "t*"))
    assert.equal(400, s)
  end)
end)
