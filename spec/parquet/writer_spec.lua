-- The writer's API without a reader: arguments, I/O errors, lifecycle, the
-- memory bound, the file frame, and the date parser.
local parquet = require "espipe.parquet"
local writer = require "espipe.parquet_writer"
local errors = require "espipe.client.errors"
local support = require "parquet.support"

local COLS = { { name = "n", type = "int64" }, { name = "s", type = "string" } }

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function le32(s, i)
  local a, b, c, d = s:byte(i, i + 3)
  return a + b * 256 + c * 65536 + d * 16777216
end

describe("parquet writer API", function()
  it("raises on wrong arguments with a message naming them", function()
    assert.has_error(function() parquet.open(1, COLS) end, "parquet.open: path must be a string, got number")
    assert.has_error(function() parquet.open("x", {}) end, "parquet.open: columns must be a non-empty array")
    assert.has_error(function() writer.open("/nonexistent/x", { { name = "a", type = "int32" } }) end)
    local ok, err = pcall(writer.open, "/nonexistent/x", { { name = "a", type = "int32" } })
    assert.is_false(ok)
    assert.matches("columns%[1%]%.type must be one of", err)
    ok, err = pcall(writer.open, "/nonexistent/x", COLS, { codec = "lz4" })
    assert.is_false(ok)
    assert.matches("option codec must be none, snappy, zstd or gzip, got 'lz4'", err)
    ok, err = pcall(writer.open, "/nonexistent/x", COLS, { codec = "gzip", level = 10 })
    assert.is_false(ok)
    assert.matches("option level 10 is out of range for gzip", err)
    ok, err = pcall(writer.open, "/nonexistent/x", COLS, { row_group_bytes = "big" })
    assert.is_false(ok)
    assert.matches("option row_group_bytes must be a number", err)
  end)

  it("raises when a row is not a table, naming its index", function()
    support.with_file(function(path)
      local w = assert(parquet.open(path, COLS))
      local ok, err = pcall(w.write_rows, w, { { n = 1 }, "oops" })
      assert.is_false(ok)
      assert.matches("rows%[2%] must be a table %(a document%), got string", err)
      assert.are.equal(0, w:rows()) -- the batch was checked before anything was written
      assert(w:close())
    end)
  end)

  it("returns nil and an error object when the file cannot be created", function()
    local w, err = parquet.open("/nonexistent-dir/out.parquet", COLS)
    assert.is_nil(w)
    assert.is_true(errors.is(err))
    assert.are.equal("io", err.kind)
    assert.matches("cannot open /nonexistent%-dir/out%.parquet: No such file or directory", tostring(err))
  end)

  it("returns nil and an error object when the disk is full", function()
    local f = io.open("/dev/full", "wb")
    if not f then return pending("no /dev/full here") end
    f:close()
    local w = assert(parquet.open("/dev/full", COLS, { row_group_bytes = 16 * 1024 }))
    local rows = {}
    for i = 1, 5000 do rows[i] = { n = i, s = "row " .. i } end
    local ok, err = w:write_rows(rows)
    if ok then ok, err = w:close() end
    assert.is_nil(ok)
    assert.is_true(errors.is(err))
    assert.are.equal("io", err.kind)
    assert.matches("No space left on device", tostring(err))
  end)

  it("refuses to be used after close", function()
    support.with_file(function(path)
      local w = assert(parquet.open(path, COLS))
      assert(w:close())
      assert.has_error(function() w:write_rows({}) end)
      local ok, err = pcall(w.close, w)
      assert.is_false(ok)
      assert.matches("closed", err)
    end)
  end)

  it("frees an unclosed writer when it is collected", function()
    support.with_file(function(path)
      local function open_and_drop()
        local w = assert(writer.open(path, COLS))
        w:write_rows({ { n = 1, s = "a" } })
      end
      open_and_drop()
      collectgarbage()
      collectgarbage()
      -- closed without a footer: only the leading magic, never a file that looks complete
      assert.are.equal("PAR1", read_file(path))
    end)
  end)

  it("frames the file: PAR1, the footer length, PAR1; bytes_written is the file size", function()
    support.with_file(function(path)
      local w = assert(parquet.open(path, COLS, { codec = "none" }))
      local rows = {}
      for i = 1, 1000 do rows[i] = { n = i, s = tostring(i) } end
      assert.are.equal(1000, w:write_rows(rows))
      local r = assert(w:close({ extra = "yes" }))
      local s = read_file(path)
      assert.are.equal(#s, r.bytes)
      assert.are.equal("PAR1", s:sub(1, 4))
      assert.are.equal("PAR1", s:sub(-4))
      local footer = le32(s, #s - 7)
      assert.is_true(footer > 0 and footer < #s - 12)
      -- the key/value metadata travels in the footer as plain bytes
      local tail = s:sub(#s - 7 - footer, #s - 8)
      assert.truthy(tail:find("espipe.columns", 1, true))
      assert.truthy(tail:find("extra", 1, true))
      assert.truthy(tail:find("espipe", 1, true))
    end)
  end)

  it("keeps buffered data under row_group_bytes whatever the number of rows", function()
    support.with_file(function(path)
      local limit = 64 * 1024
      local w = assert(parquet.open(path, COLS, { row_group_bytes = limit }))
      local last = 0
      for batch = 1, 40 do
        local rows = {}
        for i = 1, 1000 do rows[i] = { n = batch * 1000 + i, s = "some text of a row " .. i } end
        assert(w:write_rows(rows))
        assert.is_true(w:buffered_bytes() <= limit)
        local now = w:bytes_written()
        assert.is_true(now >= last)
        last = now
      end
      assert.is_true(w:peak_buffered_bytes() <= limit)
      assert.is_true(w:peak_buffered_bytes() > limit / 2)
      local r = assert(w:close())
      assert.are.equal(40000, r.rows)
      assert.is_true(r.row_groups >= 10)
      assert.is_true(r.peak_buffered_bytes <= limit)
    end)
  end)
end)

describe("parquet_writer.parse_date", function()
  -- expected values are well-known epoch constants
  local cases = {
    { "1970-01-01T00:00:00Z", 0 }, { "1970-01-01", 0 }, { "2001-09-09T01:46:40Z", 1000000000000 },
    { "2001-09-09T01:46:40.5Z", 1000000000500 }, { "2001-09-09T01:46:40.123456789Z", 1000000000123 },
    { "2001-09-09T03:46:40+02:00", 1000000000000 }, { "2001-09-09T03:46:40+0200", 1000000000000 },
    { "2001-09-08T23:46:40-02", 1000000000000 }, { "1969-12-31T23:59:59.999Z", -1 },
    { "2024", 1704067200000 }, { "1704067200000", 1704067200000 }, { "-1", -1 },
    { "2000-02-29T00:00:00", 951782400000 }, { "2024-12-31T23:59:59Z", 1735689599000 },
  }
  for _, c in ipairs(cases) do
    it("reads " .. c[1], function()
      assert.are.equal(c[2], writer.parse_date(c[1]))
    end)
  end
  for _, bad in ipairs({ "", "2001-02-29", "2001-13-01", "2001-01-01T24:00", "2001-01-01T10:00:00.Z",
                         "2001-01-01 10:00", "tomorrow", "99999999999999999999", "2001-01-01T10:00:00+19:00",
                         -- the full form, each field out of range or malformed
                         "2001-02-29T00:00:00Z", "2001-00-10T00:00:00Z", "2001-01-32T00:00:00Z",
                         "2001-01-01T24:00:00Z", "2001-01-01T23:60:00Z", "2001-01-01T23:59:60Z",
                         "2001-01-01T10:0a:00Z", "20x1-01-01T10:00:00Z", "2001-01-01T10:00:00Zx",
                         "2001-01-01T10:00:00.", "2001-01-01T10:00:00+2" }) do
    it("rejects '" .. bad .. "'", function()
      assert.is_nil(writer.parse_date(bad))
    end)
  end
end)
