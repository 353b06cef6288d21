-- Whole lines of a reader in chunks (load --workers with compressed input or stdin).
local lines = require "espipe.pipeline.lines"
local line_chunks = require "espipe.pipeline.line_chunks"
local S = require "pipeline.support"

describe("line chunks", function()
  after_each(S.cleanup)

  local function text()
    local t = {}
    for i = 1, 3000 do t[i] = '{"i":' .. i .. ',"pad":"' .. string.rep("y", (i * 7) % 300) .. '"}' end
    return table.concat(t, "\n") .. "\n"
  end

  for _, gz in ipairs { false, true } do
    it("hands over the input exactly, each chunk whole lines" .. (gz and " (gzip)" or ""), function()
      local dir = S.tmpdir()
      local want = text()
      S.write(dir .. "/f", want)
      local path = dir .. "/f"
      if gz then
        assert(os.execute("gzip " .. S.q(path)))
        path = path .. ".gz"
      end
      local r = assert(lines.open(path, { chunk = 1000 }))
      local chunks, got = line_chunks.new(r), {}
      for c in function() return chunks:next() end do
        assert.equal("\n", c:sub(-1))
        got[#got + 1] = c
      end
      r:close()
      assert.is_true(#got > 10)
      assert.equal(want, table.concat(got))
    end)
  end

  it("reports a line over max_line without holding it, and goes on", function()
    local dir = S.tmpdir()
    S.write(dir .. "/f", "a\n" .. string.rep("x", 5000) .. "\nb\n")
    local r = assert(lines.open(dir .. "/f", { chunk = 1000, max_line = 100 }))
    local chunks, got = line_chunks.new(r), {}
    while true do
      local c, err = chunks:next()
      if c == nil then break end
      if c == false then
        assert.equal(2, err.offset)
        assert.equal(5000, err.bytes)
        got[#got + 1] = "<long>"
      else
        got[#got + 1] = c
      end
    end
    assert.equal("a\n<long>b\n", table.concat(got))
  end)
end)
