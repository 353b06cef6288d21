-- The C bulk-response scanner (espipe.core.bulk_response), without a server:
-- hand-written responses with known outcomes, and generated ones whose
-- expected outcome is the generator's input.
local core = require("espipe.core")
local scan = core.bulk_response

describe("bulk response scanner", function()
  it("counts a successful response without listing items", function()
    local body = [[{"took":30,"errors":false,"items":[
 {"index":{"_index":"test","_id":"1","_version":1,"result":"created",
  "_shards":{"total":2,"successful":1,"failed":0},"_seq_no":0,"_primary_term":1,"status":201}},
 {"delete":{"_index":"test","_id":"2","_version":1,"result":"not_found",
  "_shards":{"total":2,"successful":1,"failed":0},"_seq_no":1,"_primary_term":2,"status":404}},
 {"create":{"_index":"test","_id":"3","result":"created","status":201}},
 {"update":{"_index":"test","_id":"4","_version":2,"result":"updated","status":200}},
 {"update":{"_index":"test","_id":"5","_version":2,"result":"noop","status":200}},
 {"delete":{"_index":"test","_id":"6","_version":3,"result":"deleted","status":200}}]}]]
    local r = assert(scan(body))
    assert.are.equal(false, r.errors)
    assert.are.equal(30, r.took)
    assert.are.equal(6, r.count)
    assert.are.equal(6, r.ok)
    assert.are.equal(0, r.failed)
    assert.are.equal(2, r.created)
    assert.are.equal(1, r.updated)
    assert.are.equal(1, r.noop)
    assert.are.equal(1, r.deleted)
    assert.are.equal(1, r.not_found)
    assert.are.same({}, r.failures)
  end)

  it("reports each failed item with position, status, type, reason and raw error", function()
    local err2 = [[{"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation","caused_by":{"type":"x","reason":"nested \"reason\"","list":[1,{"a":[]}]}}]]
    local err4 = [[{"type":"document_parsing_exception","reason":"[1:9] failed to parse field [n] of type [long] in document with id '4'. Preview of field's value: 'abc'","index_uuid":"u","shard":"0","index":"test"}]]
    local body = '{"took":3,"errors":true,"items":['
      .. '{"index":{"_index":"test","_id":"1","status":201,"result":"created"}},'
      .. '{"index":{"_index":"test","_id":"2","status":429,"error":' .. err2 .. '}},'
      .. '{"create":{"_index":"test","_id":"3","status":200,"result":"updated"}},'
      .. '{"index":{"_index":"test","_id":"4","status":400,"error":' .. err4 .. '}},'
      .. '{"update":{"_index":"test","_id":null,"status":409,"error":"plain string error"}}'
      .. ']}'
    local r = assert(scan(body))
    assert.are.equal(true, r.errors)
    assert.are.equal(5, r.count)
    assert.are.equal(2, r.ok)
    assert.are.equal(3, r.failed)
    assert.are.equal(3, #r.failures)
    local f = r.failures[1]
    assert.are.equal(2, f.pos)
    assert.are.equal("index", f.op)
    assert.are.equal(429, f.status)
    assert.are.equal("2", f.id)
    assert.are.equal("es_rejected_execution_exception", f.type)
    assert.are.equal("rejected execution of coordinating operation", f.reason)
    assert.are.equal(err2, f.error)
    f = r.failures[2]
    assert.are.equal(4, f.pos)
    assert.are.equal("document_parsing_exception", f.type)
    assert.are.equal(err4, f.error)
    f = r.failures[3]
    assert.are.equal(5, f.pos)
    assert.are.equal("update", f.op)
    assert.is_nil(f.id)
    assert.is_nil(f.type)
    assert.are.equal("plain string error", f.reason)
    assert.are.equal('"plain string error"', f.error)
  end)

  it("keeps UTF-8 text as sent, and reads on past it", function()
    local reason = "caf\195\169 \226\130\172 \240\159\152\128 r\195\169sum\195\169 of a field longer than sixteen bytes"
    local body = '{"items":[{"index":{"_id":"\195\169","status":400,"error":{"reason":"' .. reason
      .. '","type":"t\195\169"}}},{"index":{"status":201,"result":"created"}}],"errors":true}'
    local r = assert(scan(body))
    assert.are.equal(2, r.count)
    assert.are.equal(1, r.created)
    assert.are.equal("\195\169", r.failures[1].id)
    assert.are.equal(reason, r.failures[1].reason)
    assert.are.equal("t\195\169", r.failures[1].type)
  end)

  it("decodes escaped keys and strings, including surrogate pairs", function()
    local body = '{"items":[{"\\u0069ndex":{"st\\u0061tus":400,"_id":"a\\"b\\\\c\\/d",'
      .. '"error":{"t\\u0079pe":"bad\\ttype","reason":"\\u00e9\\ud83d\\ude00\\n"}}}],"errors":true}'
    local r = assert(scan(body))
    local f = r.failures[1]
    assert.are.equal("index", f.op)
    assert.are.equal(400, f.status)
    assert.are.equal('a"b\\c/d', f.id)
    assert.are.equal("bad\ttype", f.type)
    assert.are.equal("\195\169\240\159\152\128\n", f.reason)
  end)

  it("tolerates whitespace everywhere JSON allows it", function()
    local body = ' \r\n{ "errors" : false ,\t"items" : [ { "index" : { "status" : 201 , "result" : "created" } } ,'
      .. '{"index":{"status":200}} ] } \n'
    local r = assert(scan(body))
    assert.are.equal(2, r.count)
    assert.are.equal(1, r.created)
    assert.are.equal(1, r.updated)
  end)

  it("infers outcomes from status when filter_path dropped result", function()
    local body = '{"errors":false,"items":[{"index":{"status":201}},{"index":{"status":200}},'
      .. '{"delete":{"status":200}},{"delete":{"status":404}},{"update":{"status":200}}]}'
    local r = assert(scan(body))
    assert.are.equal(5, r.ok)
    assert.are.equal(1, r.created)
    assert.are.equal(2, r.updated)
    assert.are.equal(1, r.deleted)
    assert.are.equal(1, r.not_found)
  end)

  it("treats a non-2xx item without an error object as failed, except delete 404", function()
    local r = assert(scan('{"errors":false,"items":[{"index":{"status":503}},{"delete":{"status":404}}]}'))
    assert.are.equal(1, r.failed)
    assert.are.equal(1, r.ok)
    assert.are.equal(503, r.failures[1].status)
    assert.matches("503", r.failures[1].reason)
  end)

  it("handles an empty item list", function()
    local r = assert(scan('{"took":0,"errors":false,"items":[]}'))
    assert.are.equal(0, r.count)
  end)

  describe("rejects malformed bodies with a message and a byte offset", function()
    local cases = {
      { "", "not a JSON object", 0 },
      { '{"errors":false,"items":[{"index":{"status":201}}', "expected ',' or ']'", 49 },
      { '{"errors":false,"items":[{"index":{"status":201}}]}x', "trailing", 51 },
      { '{"errors":false}', "no items", 0 },
      { '{"items":[{"index":{"_id":"1"}}]}', "no status", 10 },
      { '{"items":[{"index":{"status":"201"}}]}', "not an integer", 29 },
      { '{"items":[{}]}', "no action", 10 },
      { '{"items":[{"index":{"status":201},"create":{"status":201}}]}', "more than one action", 33 },
      { '{"items":[{"index":{"status":201,"x":tru}}]}', "invalid literal", 37 },
      { '{"items":[{"index":{"status":201,"x":"a\\qb"}}]}', "invalid escape", 39 },
      { '{"items":[{"index":{"status":201,"x":"a\\u12g4"}}]}', "\\u escape", 39 },
      { '{"items":[{"index":{"status":201,"x":"a\1"}}]}', "control character", 39 },
      { '{"items":[{"index":{"status":201,"x":01}}]}', "expected ',' or '}'", 38 },
      { '{"items":[{"index":{"status":201,"x":-}}]}', "invalid number", 37 },
      { '{"items":[{"index":{"status":201,"x":[1,]}}]}', "invalid number", 40 },
      { '{"items":[{"index":{"status":201 "x":1}}]}', "expected ',' or '}'", 33 },
      { '{"items":{"index":{}}}', "not an array", 9 },
      { '{"items":[{"index":{"status":201}}],}', "expected object key", 36 },
    }
    for _, c in ipairs(cases) do
      it(string.format("%q", c[1]), function()
        local r, msg, off = scan(c[1])
        assert.is_nil(r)
        assert.matches(c[2], msg, 1, true)
        assert.are.equal("number", type(off))
        if c[3] then assert.are.equal(c[3], off) end
      end)
    end
  end)

  it("rejects nesting deeper than its limit without crashing", function()
    local deep = string.rep("[", 100000) .. string.rep("]", 100000)
    local r, msg = scan('{"items":[{"index":{"status":400,"error":' .. deep .. '}}]}')
    assert.is_nil(r)
    assert.matches("too deep", msg)
  end)

  it("raises on a non-string argument", function()
    assert.has_error(function() scan(nil) end)
    assert.has_error(function() scan({}) end)
    assert.has_error(function() scan(12) end)
  end)

  it("finds exactly the failed items of generated responses", function()
    -- The expected outcome is the generator's input, written independently
    -- of the scanner; whitespace and escaping vary per item.
    local seed = 12345
    local function rnd(n)
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n + 1
    end
    local ws = { "", " ", "\n", "\t ", "\r\n  " }
    local function w() return ws[rnd(#ws)] end
    local function esc(s)
      -- escape every other character as \u00XX so key matching is exercised
      return (s:gsub("()(.)", function(i, ch)
        if i % 2 == 0 and rnd(3) == 1 then return string.format("\\u%04x", ch:byte()) end
        return ch
      end))
    end
    local outcomes = {
      { op = "index", status = 201, result = "created" },
      { op = "index", status = 200, result = "updated" },
      { op = "delete", status = 404, result = "not_found" },
      { op = "update", status = 200, result = "noop" },
      { op = "index", status = 429, type = "es_rejected_execution_exception", reason = "queue full" },
      { op = "create", status = 409, type = "version_conflict_engine_exception", reason = "[x]: version conflict, document already exists" },
      { op = "index", status = 400, type = "strict_dynamic_mapping_exception", reason = "mapping set to strict \"x\"" },
    }
    for _ = 1, 20 do
      local n = rnd(300)
      local parts, expected_failures, expected_ok = {}, {}, 0
      for i = 1, n do
        local o = outcomes[rnd(#outcomes)]
        local fields = { w() .. '"' .. esc("_index") .. '"' .. w() .. ":" .. w() .. '"test"',
          '"' .. esc("_id") .. '":"id-' .. i .. '"',
          '"' .. esc("status") .. '"' .. w() .. ":" .. w() .. o.status }
        if o.result then
          fields[#fields + 1] = '"' .. esc("result") .. '":"' .. o.result .. '"'
          expected_ok = expected_ok + 1
        else
          fields[#fields + 1] = '"' .. esc("error") .. '":{"' .. esc("type") .. '":"' .. o.type
            .. '","reason":"' .. o.reason:gsub('"', '\\"') .. '","caused_by":{"type":"inner","reason":"r"}}'
          expected_failures[#expected_failures + 1] = { pos = i, status = o.status, type = o.type, reason = o.reason, id = "id-" .. i }
        end
        -- shuffle field order
        for j = #fields, 2, -1 do
          local k = rnd(j)
          fields[j], fields[k] = fields[k], fields[j]
        end
        parts[i] = w() .. "{" .. w() .. '"' .. esc(o.op) .. '"' .. w() .. ":" .. w() .. "{" .. table.concat(fields, "," .. w()) .. w() .. "}" .. w() .. "}"
      end
      local body = '{"took":' .. n .. ',"errors":' .. tostring(#expected_failures > 0)
        .. ',"items":[' .. table.concat(parts, ",") .. w() .. "]}"
      local r, msg, off = scan(body)
      assert(r, tostring(msg) .. " at " .. tostring(off) .. ": " .. body:sub((off or 0) + 1, (off or 0) + 40))
      assert.are.equal(n, r.count)
      assert.are.equal(expected_ok, r.ok)
      assert.are.equal(#expected_failures, r.failed)
      for k, e in ipairs(expected_failures) do
        local f = r.failures[k]
        assert.are.equal(e.pos, f.pos)
        assert.are.equal(e.status, f.status)
        assert.are.equal(e.type, f.type)
        assert.are.equal(e.reason, f.reason)
        assert.are.equal(e.id, f.id)
      end
    end
  end)
end)
