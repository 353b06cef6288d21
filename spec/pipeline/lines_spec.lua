-- Line reading with line numbers and byte offsets, plain and compressed.
local lines = require "espipe.pipeline.lines"
local S = require "pipeline.support"

local function collect(r)
  local got = {}
  for line, n, at in r:iter() do got[#got + 1] = { line, n, at } end
  return got
end

describe("line reader", function()
  after_each(S.cleanup)

  it("numbers lines, gives byte offsets, strips CRLF, keeps a last line without newline", function()
    local dir = S.tmpdir()
    S.write(dir .. "/f", "a\r\nbb\n\nccc")
    local r = assert(lines.open(dir .. "/f", { chunk = 2 }))
    local got = collect(r)
    r:close()
    assert.same({ { "a", 1, 0 }, { "bb", 2, 3 }, { "", 3, 6 }, { "ccc", 4, 7 } }, got)
  end)

  for _, tool in ipairs { { "gzip", "gzip" }, { "zstd", "zstd -q --rm" } } do
    it("reads " .. tool[1] .. " input detected by its magic bytes, whatever the file name", function()
      local dir = S.tmpdir()
      local t = {}
      for i = 1, 5000 do t[i] = '{"i":' .. i .. '}' end
      S.write(dir .. "/data.txt", table.concat(t, "\n") .. "\n")
      assert(os.execute(tool[2] .. " " .. S.q(dir .. "/data.txt")))
      local compressed = S.listdir(dir)[1]
      os.rename(dir .. "/" .. compressed, dir .. "/plain-name.ndjson")
      local r = assert(lines.open(dir .. "/plain-name.ndjson", { chunk = 1000 }))
      assert.equal(tool[1], r.compression)
      local got = collect(r)
      assert.is_nil(r.error)
      assert.equal(5000, #got)
      assert.equal('{"i":4321}', got[4321][1])
      assert.equal(4321, got[4321][2])
    end)
  end

  it("stops with an error naming the offset on a truncated gzip file", function()
    local dir = S.tmpdir()
    local t = {}
    for i = 1, 3000 do t[i] = "line " .. i end
    S.write(dir .. "/f", table.concat(t, "\n"))
    local comp = S.sh("gzip -c " .. S.q(dir .. "/f"))
    S.write(dir .. "/f.gz", comp:sub(1, #comp - 20))
    local r = assert(lines.open(dir .. "/f.gz"))
    collect(r)
    assert.is_not_nil(r.error)
    assert.matches("truncated", tostring(r.error))
  end)

  it("refuses a line longer than max_line instead of buffering it", function()
    local dir = S.tmpdir()
    S.write(dir .. "/f", "ok\n" .. string.rep("z", 5000) .. "\nnext\n")
    local r = assert(lines.open(dir .. "/f", { chunk = 512, max_line = 1024 }))
    local got = collect(r)
    assert.same({ { "ok", 1, 0 } }, got)
    assert.equal(2, r.error.line)
    assert.equal(3, r.error.offset)
  end)

  it("reports a missing file as an error value", function()
    local r, err = lines.open("/nonexistent/espipe-input")
    assert.is_nil(r)
    assert.matches("cannot open", tostring(err))
  end)
end)
