-- The NDJSON and CSV sinks of an export, fed pages as the scan gives them,
-- writing to a writer that records what it is given.
local ndjson_sink = require "espipe.pipeline.export.ndjson_sink"
local csv_sink = require "espipe.pipeline.export.csv_sink"
local json = require "espipe.json"

local function recorder()
  local w = { texts = {}, rows = 0 }
  function w.write(self, text, rows)
    self.texts[#self.texts + 1] = text
    self.rows = self.rows + rows
    return true
  end
  return w
end

local function page(...) return { hits = { ... } } end

describe("export sinks", function()
  it("ndjson passes raw _source bytes through and cuts decoded ones to the fields", function()
    local raw = ndjson_sink.new { opts = {} }
    assert.is_true(raw.scan.raw_source)
    local w = recorder()
    raw:start(w)
    assert.equal(2, raw:page(page({ _source = '{"a":1}' }, { _source = '{"b":2}' })))
    assert.same({ '{"a":1}\n{"b":2}\n' }, w.texts)

    local picked = ndjson_sink.new { opts = { fields = { "a.b", "c" } } }
    assert.is_false(picked.scan.raw_source)
    w = recorder()
    picked:start(w)
    assert.equal(1, picked:page(page { _source = { a = { b = 1, x = 2 }, c = "y", d = 3 } }))
    assert.same({ ["a.b"] = 1, c = "y" }, json.decode(w.texts[1]))
    assert.equal("\n", w.texts[1]:sub(-1))
    assert.equal(0, picked:page(page()))
    assert.equal(1, #w.texts)
  end)

  it("csv takes its columns from the first page and counts values outside them", function()
    local sink = csv_sink.new { opts = {} }
    local w = recorder()
    sink:start(w)
    assert.equal(1, sink:page(page { _id = "1", _source = { b = 2, a = { x = 1 } } }))
    assert.equal(1, sink:page(page { _id = "2", _source = { a = { x = 3 }, z = true } }))
    assert.equal("_id,a.x,b\r\n", sink:header():gsub("\r?\n$", "\r\n"))
    local extra, state = {}, {}
    sink:manifest(extra)
    sink:checkpoint(state)
    assert.same({ "a.x", "b" }, extra.columns)
    assert.same({ z = 1 }, extra.dropped_columns)
    assert.same({ "a.x", "b" }, state.columns)
    assert.equal(2, w.rows)
  end)

  it("csv resumes with the columns of the earlier run", function()
    local sink = csv_sink.new { opts = {} }
    sink:start(recorder(), { columns = { "k" } })
    sink:page(page { _id = "1", _source = { k = 1, other = 2 } })
    local extra = {}
    sink:manifest(extra)
    assert.same({ "k" }, extra.columns)
  end)
end)
