-- espipe route prints the shard Elasticsearch routes each id to. Expected
-- shards come from the dev server's own routing (pure Lua, written apart from
-- the C core) and from Elasticsearch's published values.
local server_routing = require "espipe.server.routing"

local function espipe(args)
  local p = assert(io.popen("bin/espipe route " .. args .. " 2>&1; echo rc=$?"))
  local out = p:read("*a")
  p:close()
  return tonumber(out:match("rc=(%d+)%s*$")), (out:gsub("rc=%d+%s*$", ""))
end

local function lines(out)
  local t = {}
  for id, shard in out:gmatch("([^\t\n]+)\t(%d+)\n") do t[#t + 1] = { id, tonumber(shard) } end
  return t
end

describe("espipe route", function()
  it("prints each id's shard with the legacy function and default routing shards", function()
    local ids = { "1", "hello", "user-42", "Γειά σου Κόσμε", "🙂" }
    local quoted = {}
    for i, id in ipairs(ids) do quoted[i] = "'" .. id .. "'" end
    local rc, out = espipe("--shards 5 " .. table.concat(quoted, " "))
    assert.equal(0, rc, out)
    local got = lines(out)
    assert.equal(#ids, #got)
    for i, id in ipairs(ids) do
      assert.equal(id, got[i][1])
      assert.equal(server_routing.shard(id, 5, 640, "legacy"), got[i][2], id)
    end
  end)

  it("matches Elasticsearch's own example: _id 1 on 2 shards is 0 (legacy) and 1 (modulo)", function()
    local rc, out = espipe("--shards 2 1")
    assert.equal(0, rc, out)
    assert.same({ { "1", 0 } }, lines(out))
    rc, out = espipe("--shards 2 --modulo 1")
    assert.equal(0, rc, out)
    assert.same({ { "1", 1 } }, lines(out))
  end)

  it("routes by --routing with a partition of the id", function()
    local rc, out = espipe("--shards 4 --routing-shards 8 --partition-size 3 --routing tenant-7 a b c")
    assert.equal(0, rc, out)
    for _, row in ipairs(lines(out)) do
      local h = server_routing.partitioned_hash("tenant-7", row[1], 3)
      assert.equal(server_routing.shard_for_hash(h, 4, 8, "legacy"), row[2], row[1])
    end
  end)

  it("explains wrong input and exits 2", function()
    local rc, out = espipe("--shards 5")
    assert.equal(2, rc)
    assert.matches("usage: espipe route", out, 1, true)
    rc, out = espipe("--shards x 1")
    assert.equal(2, rc)
    assert.matches("--shards expects a number", out, 1, true)
    rc, out = espipe("--shards 4 --routing-shards 6 1")
    assert.equal(2, rc)
    assert.is_truthy(out:find("routing", 1, true), out)
  end)
end)
