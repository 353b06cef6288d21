-- The pipelines' own dead letter: lazily opened, one JSON line a record,
-- failures to open or write returned as nil, err.
local deadletter = require "espipe.pipeline.deadletter"
local json = require "espipe.json"
local S = require "pipeline.support"

describe("deadletter", function()
  it("creates no file until a record is added, then one JSON line a record", function()
    local dl = deadletter.new(S.tmpdir() .. "/dl.ndjson")
    local path = dl.path
    assert.is_nil(S.read_if(path))
    assert.is_true(dl:add { _id = "a", error = "boom" })
    assert.is_true(dl:append('{"raw":1}\n'))
    dl:close()
    local lines = {}
    for line in S.read(path):gmatch("[^\n]+") do lines[#lines + 1] = json.decode(line) end
    assert.same({ { _id = "a", error = "boom" }, { raw = 1 } }, lines)
    assert.equal(2, dl.count)
  end)

  it("returns an output error naming the path when the file cannot be opened", function()
    local path = S.tmpdir() .. "/no/such/dir/dl.ndjson"
    local dl = deadletter.new(path)
    local ok, err = dl:add { _id = "a" }
    assert.is_nil(ok)
    assert.equal("output", err.kind)
    assert.matches("cannot open dead letter " .. path, tostring(err), 1, true)
    assert.equal(0, dl.count)
  end)

  teardown(S.cleanup)
end)
