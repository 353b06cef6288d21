-- CSV reading and writing per RFC 4180, checked by round trips of awkward
-- values and against Python's csv module as an independent reader.
local csv = require "espipe.pipeline.csv"
local lines = require "espipe.pipeline.lines"
local S = require "pipeline.support"

local function read_all(path)
  local r = assert(lines.open(path, { chunk = 7 }))
  local rows = {}
  while true do
    local fields, err_or_line = csv.read(r)
    if not fields then
      r:close()
      return rows, err_or_line
    end
    rows[#rows + 1] = fields
  end
end

describe("csv", function()
  after_each(S.cleanup)

  local awkward = { "plain", "with,comma", 'say "hi"', "two\nlines", "", " spaced ", '"', "tail," }

  it("round-trips awkward values through encode_row and read", function()
    local dir = S.tmpdir()
    local text = {}
    for i = 1, #awkward do
      text[#text + 1] = csv.encode_row({ awkward[i], tostring(i), awkward[#awkward - i + 1] }, 3)
    end
    S.write(dir .. "/f.csv", table.concat(text))
    local rows, err = read_all(dir .. "/f.csv")
    assert.is_nil(err)
    assert.equal(#awkward, #rows)
    for i = 1, #awkward do
      assert.same({ awkward[i], tostring(i), awkward[#awkward - i + 1] }, rows[i])
    end
  end)

  it("writes what Python's csv module reads back identically", function()
    local dir = S.tmpdir()
    S.write(dir .. "/f.csv", csv.encode_row(awkward, #awkward))
    local out = S.sh("/usr/bin/python3 -c 'import csv,sys,json; print(json.dumps(list(csv.reader(open(sys.argv[1], newline=\"\")))))' "
      .. S.q(dir .. "/f.csv"))
    local expect = {}
    for i, v in ipairs(awkward) do expect[i] = '"' .. v:gsub("\n", "\\n"):gsub('"', '\\"') .. '"' end
    assert.equal("[[" .. table.concat(expect, ", ") .. "]]\n", out)
  end)

  it("reads what Python's csv module writes", function()
    local dir = S.tmpdir()
    S.sh("/usr/bin/python3 -c 'import csv,sys; w=csv.writer(open(sys.argv[1],\"w\",newline=\"\")); "
      .. "w.writerow([\"a,b\",\"q\\\"q\",\"x\\ny\"]); w.writerow([\"1\",\"\",\"3\"])' " .. S.q(dir .. "/p.csv"))
    local rows, err = read_all(dir .. "/p.csv")
    assert.is_nil(err)
    assert.same({ { "a,b", 'q"q', "x\ny" }, { "1", "", "3" } }, rows)
  end)

  it("names the line and field of malformed input", function()
    local dir = S.tmpdir()
    S.write(dir .. "/bad.csv", 'a,b\n1,2\n3,x"y\n')
    local rows, err = read_all(dir .. "/bad.csv")
    assert.equal(2, #rows)
    assert.equal(3, err.line)
    assert.equal("2", err.field)
    S.write(dir .. "/open.csv", 'a,b\n1,"never closed\n2,3\n')
    rows, err = read_all(dir .. "/open.csv")
    assert.equal(1, #rows)
    assert.equal(2, err.line)
    assert.matches("unterminated", tostring(err))
  end)

  it("converts cells with --csv-types rules only when they are JSON numbers or booleans", function()
    assert.equal(42, csv.typed("42"))
    assert.equal(-1.5, csv.typed("-1.5"))
    assert.equal(1e3, csv.typed("1e3"))
    assert.equal(true, csv.typed("true"))
    assert.is_nil(csv.typed(""))
    for _, s in ipairs { "007", "0x10", "+1", "1.", ".5", "12abc", "True" } do
      assert.equal(s, csv.typed(s))
    end
  end)

  it("flattens objects to dotted columns", function()
    local flat = csv.flatten({ a = { b = { c = "x" }, d = "y" }, e = true })
    assert.same({ ["a.b.c"] = "x", ["a.d"] = "y", e = "true" }, flat)
  end)
end)
