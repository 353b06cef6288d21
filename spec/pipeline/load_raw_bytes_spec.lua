-- The C helpers load keeps bad lines with: where UTF-8 breaks, and base64
-- (checked against RFC 4648's vectors and the system's base64 command).
local core = require "espipe.core"
local S = require "pipeline.support"

describe("load's raw-bytes helpers", function()
  after_each(S.cleanup)

  it("encodes RFC 4648's test vectors", function()
    local vectors = { [""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==",
                      fooba = "Zm9vYmE=", foobar = "Zm9vYmFy" }
    for plain, encoded in pairs(vectors) do assert.equal(encoded, core.base64_encode(plain)) end
  end)

  it("encodes every byte value as base64(1) does", function()
    local dir = S.tmpdir()
    local t = {}
    for i = 0, 255 do t[#t + 1] = string.char(i) end
    local bytes = table.concat(t) .. table.concat(t):reverse() .. "\0\255"
    S.write(dir .. "/b", bytes)
    assert.equal(S.sh("base64 -w0 " .. S.q(dir .. "/b")), core.base64_encode(bytes))
  end)

  it("finds the first byte where UTF-8 (RFC 3629) breaks", function()
    assert.is_nil(core.utf8_invalid(""))
    assert.is_nil(core.utf8_invalid("plain ascii"))
    assert.is_nil(core.utf8_invalid("caf\195\169 \226\130\172 \240\159\152\128")) -- é € 😀
    assert.equal(4, core.utf8_invalid("abc\255def"))
    assert.equal(2, core.utf8_invalid("a\192\128"))          -- overlong NUL
    assert.equal(1, core.utf8_invalid("\237\160\128"))       -- a UTF-16 surrogate
    assert.equal(1, core.utf8_invalid("\244\144\128\128"))   -- above U+10FFFF
    assert.equal(4, core.utf8_invalid("caf\195"))            -- cut after its lead byte
  end)
end)
