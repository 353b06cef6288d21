-- espipe.pipeline.transform: what a transform may be, and how its results
-- (per document and per batch) are read.
local transform = require "espipe.pipeline.transform"
local espipe = require "espipe"
local S = require "pipeline.support"

describe("transform", function()
  after_each(S.cleanup)

  local function kinds(t, docs)
    local out, errs = t:run_batch(docs, nil, {})
    if not out then return nil, errs end
    local list = {}
    for i = 1, #docs do
      local kind, v = transform.result(out, errs, i)
      list[i] = kind .. (kind == "failed" and (":" .. v) or "")
    end
    return list
  end

  it("reads a per-document function's results: keep, drop, fan-out, raise, no value", function()
    local t = transform.new(function(doc)
      if doc.n == 1 then return doc end
      if doc.n == 2 then return nil end
      if doc.n == 3 then return espipe.many { { a = 1 }, { a = 2 } } end
      if doc.n == 4 then error("boom", 0) end
    end)
    assert.equal("keep", (t:one({ n = 1 })))
    assert.equal("drop", (t:one({ n = 2 })))
    local kind, v = t:one({ n = 3 })
    assert.equal("many", kind)
    assert.equal(2, #v)
    assert.same({ "failed", "boom" }, { t:one({ n = 4 }) })
    local fk, err = t:one({ n = 5 }, { _index = "i", _id = "7" })
    assert.equal("fatal", fk)
    assert.matches("returned no value for document i/7", tostring(err), 1, true)
  end)

  it("reads a batch's results in order, errs[i] dead-lettering document i", function()
    local t = transform.new { size = 10, batch = function(docs)
      local out, errs = {}, {}
      for i, d in ipairs(docs) do
        if d.n == 2 then out[i] = nil
        elseif d.n == 3 then errs[i] = "no lookup"
        elseif d.n == 4 then out[i] = espipe.many { d, d }
        else out[i] = d end
      end
      return out, errs
    end }
    assert.equal(10, t.size)
    assert.same({ "keep", "drop", "failed:no lookup", "many", "keep" },
      kinds(t, { { n = 1 }, { n = 2 }, { n = 3 }, { n = 4 }, { n = 5 } }))
  end)

  it("a batch that raises dead-letters each of its documents with the error", function()
    local t = transform.new { batch = function() error("lookup service down", 0) end }
    assert.same({ "failed:lookup service down", "failed:lookup service down" }, kinds(t, { {}, {} }))
  end)

  it("stops the job when a batch returns nothing, a non-table, or more results than documents", function()
    local function err_of(fn)
      local list, err = kinds(transform.new { batch = fn }, { {}, {} })
      assert.is_nil(list)
      return tostring(err)
    end
    assert.matches("returned no value", err_of(function() end), 1, true)
    assert.matches("must return a table of results", err_of(function() return "x" end), 1, true)
    assert.matches("must return a table of results", err_of(function(docs) return espipe.many(docs) end), 1, true)
    assert.matches("past its 2 documents", err_of(function() return { 1, 2, 3 } end), 1, true)
    assert.matches("second result must be a table", err_of(function() return {}, "oops" end), 1, true)
  end)

  it("blames the caller for a wrong argument, not the library", function()
    local ok, err = pcall(function() transform.new(42) end)
    assert.is_false(ok)
    assert.matches("transform_spec.lua:%d+: transform: expected a function", err)
  end)

  it("takes the older { transform = fn } form", function()
    local t = transform.new { transform = function(d) return d end }
    assert.is_function(t.fn)
    assert.is_nil(t.batch)
  end)

  it("rejects what is not a transform as a wrong argument", function()
    assert.has_error(function() transform.new(42) end)
    assert.has_error(function() transform.new { batch = function() end, sise = 5 } end,
      "transform: unknown option 'sise' (did you mean 'size'?)")
    assert.has_error(function() transform.new { batch = function() end, size = 0 } end)
    assert.has_error(function() transform.new { batch = function() end, cache = "big" } end)
    assert.has_error(function() transform.new { batch = function() end, concurrency = 0 } end)
    assert.has_error(function() transform.new { transform = function() end, batch = function() end } end)
  end)

  it("loads a file; a syntax error names the file and line", function()
    local dir = S.tmpdir()
    S.write(dir .. "/ok.lua", "return { batch = function(docs) return docs end, size = 3 }")
    local t = assert(transform.load(dir .. "/ok.lua"))
    assert.equal(3, t.size)
    S.write(dir .. "/bad.lua", "return function(doc)\n  return doc +\nend\n")
    local none, err = transform.load(dir .. "/bad.lua")
    assert.is_nil(none)
    assert.matches(dir .. "/bad.lua:3:", tostring(err), 1, true)
    S.write(dir .. "/num.lua", "return 5")
    none, err = transform.load(dir .. "/num.lua")
    assert.is_nil(none)
    assert.matches(dir .. "/num.lua: transform: expected a function", tostring(err), 1, true)
  end)

  it("moves a document's _id, _index and _routing into the metadata", function()
    local doc = { _id = "x", _index = "i", _routing = "r", a = 1 }
    local meta = transform.take_meta(doc, { _id = "old" })
    assert.same({ _id = "x", _index = "i", routing = "r" }, meta)
    assert.same({ a = 1 }, doc)
  end)
end)
