-- espipe.pipeline.error_budget: when a job has failed often enough to stop.
local error_budget = require("espipe.pipeline.error_budget")
local client_mod = require("espipe.client")
local script_transport = require("spec.client.support.script_transport")

describe("error budget", function()
  it("raises on wrong arguments", function()
    assert.has_error(function() error_budget.new{ max_errors = -1 } end)
    assert.has_error(function() error_budget.new{ max_errors = "lots" } end)
    assert.has_error(function() error_budget.new{ max_errors = "120%" } end)
    assert.has_error(function() error_budget.new{ max_error = 1 } end)
    assert.is_nil((error_budget.parse_flag("x%")))
    assert.equal(250, error_budget.parse_flag("250"))
    assert.equal("5%", error_budget.parse_flag("5%"))
  end)

  it("by default stops after more than 1000 failures, or all of the first 1000", function()
    local b = error_budget.new()
    for i = 1, 999 do assert.is_nil(b:fail{ id = "d" .. i, reason = "bad" }) end
    local err = b:fail{ id = "d1000" }
    assert.equal("error_budget", err.kind)
    assert.matches("all of the first 1000 documents failed %(1000 of 1000%); first: document _id d1: bad",
      tostring(err))

    b = error_budget.new()
    b:ok(5000)
    for _ = 1, 1000 do assert.is_nil(b:fail{}) end
    assert.matches("more than 1000 documents failed", tostring(b:fail{}))
    assert.equal(b:exceeded(), b:fail{}) -- once tripped, the same error
  end)

  it("counts and percentages", function()
    local b = error_budget.new{ max_errors = 0 }
    assert.matches("more than 0 documents failed", tostring(b:fail{ id = 7, status = 400,
      type = "mapper_parsing_exception", reason = "failed to parse" }))
    assert.matches("first: document _id 7: 400 mapper_parsing_exception: failed to parse", tostring(b:exceeded()))

    b = error_budget.new{ max_errors = "10%" }
    for _ = 1, 200 do b:fail{} end
    assert.is_nil(b:exceeded()) -- judged once 1000 have settled
    b:ok(799)
    assert.is_nil(b:exceeded())
    assert.truthy(b:ok(1)) -- 200 of 1000 > 10%
  end)

  it("stops a bulk indexer taking documents, which still sends what it accepted", function()
    local t = script_transport.new(function(req)
      local body = type(req.body) == "string" and req.body or req.body:body()
      local items = {}
      for _ in body:gmatch("[^\n]+\n[^\n]+\n") do
        items[#items + 1] = '{"index":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"no"}}}'
      end
      return { status = 200, body = '{"errors":true,"items":[' .. table.concat(items, ",") .. "]}" }
    end)
    local budget = error_budget.new{ max_errors = 3 }
    local bi = client_mod.new{ transport = t }:bulk_indexer{ index = "x", batch_docs = 2, concurrency = 1,
                                                           error_budget = budget }
    local added, ok, err = 0, nil, nil
    for i = 1, 100 do
      ok, err = bi:index({ n = i }, { id = "e" .. i })
      if not ok then break end
      added = added + 1
    end
    assert.is_nil(ok)
    assert.equal("error_budget", err.kind)
    assert.matches("_id e1", tostring(err))
    local stats, cerr = bi:close()
    assert.equal(err, cerr)
    assert.equal(added, stats.added)
    assert.equal(stats.added, stats.ok + stats.failed)
    assert.is_true(stats.added < 10)
  end)
end)
