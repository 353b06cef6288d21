-- espipe load's C line path against its Lua path (load.c_lines = false),
-- same generated corpus, same dev server: the same documents under the same
-- indices and ids, the same bad lines (line, byte, reason, raw bytes), the
-- same counts, and with on_bad_line = "stop" the same first failure.
local json = require "espipe.json"
local load = require "espipe.pipeline.load"
local corpus = require "pipeline.load_corpus"
local S = require "pipeline.support"
local J = require "pipeline.jobs"

local COUNTS = { "read", "bad_lines", "added", "ok", "failed", "unsent", "created" }

describe("espipe load, C line path vs Lua path #server", function()
  local env = require("pipeline.load_env").new()
  setup(env.start) teardown(env.stop) before_each(env.fresh)

  local function run(c_lines, prefix, input, extra)
    load.c_lines = c_lines
    local opts = { client = env.client, input = input, id_field = "id", index_pattern = prefix .. "-{t:%Y.%m}",
                   on_bad_line = "skip", dead_letter = env.dir .. "/" .. prefix .. ".dl", batch_docs = 97 }
    for k, v in pairs(extra or {}) do opts[k] = v end
    local ok, summary, err, partial = pcall(load.run, opts)
    load.c_lines = true
    assert(ok, summary)
    return summary or partial, err
  end

  -- every document of the indices prefix-*, keyed by index (without the prefix) and id
  local function documents(prefix)
    local out = {}
    env.client:refresh { index = prefix .. "-*" }
    for hit in env.client:scan(prefix .. "-*", nil, { size = 500 }) do
      out[hit._index:sub(#prefix + 1) .. "/" .. hit._id] = hit._source
    end
    return out
  end

  local function counts(s)
    local out = {}
    for _, k in ipairs(COUNTS) do out[k] = s[k] end
    return out
  end

  it("indexes the same documents and dead-letters the same bad lines", function()
    local input = env.dir .. "/in.ndjson"
    S.write(input, corpus.text(corpus.lines(4000)))
    local c = run(true, "cc", input)
    local l = run(false, "cl", input)
    assert.same(counts(l), counts(c))
    assert.is_true(c.ok > 2000 and c.bad_lines > 200, json.encode(counts(c)))
    assert.equal(S.read(env.dir .. "/cl.dl.input"), S.read(env.dir .. "/cc.dl.input"))
    local cd, ld = documents("cc"), documents("cl")
    assert.same(ld, cd)
    assert.is_not_nil(next(cd))
  end)

  it("stops at the same bad line, having indexed the same lines before it", function()
    local input = env.dir .. "/in.ndjson"
    local lines = {}
    for i = 1, 1500 do lines[i] = ('{"id":"d%d","t":"2024-%02d-01"}'):format(i, i % 12 + 1) end
    lines[1234] = '{"id":"bad","t":"2024-01-01",}'
    S.write(input, table.concat(lines, "\n") .. "\n")
    local c, cerr = run(true, "sc", input, { on_bad_line = "stop" })
    local l, lerr = run(false, "sl", input, { on_bad_line = "stop" })
    assert.same(counts(l), counts(c))
    assert.equal(1233, c.ok)
    assert.equal(tostring(lerr), tostring(cerr))
    assert.matches("line 1234, byte", tostring(cerr), 1, true)
    assert.same(documents("sl"), documents("sc"))
  end)

  it("loads through the espipe command the same, plain and with --id-field", function()
    local input = env.dir .. "/plain.ndjson"
    S.write(input, '{"id":"x1","v":1}\n\n{"id":2,"v":"\\u00e9"}\r\n  {"id":"x3"}\t\n')
    local code, _, err = J.espipe("load " .. S.q(input) .. " --index p1 --quiet --url " .. env.server.url)
    assert.equal(0, code, err)
    assert.equal(3, env.count("p1"))
    code, _, err = J.espipe("load " .. S.q(input) .. " --index p2 --id-field id --quiet --url " .. env.server.url)
    assert.equal(0, code, err)
    local docs = J.dump(env.client, "p2")
    assert.same({ id = "x1", v = 1 }, docs.x1)
    assert.same({ id = 2, v = "é" }, docs["2"])
    assert.same({ id = "x3" }, docs.x3)
  end)

  it("makes an empty or fractional id and a carriage return inside a line bad lines, not a failed job", function()
    local input = env.dir .. "/odd.ndjson"
    S.write(input, '{"id":"a","t":1}\n{"id":"","t":1}\n{"id":1.5,"t":1}\n{"id":"b",\r"t":1}\n{"id":"c","t":1}\n')
    for _, c_lines in ipairs { true, false } do
      local prefix = c_lines and "oc" or "ol"
      local s = run(c_lines, prefix, input)
      assert.same({ 2, 3 }, { s.ok, s.bad_lines })
      local text = S.read(env.dir .. "/" .. prefix .. ".dl.input")
      assert.matches('"error":"empty id field id"', text, 1, true)
      assert.matches('"error":"id field id is a number but not an integer: 1.5"', text, 1, true)
      assert.matches('"error":"carriage return (\\\\r) inside the line at byte 11"', text, 1, true)
    end
  end)
end)
