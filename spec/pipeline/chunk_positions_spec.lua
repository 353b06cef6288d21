-- The parts of an input done when it was handed to workers in chunks.
local chunk_positions = require "espipe.pipeline.chunk_positions"

describe("chunk positions", function()
  it("marks chunks done as their workers acknowledge them, the partial one up to its position", function()
    local pos = chunk_positions.new()
    pos:sent(1, 100, 0)   -- input 0..99 -> worker 1's stream 0..99
    pos:sent(2, 50, 100)  -- input 100..149 -> worker 2's stream 0..49
    pos:sent(1, 30, 150)  -- input 150..179 -> worker 1's stream 100..129
    pos:acked(2, 50, { read = 5, ok = 5, failed = 0 })
    assert.same({ offset = 0, ranges = { { 100, 150 } }, counts = { read = 5, ok = 5, failed = 0 } }, pos:state())
    pos:acked(1, 110, { read = 11, ok = 10, failed = 1 })
    local st = pos:state()
    assert.equal(160, st.offset) -- 0..149 and worker 1's 10 bytes of its second chunk
    assert.same({}, st.ranges)
    assert.same({ read = 16, ok = 15, failed = 1 }, st.counts)
  end)

  it("resumes from a saved state: done parts are jumped, the next one bounds a chunk", function()
    local pos = chunk_positions.new { offset = 40, ranges = { { 60, 80 }, { 90, 95 } } }
    assert.same({ 40, 60 }, { pos:next_todo(0) })
    assert.same({ 50, 60 }, { pos:next_todo(50) })
    assert.same({ 80, 90 }, { pos:next_todo(60) })
    assert.same({ 95 }, { pos:next_todo(90) })
    pos:done(80, 90)
    assert.same({ offset = 40, ranges = { { 60, 95 } }, counts = {} }, pos:state())
    pos:done(40, 60)
    assert.same({ offset = 95, ranges = {}, counts = {} }, pos:state())
  end)
end)
