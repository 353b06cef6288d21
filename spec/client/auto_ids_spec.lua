-- Client-side ids (issue 12, point 9): the bulk buffer gives index/create
-- actions without an _id a time-based one, made once, before the first send.
local core = require("espipe.core")
local client_mod = require("espipe.client")
local script_transport = require("spec.client.support.script_transport")

local B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

-- 20 characters of URL-safe base64 -> the 15 bytes
local function decode_id(id)
  local bytes = {}
  for i = 1, 20, 4 do
    local v = 0
    for j = i, i + 3 do v = v * 64 + (B64URL:find(id:sub(j, j), 1, true) - 1) end
    bytes[#bytes + 1] = math.floor(v / 65536) % 256
    bytes[#bytes + 1] = math.floor(v / 256) % 256
    bytes[#bytes + 1] = v % 256
  end
  return bytes
end

local function id_of(action) return action:match('"_id":"([^"]*)"') end

local function ids_of_a_process(n)
  local cmd = "lua5.4 -e \"package.cpath='./build/5.4/?.so;'..package.cpath; local b = require('espipe.core')"
    .. ".bulk_new{ auto_ids = true }; for i = 1, " .. n .. " do b:put('index', nil, '{}') end; "
    .. "for i = 1, #b do print((b:item(i)):match('\\\"_id\\\":\\\"([^\\\"]*)\\\"')) end\""
  local p = assert(io.popen(cmd))
  local ids = {}
  for line in p:lines() do ids[#ids + 1] = line end
  p:close()
  return ids
end

describe("bulk buffer auto_ids", function()
  it("gives index and create actions without an _id a 20-character URL-safe id, and nothing else", function()
    local b = core.bulk_new{ auto_ids = true }
    b:put("index", { _index = "x" }, { a = 1 })
    b:put("create", nil, '{"a":2}')
    b:put("index", { _id = "mine" }, '{"a":3}')
    b:put("update", { _id = "u" }, { doc = { a = 4 } })
    b:put("delete", { _id = "d" })
    b:raw('{"index":{}}', '{"a":5}')
    b:raw('{ "create" : { "_index" : "y" } }', '{"a":6}')
    b:raw('{"index":{"_id":"raw"}}', '{"a":7}')
    local want_auto = { true, true, false, false, false, true, true, false }
    for i = 1, #b do
      local action = b:item(i)
      assert.equal(want_auto[i], b:auto_id(i), action)
      if want_auto[i] then
        local id = id_of(action)
        assert.equal(20, #id, action)
        assert.truthy(id:match("^[A-Za-z0-9_-]+$"), id)
        assert.truthy(require("espipe.json").decode(action), action)
      end
    end
    assert.equal("mine", id_of((b:item(3))))
    assert.equal('{"index":{"_id":"raw"}}', (b:item(8)))
    assert.truthy((b:item(7)):find('"_index" : "y"', 1, true))
    -- off by default
    local plain = core.bulk_new()
    plain:put("index", nil, "{}")
    assert.equal('{"index":{}}', (plain:item(1)))
    assert.is_false(plain:auto_id(1))
  end)

  it("keeps ids and the auto_ids setting through split, slice and append_from", function()
    local b = core.bulk_new{ auto_ids = true }
    for _ = 1, 4 do b:put("index", nil, "{}") end
    local first, second = b:split()
    assert.equal(id_of((b:item(3))), id_of((second:item(1))))
    assert.is_true(second:auto_id(1))
    second:reset()
    second:put("index", nil, "{}")
    assert.is_true(second:auto_id(1))
    local again = core.bulk_new()
    again:append_from(first, 2)
    assert.equal(id_of((b:item(2))), id_of((again:item(1))))
    assert.is_true(again:auto_id(1))
  end)

  it("lays the bytes out like Elasticsearch's time-based ids: sequence, time, node", function()
    local b = core.bulk_new{ auto_ids = true }
    for _ = 1, 3 do b:put("index", nil, "{}") end
    local u1, u2 = decode_id(id_of((b:item(1)))), decode_id(id_of((b:item(2))))
    -- the node part (bytes 7..12) is the process's, the low sequence byte moves by one
    for i = 7, 12 do assert.equal(u1[i], u2[i]) end
    assert.equal((u1[1] + 1) % 256, u2[1])
    -- the 48-bit milliseconds: bytes 6,5,4,3,13,15 from the most significant
    local u = u1
    local ms = ((((u[6] * 256 + u[5]) * 256 + u[4]) * 256 + u[3]) * 256 + u[13]) * 256 + u[15]
    assert.is_true(math.abs(ms / 1000 - os.time()) < 120, "timestamp " .. ms)
  end)

  it("never repeats an id within a process or across processes", function()
    local seen, n = {}, 0
    for _, ids in ipairs{ ids_of_a_process(50000), ids_of_a_process(50000) } do
      assert.equal(50000, #ids)
      for _, id in ipairs(ids) do
        assert.is_nil(seen[id], "repeated id " .. id)
        seen[id] = true
        n = n + 1
      end
    end
    assert.equal(100000, n)
  end)
end)

describe("bulk indexer ids", function()
  it("sends a retried batch with the ids of its first attempt", function()
    local bodies = {}
    local t = script_transport.new(function(req, n)
      bodies[n] = type(req.body) == "string" and req.body or req.body:body()
      if n == 1 then return { status = 503, body = '{"error":"busy"}' } end
      return { status = 200, body = '{"errors":false,"items":[{"index":{"status":201}},{"index":{"status":201}}]}' }
    end)
    local bi = client_mod.new{ transport = t }:bulk_indexer{ index = "x", backoff = { base = 0.01 } }
    bi:index({ a = 1 })
    bi:index('{"a":2}')
    local st = bi:close()
    assert.equal(2, st.ok)
    assert.equal(2, #bodies)
    assert.equal(bodies[1], bodies[2])
    local id = bodies[1]:match('"_id":"([^"]+)"')
    assert.equal(20, #id)
  end)

  it("leaves ids to the server with server_ids = true", function()
    local body
    local t = script_transport.new(function(req)
      body = type(req.body) == "string" and req.body or req.body:body()
      return { status = 200, body = '{"errors":false,"items":[{"index":{"status":201}}]}' }
    end)
    local bi = client_mod.new{ transport = t }:bulk_indexer{ index = "x", server_ids = true }
    bi:index({ a = 1 })
    bi:close()
    assert.equal('{"index":{}}\n{"a":1}\n', body)
  end)
end)
