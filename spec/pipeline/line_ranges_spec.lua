-- A file cut into byte ranges at line boundaries (load --workers).
local line_ranges = require "espipe.pipeline.line_ranges"
local S = require "pipeline.support"

describe("line ranges", function()
  after_each(S.cleanup)

  local function file(text)
    local dir = S.tmpdir()
    S.write(dir .. "/f", text)
    return dir .. "/f"
  end

  it("covers the file exactly, every cut just past a newline", function()
    local t = {}
    for i = 1, 5000 do t[i] = '{"i":' .. i .. ',"pad":"' .. string.rep("x", i % 37) .. '"}' end
    local text = table.concat(t, "\n") .. "\n"
    local path = file(text)
    for _, n in ipairs { 1, 2, 3, 7 } do
      local r = assert(line_ranges.split(path, n))
      assert.equal(n, #r)
      assert.equal(0, r[1].start)
      assert.equal(#text, r[#r].stop)
      local lines = 0
      for k, range in ipairs(r) do
        if k > 1 then
          assert.equal(r[k - 1].stop, range.start)
          assert.equal("\n", text:sub(range.start, range.start)) -- the byte before the range
        end
        local _, c = text:sub(range.start + 1, range.stop):gsub("\n", "")
        lines = lines + c
      end
      assert.equal(5000, lines)
    end
  end)

  it("gives fewer ranges than asked when the file has fewer lines, none empty", function()
    local r = assert(line_ranges.split(file("a\nb\n"), 5))
    assert.same({ { start = 0, stop = 2 }, { start = 2, stop = 4 } }, r)
    assert.same({ { start = 0, stop = 13 } }, assert(line_ranges.split(file("one long line"), 3)))
    assert.same({}, assert(line_ranges.split(file(""), 2)))
  end)

  it("says why a file cannot be cut", function()
    local r, err = line_ranges.split("/nonexistent/x", 2)
    assert.is_nil(r)
    assert.matches("cannot open /nonexistent/x", tostring(err), 1, true)
  end)
end)
