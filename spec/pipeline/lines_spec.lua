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

  describe("skip_to (a resume from a checkpoint)", function()
    local function data(dir)
      local t = {}
      for i = 1, 3000 do t[i] = '{"i":' .. i .. '}' end
      S.write(dir .. "/f", table.concat(t, "\n") .. "\n")
    end
    -- the byte offset of line n (1-based) in data's file
    local function offset_of(n)
      local at = 0
      for i = 1, n - 1 do at = at + #('{"i":' .. i .. '}') + 1 end
      return at
    end

    for _, case in ipairs { { "plain", nil }, { "gzip", "gzip" }, { "zstd", "zstd -q --rm" } } do
      it("reads on from a line start of " .. case[1] .. " input, numbering on", function()
        local dir = S.tmpdir()
        data(dir)
        local path = dir .. "/f"
        if case[2] then
          assert(os.execute(case[2] .. " " .. S.q(path)))
          path = dir .. "/" .. S.listdir(dir)[1]
        end
        for _, n in ipairs { 2, 150, 2999 } do
          local r = assert(lines.open(path, { chunk = 700 }))
          assert.is_true(r:skip_to(offset_of(n), n - 1))
          local line, lineno, at = r:next()
          assert.same({ '{"i":' .. n .. '}', n, offset_of(n) }, { line, lineno, at })
          r:close()
        end
      end)
    end

    it("refuses a position that is not a line start, or past the end", function()
      local dir = S.tmpdir()
      data(dir)
      for _, chunk in ipairs { 700, 65536 } do
        local r = assert(lines.open(dir .. "/f", { chunk = chunk }))
        local ok, err = r:skip_to(offset_of(1000) + 3, 999)
        assert.is_nil(ok)
        assert.matches("cannot resume at byte " .. (offset_of(1000) + 3) .. ": it is not the start of a line", tostring(err), 1, true)
        r:close()
        r = assert(lines.open(dir .. "/f", { chunk = chunk }))
        ok, err = r:skip_to(offset_of(3000) + 100000, 3000)
        assert.is_nil(ok)
        assert.matches("the input ends before it", tostring(err), 1, true)
        r:close()
      end
    end)
  end)

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

  it("reports a line longer than max_line with its number and reads on after it", function()
    local dir = S.tmpdir()
    local long = string.rep("z", 5000)
    S.write(dir .. "/f", "ok\n" .. long .. "\nnext\n" .. long .. "x")
    local r = assert(lines.open(dir .. "/f", { chunk = 512, max_line = 1024 }))
    local got, errs = {}, {}
    for line, n, at, err in r:iter() do
      got[#got + 1] = { line, n, at }
      if err then errs[#errs + 1] = err end
    end
    assert.is_nil(r.error)
    assert.same({ { "ok", 1, 0 }, { false, 2, 3 }, { "next", 3, 5004 }, { false, 4, 5009 } }, got)
    assert.equal(2, errs[1].line)
    assert.equal(3, errs[1].offset)
    assert.matches("longer than 1024 bytes", tostring(errs[1]))
  end)

  -- What the reader holds while it reads: live memory after a full
  -- collection at each read of the input.
  local function watch_live(r, each)
    local more = r.more
    r.more = function(self)
      local s = more(self)
      collectgarbage("collect")
      each(collectgarbage("count") * 1024)
      return s
    end
  end

  it("skips an over-long line without holding it: live memory stays near max_line + chunk", function()
    local dir = S.tmpdir()
    S.write(dir .. "/f", string.rep("y", 500000) .. "\nafter\n")
    local r = assert(lines.open(dir .. "/f", { chunk = 1000, max_line = 10000 }))
    collectgarbage("collect")
    local base, peak = collectgarbage("count") * 1024, 0
    watch_live(r, function(live) peak = math.max(peak, live - base) end)
    assert.is_false((r:next()))
    assert.equal("after", r:next())
    assert.is_true(peak < 100000, "held " .. peak .. " bytes")
  end)

  -- Linear, not quadratic: the bytes the reader allocates to read one long
  -- line (counted with the collector stopped, so nothing is freed and the
  -- count is exact) stay a small multiple of the line, and doubling the line
  -- doubles them. A reader that re-copies its buffer per chunk allocates
  -- line^2 / (2 * chunk): it is stopped as soon as it passes the bound.
  it("reads one 30 MB line and one 60 MB line in linear time (bytes allocated)", function()
    local dir = S.tmpdir()
    local function allocated(mb)
      local path = dir .. "/line" .. mb
      local size = mb * 1024 * 1024
      local f = assert(io.open(path, "wb"))
      local piece = string.rep("v", 1024 * 1024)
      for _ = 1, mb do f:write(piece) end
      f:write("\nnext\n")
      f:close()
      local r = assert(lines.open(path))
      collectgarbage("collect")
      collectgarbage("stop")
      local base = collectgarbage("count") * 1024
      local more = r.more
      r.more = function(self)
        local used = collectgarbage("count") * 1024 - base
        if used > 4 * size then
          collectgarbage("restart")
          error(string.format("%.0f MB allocated before the end of a %d MB line", used / 1048576, mb), 2)
        end
        return more(self)
      end
      local line = r:next()
      local used = collectgarbage("count") * 1024 - base
      collectgarbage("restart")
      assert.equal(size, #line)
      assert.equal("next", r:next())
      r:close()
      os.remove(path)
      line = nil -- luacheck: ignore 311
      collectgarbage("collect")
      return used
    end
    local a30, a60 = allocated(30), allocated(60)
    assert.is_true(a60 <= 2.5 * a30, string.format("30 MB line: %.0f MB allocated, 60 MB line: %.0f MB", a30 / 1048576, a60 / 1048576))
  end)

  it("reports a missing file as an error value", function()
    local r, err = lines.open("/nonexistent/espipe-input")
    assert.is_nil(r)
    assert.matches("cannot open", tostring(err))
  end)

  it("lets a consumer take whole lines off its buffer, then numbers the next ones after them", function()
    local path = S.tmpdir() .. "/in"
    S.write(path, "aa\nbbb\ncc\ndd")
    local r = assert(lines.open(path, { chunk = 9 }))
    local buf, pos = r:buffered()
    assert.same({ "aa\nbbb\ncc", 1 }, { buf, pos })
    r:consumed(8, 2)    -- "aa\n" and "bbb\n"
    assert.same({ "cc", 3, 7 }, { r:next() })
    assert.same({ "dd", 4, 10 }, { r:next() })
    assert.is_nil(r:next())
    r:close()
  end)
end)
