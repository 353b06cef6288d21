-- What a person reads at the end of a job, and when it could not run: the
-- summary block, the replay command, one-line errors without the usage, and
-- the exit codes README documents.
local devserver = require "support.devserver"
local http = require "support.http"
local json = require "espipe.json"
local S = require "pipeline.support"
local C = require "cli.support"

describe("espipe summaries and errors #server", function()
  local server, dir
  setup(function() server = devserver.start {} end)
  teardown(function()
    if server then server.stop() end
    S.cleanup()
  end)
  before_each(function() dir = S.tmpdir() end)

  local function espipe(args) return C.espipe_in(dir, args) end

  local function docs(path, n, bad_every)
    local f = assert(io.open(path, "wb"))
    for i = 1, n do
      local v = (bad_every and i % bad_every == 0) and '"not a number"' or tostring(i)
      f:write('{"n":', v, '}\n')
    end
    f:close()
  end

  it("a load with rejected documents: the block names the dead letter and the command that replays it", function()
    assert.equal(200, (http.json("PUT", server.url .. "/typed", { mappings = { properties = { n = { type = "long" } } } })))
    docs(dir .. "/in.ndjson", 500, 100)
    local code, out, err = espipe("load in.ndjson --index typed --url " .. server.url)
    assert.equal(1, code, err)
    assert.equal("", out)
    assert.matches("\nespipe load: done\n  indexed +495\n", "\n" .. err:gsub("^[^\n]*\n", ""))
    assert.matches("\n  failed +5\n", err)
    assert.matches("\n  per index +typed  500\n", err)
    assert.matches("\n  dead letter +espipe%-deadletter%.ndjson\n", err)
    assert.matches("\n  next +espipe load %-%-format deadletter espipe%-deadletter%.ndjson %-%-url "
      .. server.url:gsub("%p", "%%%0") .. "   %(to replay%)\n", err)
    assert.is_nil(err:find("usage:", 1, true))
  end)

  it("a clean load says nothing about a dead letter; --json keeps the documented keys on stdout", function()
    docs(dir .. "/in.ndjson", 300)
    local code, out, err = espipe("load in.ndjson --index clean --json --url " .. server.url)
    assert.equal(0, code, err)
    assert.is_nil(err:find("dead letter", 1, true))
    local s = json.decode(out)
    for _, k in ipairs { "read", "added", "ok", "created", "updated", "failed", "retried", "bytes", "elapsed" } do
      assert.is_number(s[k], k)
    end
    assert.equal(300, s.ok)
    assert.equal(300, s.per_index.clean)
  end)

  it("a runtime error is one line, once, without the usage (exit 2)", function()
    local code, out, err = espipe("load missing.ndjson --index x --url " .. server.url)
    assert.equal(2, code)
    assert.equal("", out)
    assert.equal("espipe load: cannot open missing.ndjson: missing.ndjson: No such file or directory\n", err)
  end)

  it("a usage error gets the usage", function()
    local code, _, err = espipe("load in.ndjson --index x --op upsert")
    assert.equal(2, code)
    assert.matches("^espipe load: %-%-op must be index or create\nusage: espipe load ", err)
  end)

  it("a transform with a syntax error: its file, line and Lua's message (exit 2)", function()
    S.write(dir .. "/t.lua", "return function(doc)\n  doc.x = = 1\n  return doc\nend\n")
    local code, _, err = espipe("reindex a b --source-url " .. server.url .. " --transform t.lua")
    assert.equal(2, code)
    assert.equal("espipe reindex: transform t.lua:2: unexpected symbol near '='\n", err)
  end)
end)
