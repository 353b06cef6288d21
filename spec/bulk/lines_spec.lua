-- core.bulk_lines: NDJSON lines appended to a bulk buffer in C, checked
-- against what load's Lua path builds for the same line (json.decode, the
-- index pattern's Lua formatter and the bulk builder's put).
local bulk = require "espipe.bulk"
local core = require "espipe.core"
local json = require "espipe.json"
local index_pattern = require "espipe.pipeline.index_pattern"
local corpus = require "pipeline.load_corpus"

local append = core.bulk_lines_append

local function appender(cfg)
  local pattern = cfg.index_pattern
  local name_of, _, pieces
  if pattern then name_of, _, pieces = index_pattern.compile(pattern) end
  local c = core.bulk_lines_new { op = cfg.op, index = cfg.index, id_field = cfg.id_field, pattern = pieces,
                                  routing_field = cfg.routing_field,
                                  check = cfg.strict and "json" or "object", max_line = cfg.max_line }
  return c, name_of
end

-- load's Lua path for one line (chomped, not blank): the body it builds, or nil.
local function lua_path(line, cfg, name_of)
  if not (line:find("^%s*{") and line:find("}%s*$")) then return nil end
  local meta = { _index = cfg.index }
  if cfg.id_field or cfg.routing_field or name_of or cfg.strict then
    local doc = json.decode(line)
    if type(doc) ~= "table" or json.is_array(doc) then return nil end
    if name_of then
      meta._index = name_of(doc)
      if not meta._index then return nil end
    end
    if cfg.id_field then
      local id = doc[cfg.id_field]
      if (type(id) ~= "string" and type(id) ~= "number") then return nil end
      meta._id = id
    end
    if cfg.routing_field then
      local r = doc[cfg.routing_field]
      if (type(r) ~= "string" and type(r) ~= "number") then return nil end
      meta.routing = r
    end
  elseif core.utf8_invalid(line) then
    return nil
  end
  local b = bulk.new()
  if not pcall(b.put, b, cfg.op or "index", meta, line) then return nil end -- the Lua path raises then
  return b:body()
end

local function c_path(line, c)
  local b, indices = bulk.new(), {}
  local next_pos, n, docs, stop = append(b, 1e9, 1e15, c, line .. "\n", 1, indices)
  if stop == "line" then
    assert.equal(1, next_pos)
    assert.equal(0, n + docs + #b)
    return nil
  end
  assert.equal("end", stop)
  assert.equal(#line + 2, next_pos)
  assert.equal(1, n)
  assert.equal(1, docs)
  return b:body(), indices
end

local CONFIGS = {
  { index = "plain" },
  { index = "plain", strict = true },
  { index = "ids", id_field = "id" },
  { index = "ids", id_field = "id", op = "create" },
  { id_field = "id", index_pattern = "logs-{t:%Y.%m}" },
  { index_pattern = "{t:%Y%m%d%H}" },
  { id_field = "id", index_pattern = "x-{t:%%%Y}-{ev.at:%d}-{t:%H}h" },
  { index_pattern = "e-{ev.at:%Y-%m-%d}", index = "ignored" },
  { index = "routed", routing_field = "id" },
  { id_field = "id", routing_field = "t", index_pattern = "r-{ev.at:%Y}" },
}

describe("core.bulk_lines", function()
  local entries = corpus.lines(3000)

  for _, cfg in ipairs(CONFIGS) do
    it("builds what the Lua path builds, or leaves the line to it: " .. json.encode(cfg), function()
      local c, name_of = appender(cfg)
      local taken, lua_only = 0, 0
      for i, e in ipairs(entries) do
        local want = lua_path(e.line, cfg, name_of)
        local got, indices = c_path(e.line, c)
        local where = "line " .. i .. ": " .. e.line
        if got then
          taken = taken + 1
          assert.equal(want, got, where)
          local _, meta = next(json.decode(got:match("^[^\n]*")))
          local name = meta._index
          if cfg.index_pattern then assert.same({ [name] = 1 }, indices, where) end -- one document, counted
        elseif want then
          lua_only = lua_only + 1
          assert.is_false(e.c, "C left a line to Lua that it must take: " .. where)
        end
      end
      -- most of what Lua takes, C takes (lua_only: the lines marked c = false)
      assert.is_true(taken > 250 and taken > lua_only, "C took " .. taken .. ", Lua alone " .. lua_only)
    end)
  end

  it("formats every date as the Lua index pattern does", function()
    local c, name_of = appender { index_pattern = "d{t:%Y-%m-%d.%H.%%.%Y%m}" }
    local state = 3
    local function rand(n)
      state = (state * 1103515245 + 12345) % 2147483648
      return state % n
    end
    for _ = 1, 3000 do
      local v = (rand(2) == 0 and -1 or 1) * (rand(1000000) * 1000000000 + rand(1000000000))
      local digits = ("%.0f"):format(v)
      local line = '{"t":' .. (rand(3) == 0 and ('"' .. digits:gsub("^%-", "") .. '"') or digits) .. "}"
      local got = c_path(line, c)
      assert.equal(lua_path(line, {}, name_of), got, line)
      assert.is_not_nil(got, line)
    end
  end)

  it("takes the complete lines of a chunk, skips blank ones and stops before a partial one", function()
    local c = appender { index = "i", id_field = "id" }
    local b, indices = bulk.new(), {}
    local chunk = '{"id":"a"}\n\n \t\r\n{"id":"b"}\r\n{"id":"c"'
    local next_pos, n, docs, stop = append(b, 100, 1e9, c, chunk, 1, indices)
    assert.same({ 29, 4, 2, "end" }, { next_pos, n, docs, stop })
    assert.equal('{"index":{"_index":"i","_id":"a"}}\n{"id":"a"}\n{"index":{"_index":"i","_id":"b"}}\n{"id":"b"}\n',
      b:body())
    assert.same({ 29, 0, 0, "end" }, { append(b, 100, 1e9, c, chunk, 29, indices) })
  end)

  it("stops when the batch is full, and before a line it leaves to Lua", function()
    local c = appender { index = "i" }
    local b = bulk.new()
    local chunk = '{"a":1}\n{"a":2}\n{"a":3}\n[4]\n{"a":5}\n'
    assert.same({ 17, 2, 2, "full" }, { append(b, 2, 1e9, c, chunk, 1, {}) })
    assert.same({ 25, 1, 1, "line" }, { append(b, 10, 1e9, c, chunk, 17, {}) })
    assert.same({ 37, 1, 1, "end" }, { append(b, 10, 1e9, c, chunk, 29, {}) })
    assert.equal(4, #b)
    local full = bulk.new()
    assert.same({ 9, 1, 1, "full" }, { append(full, 10, 1, c, chunk, 1, {}) })
  end)

  it("leaves a line longer than max_line to Lua (which reports it)", function()
    local c = appender { index = "i", max_line = 10 }
    local b = bulk.new()
    assert.same({ 10, 1, 1, "line" }, { append(b, 10, 1e9, c, '{"a":12}\n{"a":"long"}\n', 1, {}) })
  end)

  it("gives a document without an id field a time id when the buffer makes ids", function()
    local c = appender { index = "i" }
    local b = bulk.new { auto_ids = true }
    append(b, 10, 1e9, c, '{"a":1}\n', 1, {})
    assert.matches('^{"index":{"_index":"i","_id":"[%w_-]+"}}\n{"a":1}\n$', b:body())
    assert.equal(20, #b:body():match('"_id":"([^"]+)"'))
    assert.is_true(b:auto_id(1))
  end)

  it("names the buffer's _type after _index (Elasticsearch 6.x)", function()
    local c = appender { index = "i", id_field = "k" }
    local b = bulk.new { doc_type = "doc" }
    append(b, 10, 1e9, c, '{"k":"a","n":1}\n', 1, {})
    assert.equal('{"index":{"_index":"i","_type":"doc","_id":"a"}}\n{"k":"a","n":1}\n', b:body())
  end)

  it("declines a pattern beyond its limits (load then takes every line the Lua way)", function()
    local many = {}
    for i = 1, 33 do many[i] = "x" end
    assert.same({ nil, "a pattern of more than 32 pieces" }, { core.bulk_lines_new { pattern = many } })
    assert.same({ nil, "a pattern field of more than 8 segments" },
      { core.bulk_lines_new { pattern = { { field = "a.b.c.d.e.f.g.h.i", fmt = "%Y" } } } })
  end)

  it("refuses wrong arguments", function()
    local c = appender { index = "i" }
    assert.error_matches(function() core.bulk_lines_new { op = "update" } end, "op must be index or create")
    assert.error_matches(function() core.bulk_lines_new { check = "none" } end, "check must be")
    assert.error_matches(function() core.bulk_lines_new { pattern = { 1 } } end, "must be a string or a table")
    assert.error_matches(function() core.bulk_lines_new { pattern = { { field = "a" } } } end, "needs field and fmt")
    assert.error_matches(function() append(bulk.new(), 10, 1e9, c, "{}\n", 5, {}) end, "outside the chunk")
    assert.error_matches(function() append(bulk.new(), 0, 1e9, c, "{}\n", 1, {}) end, "must be positive")
    assert.error_matches(function() append({}, 10, 1e9, c, "{}\n", 1, {}) end, "espipe.bulk expected")
  end)
end)
