-- The bulk indexer's dead letter in a reindex: 409s of op = "create" are
-- done, other items go to the file until the job has failed.
local dead_letter = require "espipe.pipeline.reindex.dead_letter"
local S = require "pipeline.support"

local function job(op, path)
  return { op = op, opts = { dead_letter = path }, fail = function(self, err) self.failure = self.failure or err end }
end

describe("reindex dead letter", function()
  after_each(S.cleanup)

  it("counts a 409 of op = create as done and writes the other items' records", function()
    local path = S.tmpdir() .. "/dl.ndjson"
    local dead = dead_letter.new(job("create", path))
    dead:sink() { status = 409, record = "conflict\n" }
    dead:sink() { status = 400, record = "bad\n" }
    dead:close()
    assert.same({ 1, 1 }, { dead.conflicts_done, dead.count })
    assert.equal("bad\n", S.read(path))
  end)

  it("with op = index a 409 is a failure like any other", function()
    local dead = dead_letter.new(job("index", nil))
    dead:add { status = 409, record = "x\n" }
    assert.same({ 0, 1 }, { dead.conflicts_done, dead.count })
  end)

  it("makes an unwritable dead letter the job's failure and stops writing after it", function()
    local j = job("index", S.tmpdir() .. "/missing/dl.ndjson")
    local dead = dead_letter.new(j)
    dead:add { status = 400, record = "a\n" }
    assert.equal("output", j.failure.kind)
    dead:add { status = 400, record = "b\n" }
    assert.equal(2, dead.count)
  end)
end)
