-- espipe.bulk: NDJSON _bulk bodies built in C. Lines are read back with
-- Debian's lua-cjson (a decoder written by others) wherever the exact bytes
-- are not the point.
local bulk = require "espipe.bulk"
local core = require "espipe.core"
local cjson = require "cjson"

local function lines(body)
  local t = {}
  for line in body:gmatch("([^\n]*)\n") do t[#t + 1] = line end
  return t
end

-- Runs f, which must raise matching pattern, and checks b did not change.
local function rejects(b, pattern, f)
  local body, count, bytes = b:body(), #b, b:bytes()
  local ok, err = pcall(f)
  assert.is_false(ok, "expected an error matching " .. pattern)
  assert.matches(pattern, tostring(err))
  assert.are.equal(body, b:body())
  assert.are.equal(count, #b)
  assert.are.equal(bytes, b:bytes())
end

describe("bulk buffer", function()
  it("writes index actions with their table sources, one line each, ending in a newline", function()
    local b = bulk.new()
    b:index({ _index = "logs", _id = "1" }, { msg = "hello", n = 42, tags = { "a", "b" } })
    b:index({ _index = "logs", _id = "2" }, { msg = "world" })
    local body = b:body()
    assert.are.equal("\n", body:sub(-1))
    local l = lines(body)
    assert.are.equal(4, #l)
    assert.are.equal('{"index":{"_index":"logs","_id":"1"}}', l[1])
    assert.are.same({ msg = "hello", n = 42, tags = { "a", "b" } }, cjson.decode(l[2]))
    assert.are.equal('{"index":{"_index":"logs","_id":"2"}}', l[3])
    assert.are.same({ msg = "world" }, cjson.decode(l[4]))
    assert.are.equal(2, #b)
    assert.are.equal(2, b:count())
    assert.are.equal(#body, b:bytes())
  end)

  it("writes every metadata key in a fixed order, strings escaped", function()
    local b = bulk.new()
    b:index({ dynamic_templates = { loc = "geo" }, require_alias = true, pipeline = "p1",
              routing = "u\"1", _id = "a\\b", _index = "idx" }, {})
    b:index({ _id = "7", if_seq_no = 12, if_primary_term = 3 }, {})
    b:index({ _id = "8", version = 5, version_type = "external_gte" }, {})
    b:update({ _id = "9", retry_on_conflict = 4 }, { doc = {} })
    local l = lines(b:body())
    assert.are.equal('{"index":{"_index":"idx","_id":"a\\\\b","routing":"u\\"1","pipeline":"p1",'
      .. '"require_alias":true,"dynamic_templates":{"loc":"geo"}}}', l[1])
    assert.are.equal("{}", l[2])
    assert.are.equal('{"index":{"_id":"7","if_seq_no":12,"if_primary_term":3}}', l[3])
    assert.are.equal('{"index":{"_id":"8","version":5,"version_type":"external_gte"}}', l[5])
    assert.are.equal('{"update":{"_id":"9","retry_on_conflict":4}}', l[7])
    assert.are.same({ index = { _index = "idx", _id = "a\\b", routing = "u\"1", pipeline = "p1",
      require_alias = true, dynamic_templates = { loc = "geo" } } }, cjson.decode(l[1]))
  end)

  it("escapes metadata strings that need it and keeps UTF-8", function()
    local b = bulk.new()
    local id = "tab\there \"quoted\" é 🙂 \1"
    b:create({ _id = id, _index = "ünïcode" }, '{"a":1}')
    local meta = cjson.decode(lines(b:body())[1])
    assert.are.equal(id, meta.create._id)
    assert.are.equal("ünïcode", meta.create._index)
    assert.is_nil(b:body():find("\t", 1, true))
  end)

  it("writes an integer _id or routing as its decimal string", function()
    local b = bulk.new()
    b:index({ _id = 42, routing = -7 }, {})
    b:index({ _id = 2 ^ 53 }, {})
    local l = lines(b:body())
    assert.are.equal('{"index":{"_id":"42","routing":"-7"}}', l[1])
    assert.are.equal('{"index":{"_id":"9007199254740992"}}', l[3])
  end)

  it("accepts no metadata at all for index and create", function()
    local b = bulk.new()
    b:index(nil, { a = 1 }):create(nil, '{"b":2}')
    assert.are.same({ '{"index":{}}', '{"a":1}', '{"create":{}}', '{"b":2}' }, lines(b:body()))
  end)

  it("copies raw JSON sources byte for byte", function()
    local raw = '{"url":"http://x/y","s":"\\u2028 caf\195\169","n":1.0e400,"big":123456789012345678901,"e":[]}'
    local b = bulk.new()
    b:index({ _id = "r" }, raw)
    b:index({ _id = "s" }, "  {}\t")
    local l = lines(b:body())
    assert.are.equal(raw, l[2])
    assert.are.equal("  {}\t", l[4])
  end)

  it("writes an empty plain table as {} and rejects a table that encodes as an array", function()
    local b = bulk.new()
    b:index(nil, {})
    assert.are.equal("{}", lines(b:body())[2])
    rejects(b, "must be a JSON object", function() b:index(nil, { 1, 2, 3 }) end)
    rejects(b, "must be a JSON object", function() b:index(nil, setmetatable({}, core.json_array_mt)) end)
  end)

  it("writes delete actions without a source line", function()
    local b = bulk.new()
    b:delete({ _index = "i", _id = "gone" })
    b:index({ _id = "x" }, '{"k":1}')
    assert.are.same({ '{"delete":{"_index":"i","_id":"gone"}}', '{"index":{"_id":"x"}}', '{"k":1}' },
      lines(b:body()))
    assert.are.equal(2, #b)
  end)

  it("takes the action by name with add", function()
    local b = bulk.new()
    b:add("create", { _id = "1" }, { a = 1 }):add("delete", { _id = "2" }):add("update", { _id = "3" }, '{"doc":{}}')
    assert.are.same({ '{"create":{"_id":"1"}}', '{"a":1}', '{"delete":{"_id":"2"}}',
                      '{"update":{"_id":"3"}}', '{"doc":{}}' }, lines(b:body()))
    rejects(b, "unknown action 'upsert'", function() b:add("upsert", { _id = "1" }, {}) end)
    rejects(b, "action must be", function() b:add(1, { _id = "1" }, {}) end)
  end)
end)

describe("bulk update bodies", function()
  local function body_of(meta, upd)
    local b = bulk.new()
    b:update(meta, upd)
    return lines(b:body())[2]
  end

  it("writes doc with doc_as_upsert and detect_noop", function()
    assert.are.equal('{"doc":{"a":1},"doc_as_upsert":true,"detect_noop":false}',
      body_of({ _id = "1" }, { doc = { a = 1 }, doc_as_upsert = true, detect_noop = false }))
  end)

  it("builds the script object from a string with lang and params", function()
    local line = body_of({ _id = "1" }, { script = "ctx._source.n += params.k", lang = "painless",
                                          params = { k = 2 }, upsert = { n = 0 }, scripted_upsert = true })
    assert.are.equal('{"script":{"source":"ctx._source.n += params.k","lang":"painless","params":{"k":2}},'
      .. '"scripted_upsert":true,"upsert":{"n":0}}', line)
  end)

  it("escapes a script string that needs it and keeps UTF-8", function()
    local line = body_of({ _id = "1" }, { script = 'ctx._source.s = "caf\195\169"\nreturn', lang = "painless" })
    assert.are.equal('{"script":{"source":"ctx._source.s = \\"caf\195\169\\"\\nreturn","lang":"painless"}}', line)
  end)

  it("encodes a script table as given and _source as bool, string or table", function()
    assert.are.same({ script = { id = "stored", params = { x = 1 } }, _source = true },
      cjson.decode(body_of({ _id = "1" }, { script = { id = "stored", params = { x = 1 } }, _source = true })))
    assert.are.same({ doc = { a = 1 }, _source = "a" },
      cjson.decode(body_of({ _id = "1" }, { doc = { a = 1 }, _source = "a" })))
    assert.are.same({ doc = { a = 1 }, _source = { includes = { "a" } } },
      cjson.decode(body_of({ _id = "1" }, { doc = { a = 1 }, _source = { includes = { "a" } } })))
  end)

  it("takes doc and upsert as raw JSON strings, and a whole raw body", function()
    assert.are.equal('{"doc":{"x":[1,2]},"upsert":{"x":[]}}',
      body_of({ _id = "1" }, { doc = '{"x":[1,2]}', upsert = '{"x":[]}' }))
    assert.are.equal('{"script":"ctx.op=\'noop\'"}', body_of({ _id = "1" }, '{"script":"ctx.op=\'noop\'"}'))
  end)

  it("rejects bodies Elasticsearch would reject, leaving the buffer as it was", function()
    local b = bulk.new()
    b:index({ _id = "keep" }, { k = true })
    local cases = {
      { { doc = {}, script = "x" }, "exactly one of doc or script" },
      { { upsert = {} }, "exactly one of doc or script" },
      { { doc = {}, extra = 1 }, "unknown body key 'extra'" },
      { { script = { source = "x" }, params = {} }, "lang and params go with a string script" },
      { { doc = {}, lang = "painless" }, "lang and params go with a string script" },
      { { script = "x", doc_as_upsert = true }, "doc_as_upsert needs doc" },
      { { doc = {}, scripted_upsert = true }, "scripted_upsert needs script" },
      { { doc = "not json" }, "doc is not a JSON object" },
      { { doc = '{"a":\n1}' }, "doc holds a raw newline" },
      { { doc = 5 }, "doc must be a table or a raw JSON object string, got number" },
      { { doc = {}, detect_noop = "yes" }, "detect_noop must be a boolean" },
      { { [1] = "x" }, "body keys must be strings" },
    }
    for _, c in ipairs(cases) do
      rejects(b, c[2], function() b:update({ _id = "1" }, c[1]) end)
    end
    rejects(b, "version/version_type are not supported on updates",
      function() b:update({ _id = "1", version = 2, version_type = "external" }, { doc = {} }) end)
    rejects(b, "dynamic_templates applies to index and create only",
      function() b:update({ _id = "1", dynamic_templates = {} }, { doc = {} }) end)
  end)
end)

describe("bulk input errors", function()
  local b
  before_each(function()
    b = bulk.new()
    b:index({ _index = "i", _id = "first" }, { ok = 1 })
  end)

  it("names an unknown metadata key", function()
    rejects(b, "unknown metadata key '_type'", function() b:index({ _id = "1", _type = "doc" }, {}) end)
    rejects(b, "metadata keys must be strings", function() b:index({ "x" }, {}) end)
    rejects(b, "metadata must be a table, got string", function() b:index("i", {}) end)
  end)

  it("checks metadata value types", function()
    local cases = {
      { { _id = "" }, "_id must not be empty" },
      { { _id = {} }, "_id must be a non%-empty string or an integer, got table" },
      { { _id = 1.5 }, "_id must be a non%-empty string or an integer, got a non%-integer number" },
      { { _index = 3 }, "_index must be a non%-empty string, got number" },
      { { _index = "" }, "_index must be a non%-empty string, got an empty string" },
      { { if_seq_no = 1.5, if_primary_term = 1 }, "if_seq_no must be a non%-negative integer" },
      { { if_seq_no = "3", if_primary_term = 1 }, "if_seq_no must be a non%-negative integer, got string" },
      { { if_seq_no = -1, if_primary_term = 1 }, "if_seq_no must be a non%-negative integer" },
      { { if_seq_no = 1, if_primary_term = 0 }, "if_primary_term must be a positive integer" },
      { { if_seq_no = 1 }, "if_seq_no and if_primary_term must be given together" },
      { { require_alias = "yes" }, "require_alias must be a boolean" },
      { { dynamic_templates = "geo" }, "dynamic_templates must be a table" },
      { { version = 3 }, "version needs version_type external" },
      { { version = 3, version_type = "internal" }, "internal versioning cannot be used" },
      { { version = 3, version_type = "force" }, "version_type must be internal, external" },
      { { version_type = "external" }, "version_type external needs a version" },
      { { version = 1, version_type = "external", if_seq_no = 1, if_primary_term = 1 },
        "version and if_seq_no cannot be combined" },
      { { retry_on_conflict = 3 }, "retry_on_conflict applies to update only" },
    }
    for _, c in ipairs(cases) do
      rejects(b, c[2], function() b:index(c[1], {}) end)
    end
    rejects(b, "create supports only internal versioning",
      function() b:create({ version = 2, version_type = "external" }, {}) end)
  end)

  it("requires _id for update and delete", function()
    rejects(b, "bulk update: _id is required", function() b:update({ _index = "i" }, { doc = {} }) end)
    rejects(b, "bulk delete: _id is required", function() b:delete({ _index = "i" }) end)
    rejects(b, "bulk delete: metadata with _id is required", function() b:delete() end)
    rejects(b, "bulk delete: takes no source", function() b:delete({ _id = "1" }, {}) end)
    rejects(b, "pipeline does not apply to delete", function() b:delete({ _id = "1", pipeline = "p" }) end)
  end)

  it("rejects a source that is neither a table nor a string", function()
    rejects(b, "the source must be a table or a raw JSON string, got number", function() b:index(nil, 5) end)
    rejects(b, "got nil", function() b:create({ _id = "1" }) end)
    rejects(b, "the update body must be a table or a raw JSON string, got boolean",
      function() b:update({ _id = "1" }, true) end)
  end)

  it("names the byte offset of a raw newline or carriage return", function()
    rejects(b, "raw newline %(\\n%) byte at byte offset 7", function() b:index(nil, '{"a":1,\n"b":2}') end)
    rejects(b, "raw carriage return %(\\r%) byte at byte offset 2", function() b:index(nil, '{ \r}') end)
    rejects(b, "empty string", function() b:index(nil, "") end)
    rejects(b, "not a JSON object %(byte offset 0 is '%['%)", function() b:index(nil, "[1]") end)
    rejects(b, "not a JSON object %(byte offset 4 is 'x'%)", function() b:index(nil, '{"a"x') end)
  end)

  it("restores the buffer when the table fails to encode half-way", function()
    local cyclic = { a = 1 }
    cyclic.self = cyclic
    rejects(b, "bulk index: ", function() b:index({ _id = "2" }, { a = 1, f = print }) end)
    rejects(b, "bulk index: ", function() b:index({ _id = "2" }, cyclic) end)
    rejects(b, "bulk index: ", function() b:index({ _id = "2" }, { s = "bad \255 utf8" }) end)
    rejects(b, "bulk index: ", function() b:index({ _id = "bad \255" }, {}) end)
    rejects(b, "bulk update: ", function() b:update({ _id = "2" }, { doc = { a = 1 }, upsert = { f = print } }) end)
    -- the next append lands right after the last good one
    b:index({ _id = "2" }, { two = 2 })
    assert.are.same({ '{"index":{"_index":"i","_id":"first"}}', '{"ok":1}',
                      '{"index":{"_id":"2"}}', '{"two":2}' }, lines(b:body()))
  end)

  it("checks options of bulk.new", function()
    assert.has_error(function() bulk.new("x") end)
    assert.has_error(function() bulk.new { max_depth = 0 } end)
    assert.has_error(function() bulk.new { utf8 = "ignore" } end)
    local shallow = bulk.new { max_depth = 2 }
    shallow:index(nil, { a = { b = 1 } })
    rejects(shallow, "bulk index: ", function() shallow:index(nil, { a = { b = { c = 1 } } }) end)
    local lenient = bulk.new { utf8 = "replace" }
    lenient:index(nil, { s = "x\255y" })
    assert.are.equal('{"s":"x\239\191\189y"}', lines(lenient:body())[2])
  end)
end)

describe("bulk buffer reuse", function()
  it("resets without giving back its memory, and can release it on request", function()
    local b = bulk.new()
    for i = 1, 500 do b:index({ _id = tostring(i) }, { n = i, pad = string.rep("x", 100) }) end
    local body, cap = b:body(), b:capacity()
    assert.is_true(cap >= #body)
    b:reset()
    assert.are.equal(0, #b)
    assert.are.equal(0, b:bytes())
    assert.are.equal("", b:body())
    assert.are.equal(cap, b:capacity())
    for i = 1, 500 do b:index({ _id = tostring(i) }, { n = i, pad = string.rep("x", 100) }) end
    assert.are.equal(body, b:body())
    assert.are.equal(cap, b:capacity())
    b:reset(true)
    assert.are.equal(0, b:capacity())
    b:index(nil, { again = true })
    assert.are.same({ '{"index":{}}', '{"again":true}' }, lines(b:body()))
  end)

  it("is an espipe.bulk userdata", function()
    local b = bulk.new()
    assert.is_true(bulk.is(b))
    assert.is_false(bulk.is({}))
    assert.matches("espipe.bulk %(0 actions, 0 bytes%)", tostring(b))
  end)
end)

describe("bulk items by position", function()
  local b, expect
  before_each(function()
    b = bulk.new()
    expect = {}
    for i = 1, 9 do
      if i % 3 == 0 then
        b:delete({ _id = "d" .. i })
        expect[i] = { '{"delete":{"_id":"d' .. i .. '"}}', nil, "delete" }
      elseif i % 3 == 1 then
        b:index({ _id = "i" .. i }, { n = i })
        expect[i] = { '{"index":{"_id":"i' .. i .. '"}}', '{"n":' .. i .. '}', "index" }
      else
        b:update({ _id = "u" .. i }, { doc = { n = i } })
        expect[i] = { '{"update":{"_id":"u' .. i .. '"}}', '{"doc":{"n":' .. i .. '}}', "update" }
      end
    end
  end)

  local function body_of_items(list)
    local t = {}
    for _, i in ipairs(list) do
      t[#t + 1] = expect[i][1] .. "\n"
      if expect[i][2] then t[#t + 1] = expect[i][2] .. "\n" end
    end
    return table.concat(t)
  end

  it("returns each item's lines and action", function()
    for i = 1, 9 do
      local action, source, op = b:item(i)
      assert.are.equal(expect[i][1], action)
      assert.are.equal(expect[i][2], source)
      assert.are.equal(expect[i][3], op)
    end
    assert.has_error(function() b:item(0) end)
    assert.has_error(function() b:item(10) end)
    assert.has_error(function() b:item("1") end)
  end)

  it("gives each item's byte span in the body", function()
    local body, pos = b:body(), 0
    for i = 1, 9 do
      local off, len = b:span(i)
      assert.are.equal(pos, off)
      assert.are.equal(body_of_items { i }, body:sub(off + 1, off + len))
      pos = off + len
    end
    assert.are.equal(#body, pos)
  end)

  it("slices, splits and picks items into new buffers", function()
    local s = b:slice(2, 5)
    assert.are.equal(4, #s)
    assert.are.equal(body_of_items { 2, 3, 4, 5 }, s:body())
    assert.are.equal(body_of_items { 7 }, b:slice(7, 7):body())
    local first, second = b:split()
    assert.are.equal(body_of_items { 1, 2, 3, 4 }, first:body())
    assert.are.equal(body_of_items { 5, 6, 7, 8, 9 }, second:body())
    assert.are.equal(4, #first)
    assert.are.equal(5, #second)
    local picked = b:subset { 9, 1, 5 }
    assert.are.equal(body_of_items { 9, 1, 5 }, picked:body())
    assert.are.equal(expect[1][2], select(2, picked:item(2)))
    assert.are.equal(0, #b:subset {})
    -- the original is untouched, and the copies are independent buffers
    assert.are.equal(body_of_items { 1, 2, 3, 4, 5, 6, 7, 8, 9 }, b:body())
    first:index(nil, { more = 1 })
    assert.are.equal(5, #first)
    assert.are.equal(9, #b)
    assert.has_error(function() b:slice(5, 4) end)
    assert.has_error(function() b:subset { 1, 10 } end)
    assert.has_error(function() b:slice(1, 5):slice(1, 1):split() end)
  end)

  it("appends items taken from another buffer", function()
    local retry = bulk.new()
    retry:append_from(b, 4):append_from(b, 3)
    assert.are.equal(body_of_items { 4, 3 }, retry:body())
    local action, source, op = retry:item(1)
    assert.are.same(expect[4], { action, source, op })
    assert.has_error(function() retry:append_from(b, 42) end)
    assert.has_error(function() retry:append_from({}, 1) end)
  end)
end)

describe("bulk buffer at scale", function()
  it("keeps count, bytes and every item for a large batch", function()
    local b = bulk.new()
    local n = 5000
    for i = 1, n do
      b:index({ _index = "big", _id = i }, { i = i, s = "doc " .. i, f = i / 4 })
    end
    local body = b:body()
    assert.are.equal(n, #b)
    assert.are.equal(#body, b:bytes())
    local l = lines(body)
    assert.are.equal(2 * n, #l)
    for _, i in ipairs { 1, 2, 777, 4999, 5000 } do
      assert.are.same({ index = { _index = "big", _id = tostring(i) } }, cjson.decode(l[2 * i - 1]))
      assert.are.same({ i = i, s = "doc " .. i, f = i / 4 }, cjson.decode(l[2 * i]))
      local action, source = b:item(i)
      assert.are.equal(l[2 * i - 1], action)
      assert.are.equal(l[2 * i], source)
    end
  end)
end)

describe("espipe.bulk with a doc_type (Elasticsearch 6.x)", function()
  it("writes _type after _index in every action, also in buffers cut from it", function()
    local b = bulk.new { doc_type = "_doc", auto_ids = true }
    b:index({ _index = "i", _id = "1" }, { n = 1 })
    b:delete({ _id = "2" })
    b:update({ _index = "i", _id = "3" }, { doc = { n = 3 } })
    local l = lines(b:body())
    assert.equal('{"index":{"_index":"i","_type":"_doc","_id":"1"}}', l[1])
    assert.equal('{"delete":{"_type":"_doc","_id":"2"}}', l[3])
    assert.equal('{"update":{"_index":"i","_type":"_doc","_id":"3"}}', l[4])
    local _, second = b:split()
    second:index({ _id = "4" }, { n = 4 })
    assert.equal('{"index":{"_type":"_doc","_id":"4"}}', lines(second:body())[4])
    local sub = b:subset { 1 }
    sub:create(nil, { n = 5 })
    assert.matches('^{"create":{"_type":"_doc","_id":"[%w_-]+"}}$', lines(sub:body())[3])
    assert.equal('{"index":{"_id":"x"}}', lines(bulk.new():index({ _id = "x" }, {}):body())[1])
  end)

  it("refuses a doc_type that is not a plain name", function()
    assert.error_matches(function() bulk.new { doc_type = 'a"b' } end, "quote, backslash or control")
    assert.error_matches(function() bulk.new { doc_type = "" } end, "1 to 255 bytes")
    assert.error_matches(function() bulk.new { doc_type = 1 } end, "must be a string")
  end)
end)
