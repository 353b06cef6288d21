-- A load's checkpoint: the position moves over pages all of whose
-- documents settled, with the counts at exactly that position.
local load_checkpoint = require "espipe.pipeline.load_checkpoint"
local checkpoint = require "espipe.pipeline.checkpoint"
local S = require "pipeline.support"

describe("load checkpoint", function()
  after_each(S.cleanup)

  local function setup_job()
    local dir = S.tmpdir()
    S.write(dir .. "/in", "one\ntwo\n")
    local job = load_checkpoint.identity { input = dir .. "/in", index = "i", id_field = "id" }
    return dir, job
  end

  -- n documents of the open page, then a mark where the input may resume
  local function read(ck, summary, n, offset, line)
    local page = ck.page
    ck:added(n)
    summary.read = summary.read + n
    ck:mark(offset, line, summary)
    return page
  end

  it("saves the position before which every document settled, and the counts there", function()
    local dir, job = setup_job()
    local path = dir .. "/ck"
    local ck = assert(load_checkpoint.open(path, job, dir .. "/in", 0, 1))
    local summary = { read = 0, bad_lines = 0, unreplayable = 0 }
    local p1 = read(ck, summary, 3, 30, 3)
    ck:seal()
    local p2 = read(ck, summary, 2, 50, 5)
    ck:seal()
    -- the second page settles first (one of it failed): the position waits for the first
    assert.is_true(ck:on_batch({ tokens = { p2, p2 }, failed_tokens = { p2 } }, 0.5))
    assert.same({ read = 0, ok = 0, failed = 0, bad_lines = 0, unreplayable = 0 }, ck:counts())
    assert.is_true(ck:on_batch({ tokens = { p1, p1, p1 }, failed_tokens = {} }, 2))
    local st = checkpoint.load(path) -- saved: a second has passed
    assert.same({ 50, 5 }, { st.offset, st.line })
    assert.same({ read = 5, ok = 4, failed = 1, bad_lines = 0, unreplayable = 0 }, st.counts)
    -- a rerun starts there, and counts on from there
    local again = assert(load_checkpoint.open(path, job, dir .. "/in", 0, 1))
    assert.same({ offset = 50, line = 5 }, { offset = again.start.offset, line = again.start.line })
    assert.same({ read = 7, ok = 6, failed = 1, bad_lines = 0, unreplayable = 0 },
      again:whole { read = 2, ok = 2, failed = 0 })
  end)

  it("refuses another job's checkpoint and a changed input", function()
    local dir, job = setup_job()
    local path = dir .. "/ck"
    local ck = assert(load_checkpoint.open(path, job, dir .. "/in", 0, 1))
    assert.is_true(ck:save())
    local other = load_checkpoint.identity { input = dir .. "/in", index = "j", id_field = "id" }
    local r, err = load_checkpoint.open(path, other, dir .. "/in", 0, 1)
    assert.is_nil(r)
    assert.matches("is of another job: its index is i, this job's j", tostring(err), 1, true)
    -- a worker's range follows from --workers
    local ranged = load_checkpoint.identity { input = dir .. "/in", index = "i", id_field = "id",
                                              range = { start = 0, stop = 4 } }
    r, err = load_checkpoint.open(path, ranged, dir .. "/in", 0, 1)
    assert.is_nil(r)
    assert.matches("(its range the whole input, this one 0-4): rerun it with the same --workers", tostring(err), 1, true)
    S.write(dir .. "/in", "one\ntwo\nthree\n")
    r, err = load_checkpoint.open(path, job, dir .. "/in", 0, 1)
    assert.is_nil(r)
    assert.matches("changed since it was written (8 bytes then, 14 now)", tostring(err), 1, true)
  end)
end)
