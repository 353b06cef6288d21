-- espipe.server.source_filter: _source includes and excludes.
local json = require("espipe.server.json")
local source_filter = require("espipe.server.source_filter")

describe("server source_filter", function()
  local src = [[{"a":1,"b":{"c":2,"d":{"e":3}},"arr":[{"x":1,"y":2},{"x":3}],"ab":4}]]
  local function f(spec)
    local out = source_filter.filter(assert(json.decode(src)), spec)
    if out == nil then return "nil" end
    -- canonical text: sorted keys
    local function canon(v)
      if type(v) ~= "table" or v == json.null then return json.encode(v) end
      if json.is_array(v) or v[1] ~= nil then
        local p = {}
        for i = 1, #v do p[i] = canon(v[i]) end
        return "[" .. table.concat(p, ",") .. "]"
      end
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys)
      local p = {}
      for i, k in ipairs(keys) do p[i] = k .. ":" .. canon(v[k]) end
      return "{" .. table.concat(p, ",") .. "}"
    end
    return canon(out)
  end

  it("handles true, false, a field, a list and includes/excludes with wildcards", function()
    assert.equal("nil", f(false))
    assert.equal('{a:1,ab:4,arr:[{x:1,y:2},{x:3}],b:{c:2,d:{e:3}}}', f(true))
    assert.equal("{a:1}", f("a"))
    assert.equal("{a:1,ab:4,arr:[{x:1,y:2},{x:3}]}", f("a*"))
    assert.equal("{a:1}", f({ "a", "z*" }))
    assert.equal("{b:{c:2,d:{e:3}}}", f({ "b" }))
    assert.equal("{b:{d:{e:3}}}", f({ "b.d.*" }))
    assert.equal("{arr:[{x:1},{x:3}]}", f({ "arr.x" }))
    assert.equal("{a:1,ab:4,arr:[{x:1},{x:3}]}", f({ excludes = { "b", "arr.y" } }))
    assert.equal("{b:{c:2}}", f({ includes = { "b.*" }, excludes = { "b.d" } }))
    assert.equal("{}", f({ "nope" }))
  end)

  it("returns a raw source untouched when no filtering is asked", function()
    local raw = json.raw('{"big":12345678901234567890}')
    assert.equal(raw, source_filter.filter(raw, true))
    assert.equal('{"big":1}', json.encode(source_filter.filter(json.raw('{"big":1,"x":2}'), "big")))
  end)
end)
