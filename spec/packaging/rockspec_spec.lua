-- The rockspec is written by hand; this keeps it in step with the tree: every
-- Lua module and every C source is installed, and nothing listed is missing.
local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function lines_of(cmd)
  local p = assert(io.popen(cmd))
  local out = {}
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  table.sort(out)
  return out
end

local function load_rockspec()
  local env = {}
  local chunk = assert((loadstring or load)(read("espipe-scm-1.rockspec"), "rockspec", "t", env))
  if setfenv then setfenv(chunk, env) end
  chunk()
  return env
end

describe("espipe-scm-1.rockspec", function()
  local spec = load_rockspec()
  local modules = spec.build.modules

  it("installs every Lua module of lua/espipe under its module name", function()
    local expected = {}
    for _, path in ipairs(lines_of("find lua/espipe -name '*.lua'")) do
      local name = path:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
      expected[#expected + 1] = name .. " = " .. path
    end
    table.sort(expected)
    local listed = {}
    for name, src in pairs(modules) do
      if type(src) == "string" then listed[#listed + 1] = name .. " = " .. src end
    end
    table.sort(listed)
    assert.same(expected, listed)
  end)

  it("builds each C module from exactly its sources", function()
    local function c_sources(cmd)
      local list = lines_of(cmd)
      for _, shared in ipairs{ "csrc/base/compat.c", "csrc/base/strbuf.c" } do
        local present = false
        for _, s in ipairs(list) do present = present or s == shared end
        if not present then list[#list + 1] = shared end
      end
      table.sort(list)
      return list
    end
    local function sorted(t) local c = {} for i, v in ipairs(t) do c[i] = v end table.sort(c) return c end
    -- espipe.core is every folder of csrc/ but curl/ and parquet/ (csrc/README.md)
    assert.same(c_sources("find csrc -name '*.c' ! -path 'csrc/curl/*' ! -path 'csrc/parquet/*'"),
      sorted(modules["espipe.core"].sources))
    assert.same(c_sources("ls csrc/curl/*.c"), sorted(modules["espipe.curl_multi"].sources))
    -- the Parquet writer links espipe.json's encoder and decoder (one JSON text and grammar for
    -- both) and the page envelope walker of search/
    assert.same(c_sources("ls csrc/parquet/*.c csrc/json/decoder.c csrc/json/encoder.c csrc/json/number.c"
      .. " csrc/base/utf8.c csrc/search/page_envelope.c csrc/search/page_position.c"),
      sorted(modules["espipe.parquet_writer"].sources))
  end)

  it("installs the espipe command", function()
    assert.equal("bin/espipe", spec.build.install.bin.espipe)
  end)
end)
