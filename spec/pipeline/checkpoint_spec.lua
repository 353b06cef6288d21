-- Checkpoint files are replaced atomically and keep exact values.
local checkpoint = require "espipe.pipeline.checkpoint"
local S = require "pipeline.support"

describe("checkpoint", function()
  after_each(S.cleanup)

  it("saves and loads state with big integers and strings exactly", function()
    local path = S.tmpdir() .. "/ck.json"
    assert.is_nil(checkpoint.load(path))
    local big = math.tointeger and math.tointeger(2 ^ 53) + 1 or 2 ^ 53
    local state = { slices = { { search_after = { big, "id-9" }, done = 12 } }, version = 1 }
    assert(checkpoint.save(path, state))
    assert.same(state, checkpoint.load(path))
    assert.same({ "ck.json" }, S.listdir(path:match("^(.*)/")))
  end)

  it("reports a damaged checkpoint instead of starting over silently", function()
    local path = S.tmpdir() .. "/ck.json"
    S.write(path, '{"slices": [')
    local state, err = checkpoint.load(path)
    assert.is_nil(state)
    assert.matches("not valid JSON", tostring(err))
  end)

  it("fails with an error value when the directory is not writable", function()
    local ok, err = checkpoint.save("/nonexistent-dir/ck.json", { a = 1 })
    assert.is_nil(ok)
    assert.matches("cannot write", tostring(err))
  end)
end)

describe("checkpoint.acks", function()
  it("moves a slice only over pages all of whose documents settled, in order", function()
    local acks = checkpoint.acks { ["1"] = { search_after = { 5 } } }
    local p1 = acks:page(0, { search_after = { 10 } })
    acks:add(p1) acks:add(p1)
    acks:sealed(p1)
    local p2 = acks:page(0, { search_after = { 20 } })
    acks:add(p2)
    acks:sealed(p2)
    local p3 = acks:page(0, { search_after = { 30 }, done = true })
    acks:sealed(p3) -- every document dropped
    assert.same({ ["1"] = { search_after = { 5 } } }, acks:positions())
    acks:settled { p2 } -- a later batch settles first: page 1 still holds the slice back
    assert.is_nil(acks:positions()["0"])
    acks:settled { p1 }
    assert.is_nil(acks:positions()["0"])
    acks:settled { p1 }
    assert.same({ search_after = { 30 }, done = true }, acks:positions()["0"])
    assert.same({ search_after = { 5 } }, acks:positions()["1"])
  end)

  it("keeps a page open until it is sealed, however many of its documents settled", function()
    local acks = checkpoint.acks()
    local p = acks:page(2, { search_after = { 1 } })
    acks:add(p)
    acks:settled { p }
    assert.is_nil(acks:positions()["2"])
    acks:sealed(p)
    assert.same({ search_after = { 1 } }, acks:positions()["2"])
  end)
end)
