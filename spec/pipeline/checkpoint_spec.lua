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
