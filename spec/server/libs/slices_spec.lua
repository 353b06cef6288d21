-- espipe.server.slices: which slice of a sliced scroll or PIT search a
-- document belongs to.
local slices = require("espipe.server.slices")

describe("server slices", function()
  it("splits documents into disjoint slices that cover them all", function()
    for _, case in ipairs({ { 2, 5 }, { 5, 5 }, { 7, 3 }, { 4, 1 } }) do
      local max, shards = case[1], case[2]
      local counts = {}
      for i = 1, 600 do
        local shard = i % shards
        local s = slices.slice_of("doc" .. i, shard, max, shards)
        assert.is_true(s >= 0 and s < max)
        assert.equal(s, slices.slice_of("doc" .. i, shard, max, shards)) -- deterministic
        counts[s] = (counts[s] or 0) + 1
      end
      for s = 0, max - 1 do assert.is_true((counts[s] or 0) > 0, max .. "/" .. shards .. " slice " .. s) end
    end
    -- with no more slices than shards, whole shards go to one slice
    assert.equal(1, slices.slice_of("x", 3, 2, 5))
  end)
end)
