-- espipe load against the dev server: formats, ids, month indices, bad
-- lines with their line numbers, gzip input, dead-letter replay.
local json = require "espipe.json"
local S = require "pipeline.support"
local J = require "pipeline.jobs"

describe("espipe load #server", function()
  local env = require("pipeline.load_env").new()
  setup(env.start) teardown(env.stop) before_each(env.fresh)
  local server, client, dir
  before_each(function() server, client, dir = env.server, env.client, env.dir end)

  local count = env.count

  it("loads NDJSON with ids from a field, gzip-compressed, exactly as written", function()
    J.write_docs(dir .. "/docs.ndjson", 1200)
    assert.equal(0, J.exec("gzip " .. S.q(dir .. "/docs.ndjson")))
    local code, _, err = J.espipe("load " .. S.q(dir .. "/docs.ndjson.gz") .. " --index plain --id-field id --quiet --url " .. server.url)
    assert.equal(0, code, err)
    local docs, n = J.dump(client, "plain")
    assert.equal(1200, n)
    local d = docs["doc-777"]
    assert.equal(777, d.n)
    assert.equal("café 777", d.text)
    assert.equal(json.null, d.nothing)
    assert.is_true(json.is_array(d.tags))
    if math.type then assert.equal(9007199254740993, d.big) end
  end)

  it("routes documents to month indices from a date field", function()
    S.write(dir .. "/m.ndjson", '{"t":"2024-01-31T23:59:59Z"}\n{"t":"2024-02-01T00:00:00Z"}\n{"t":1709251200000}\n')
    local code, _, err = J.espipe("load " .. S.q(dir .. "/m.ndjson") .. " --index-pattern 'month-{t:%Y.%m}' --quiet --url " .. server.url)
    assert.equal(0, code, err)
    assert.equal(1, count("month-2024.01"))
    assert.equal(1, count("month-2024.02"))
    assert.equal(1, count("month-2024.03"))
  end)

  it("stops at a bad line naming its number, after flushing the lines before it", function()
    S.write(dir .. "/bad.ndjson", '{"a":1}\n{"a":2}\n\n{"a":3\n{"a":4}\n')
    local code, _, err = J.espipe("load " .. S.q(dir .. "/bad.ndjson") .. " --index stopper --strict --quiet --url " .. server.url
      .. " --dead-letter " .. S.q(dir .. "/dl"))
    assert.equal(1, code)
    assert.matches("line 4", err)
    assert.equal(2, count("stopper"))
  end)

  it("skips bad lines into the dead letter with their line numbers and exits non-zero", function()
    S.write(dir .. "/bad.ndjson", '{"a":1}\nnot json\n{"a":3}\n[1,2]\n{"a":5}\n')
    local code, _, err = J.espipe("load " .. S.q(dir .. "/bad.ndjson") .. " --index skipper --on-bad-line skip --quiet --url "
      .. server.url .. " --dead-letter " .. S.q(dir .. "/dl"))
    assert.equal(1, code)
    assert.matches("dead%-lettered", err)
    assert.matches(dir .. "/dl.input", err, 1, true)
    assert.equal(3, count("skipper"))
    local lines = {}
    for l in S.read(dir .. "/dl.input"):gmatch("[^\n]+") do lines[#lines + 1] = json.decode(l) end
    assert.equal(2, #lines)
    assert.equal(2, lines[1].line)
    assert.equal("bm90IGpzb24=", lines[1].raw_base64) -- base64 of "not json"
    assert.equal(4, lines[2].line)
    assert.equal(#'{"a":1}\n' + #"not json\n" + #'{"a":3}\n', lines[2].offset)
  end)

  it("loads CSV with quoted fields and typed cells, then exports them back unchanged", function()
    S.write(dir .. "/in.csv", 'id,name,note,score\n1,"Smith, J","said ""hi""",10\n2,plain,"two\nlines",2.5\n')
    local code, _, err = J.espipe("load " .. S.q(dir .. "/in.csv") .. " --format csv --csv-types --id-field id --index people --quiet --url " .. server.url)
    assert.equal(0, code, err)
    local docs = J.dump(client, "people")
    assert.same({ id = 1, name = "Smith, J", note = 'said "hi"', score = 10 }, docs["1"])
    assert.same({ id = 2, name = "plain", note = "two\nlines", score = 2.5 }, docs["2"])
    code, _, err = J.espipe("export " .. server.url .. "/people --to " .. S.q(dir .. "/out.csv") .. " --format csv --fields name,note --quiet")
    assert.equal(0, code, err)
    local text = S.read(dir .. "/out.csv")
    assert.equal("_id,name,note\n", text:sub(1, 14))
    assert.truthy(text:find('1,"Smith, J","said ""hi"""\n', 1, true))
    assert.truthy(text:find('2,plain,"two\nlines"\n', 1, true))
  end)

  it("loads bulk-format files and replays an indexer dead letter", function()
    S.write(dir .. "/b.ndjson", '{"index":{"_index":"bulkfmt","_id":"x"}}\n{"v":1}\n{"create":{"_index":"bulkfmt","_id":"y"}}\n{"v":2}\n'
      .. '{"delete":{"_index":"bulkfmt","_id":"x"}}\n')
    local code, _, err = J.espipe("load " .. S.q(dir .. "/b.ndjson") .. " --format bulk --quiet --url " .. server.url)
    assert.equal(0, code, err)
    assert.equal(1, count("bulkfmt"))
    -- documents the cluster rejects (strict mapping) land in the dead letter ...
    assert(client.indices:create { index = "strict", mappings = { dynamic = "strict", properties = { a = { type = "long" } } } })
    S.write(dir .. "/s.ndjson", '{"a":1}\n{"b":2}\n{"a":3}\n{"c":4}\n')
    code, _, err = J.espipe("load " .. S.q(dir .. "/s.ndjson") .. " --index strict --quiet --url " .. server.url
      .. " --dead-letter " .. S.q(dir .. "/rejected.ndjson"))
    assert.equal(1, code)
    assert.matches("rejected.ndjson", err, 1, true)
    assert.equal(2, count("strict"))
    -- ... and, once the mapping allows them, replaying it loads exactly those
    assert(client.indices:put_mapping { index = "strict", properties = { b = { type = "long" }, c = { type = "long" } } })
    code, _, err = J.espipe("load " .. S.q(dir .. "/rejected.ndjson") .. " --format deadletter --quiet --url " .. server.url)
    assert.equal(0, code, err)
    assert.equal(4, count("strict"))
  end)
end)
