-- The streaming gzip/zstd codec against the system gzip and zstd tools.
local codec = require "espipe.pipeline.codec"
local S = require "pipeline.support"

local function sample(n)
  local t = {}
  for i = 1, n do t[i] = string.format('{"n":%d,"text":"line %d %s"}\n', i, i, string.rep("x", i % 50)) end
  return table.concat(t)
end

local function decode_all(name, comp, piece, max)
  local d = codec.decoder(name)
  local out = {}
  for i = 1, #comp, piece do
    d:push(comp:sub(i, i + piece - 1))
    while true do
      local s, err, at = d:pull(max)
      if not s then return nil, err, at end
      if s == "" then break end
      assert(#s <= max, "pull returned more than max")
      out[#out + 1] = s
    end
  end
  local ok, err, at = d:finish()
  if not ok then return nil, err, at end
  return table.concat(out)
end

describe("stream codec", function()
  after_each(S.cleanup)

  for _, tool in ipairs { { "gzip", "gzip -c" }, { "zstd", "zstd -q -c" } } do
    local name, cmd = tool[1], tool[2]
    it(name .. " files made by the " .. name .. " tool decode in small pieces", function()
      local dir = S.tmpdir()
      local data = sample(3000)
      S.write(dir .. "/in", data)
      local comp = S.sh(cmd .. " " .. S.q(dir .. "/in"))
      assert.equal(name, codec.detect(comp))
      assert.equal(data, (decode_all(name, comp, 333, 1000)))
    end)

    it(name .. " output of the encoder is read back by the " .. name .. " tool", function()
      local dir = S.tmpdir()
      local data = sample(2000)
      local e = codec.encoder(name)
      local parts = {}
      for i = 1, #data, 4096 do parts[#parts + 1] = e:compress(data:sub(i, i + 4095)) end
      parts[#parts + 1] = e:finish()
      S.write(dir .. "/out", table.concat(parts))
      assert.equal(data, S.sh(name .. " -d -c < " .. S.q(dir .. "/out")))
      assert.has_error(function() e:compress("more") end)
    end)

    it(name .. " reports truncation and corruption with a byte offset", function()
      local dir = S.tmpdir()
      S.write(dir .. "/in", sample(500))
      local comp = S.sh(cmd .. " " .. S.q(dir .. "/in"))
      local out, err, at = decode_all(name, comp:sub(1, #comp - 3), 100, 4096)
      assert.is_nil(out)
      assert.matches("truncated", err)
      assert.is_true(at > 0)
      local bad = comp:sub(1, 40) .. string.rep("\255", 40) .. comp:sub(81)
      out, err = decode_all(name, bad, 100, 4096)
      assert.is_nil(out)
      assert.matches("corrupt " .. name, err)
    end)
  end

  it("gzip with concatenated members decodes as one stream", function()
    local dir = S.tmpdir()
    S.write(dir .. "/a", "first\n")
    S.write(dir .. "/b", "second\n")
    local comp = S.sh("gzip -c " .. S.q(dir .. "/a")) .. S.sh("gzip -c " .. S.q(dir .. "/b"))
    assert.equal("first\nsecond\n", (decode_all("gzip", comp, 7, 3)))
  end)

  it("a small pull limit bounds each output string of a highly compressed input", function()
    local e = codec.encoder("gzip", 9)
    local comp = e:compress(string.rep("a", 4 * 1024 * 1024)) .. e:finish()
    local d = codec.decoder("gzip")
    d:push(comp)
    local total, biggest = 0, 0
    while true do
      local s = assert(d:pull(65536))
      if s == "" then break end
      total, biggest = total + #s, math.max(biggest, #s)
    end
    assert.equal(4 * 1024 * 1024, total)
    assert.equal(65536, biggest)
    assert.is_true(d:finish())
  end)

  it("plain text is not mistaken for compressed input", function()
    assert.is_nil(codec.detect('{"a":1}\n'))
    assert.is_nil(codec.detect(""))
    assert.has_error(function() codec.decoder("lz4") end)
  end)
end)
