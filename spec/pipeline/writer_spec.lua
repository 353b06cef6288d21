-- Export files: rotation by size, temporary names until complete, manifest.
local writer = require "espipe.pipeline.writer"
local json = require "espipe.json"
local S = require "pipeline.support"

describe("writer", function()
  after_each(S.cleanup)

  it("rotates files by size, names them part-NNNNN, and lists them in manifest.json", function()
    local dir = S.tmpdir() .. "/out"
    local w = writer.new { dir = dir, format = "ndjson", file_bytes = 1000 }
    local all = {}
    for i = 1, 200 do
      local line = json.encode { n = i, pad = string.rep("p", 20) } .. "\n"
      all[#all + 1] = line
      assert(w:write(line, 1))
      -- while a file is open only its hidden in-progress name exists
      for _, name in ipairs(S.listdir(dir)) do
        assert.is_true(name:find("^part%-%d+%.ndjson$") ~= nil or name:find("^%.part%-%d+%.ndjson%.inprogress$") ~= nil)
      end
    end
    local m = assert(w:close({ source = "http://x/i" }))
    local names = S.listdir(dir)
    assert.equal("manifest.json", names[1])
    assert.equal(#m.files + 1, #names)
    assert.is_true(#m.files > 3)
    local disk = json.decode(S.read(dir .. "/manifest.json"))
    assert.equal(200, disk.rows)
    assert.equal("http://x/i", disk.source)
    local joined, rows = {}, 0
    for i, f in ipairs(disk.files) do
      assert.equal(string.format("part-%05d.ndjson", i - 1), f.name)
      local body = S.read(dir .. "/" .. f.name)
      assert.equal(#body, f.bytes)
      local _, count = body:gsub("\n", "")
      assert.equal(count, f.rows)
      rows = rows + count
      joined[#joined + 1] = body
      if i < #disk.files then assert.is_true(f.bytes >= 1000) end
    end
    assert.equal(200, rows)
    assert.equal(table.concat(all), table.concat(joined))
  end)

  it("compresses each file so that gzip -d reads it, with .gz names", function()
    local dir = S.tmpdir()
    local w = writer.new { dir = dir, format = "csv", ext = "csv", file_bytes = 300, compress = "gzip",
      header = function() return "a,b\n" end }
    for i = 1, 100 do assert(w:write(i .. ",x" .. i .. "\n", 1)) end
    local m = assert(w:close())
    local rows = 0
    for _, f in ipairs(m.files) do
      assert.matches("^part%-%d+%.csv%.gz$", f.name)
      local text = S.sh("gzip -dc " .. S.q(dir .. "/" .. f.name))
      assert.equal("a,b\n", text:sub(1, 4))
      local _, n = text:gsub("\n", "")
      assert.equal(f.rows + 1, n)
      rows = rows + f.rows
    end
    assert.equal(100, rows)
  end)

  it("abort leaves no partial file behind", function()
    local dir = S.tmpdir()
    local w = writer.new { dir = dir, file_bytes = 1e9 }
    assert(w:write("{}\n", 1))
    w:abort()
    assert.same({}, S.listdir(dir))
  end)
end)
