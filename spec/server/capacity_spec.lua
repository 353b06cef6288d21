-- espipe serve --capacity: the model of a loaded cluster, seen from outside
-- through parallel curl requests. The model's costs are chosen so its times
-- (tens of milliseconds a request) dwarf the server's own work, so the
-- comparisons below are of modelled time, not of machine speed.
local devserver = require("spec.support.devserver")
local http = require("spec.support.http")
local json = require("espipe.server.json")

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local slurp = http.slurp

-- Sends every { url =, body = } at once (one curl each); returns for each
-- { seconds =, status =, body = decoded }.
local function parallel(requests)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir " .. q(dir)))
  local script = {}
  for i, r in ipairs(requests) do
    local f = assert(io.open(dir .. "/body" .. i, "wb"))
    f:write(r.body)
    f:close()
    script[#script + 1] = string.format("curl -s --max-time 60 -o %s -w '%%{http_code} %%{time_total}' "
      .. "-H 'Content-Type: application/x-ndjson' --data-binary @%s %s > %s &",
      q(dir .. "/out" .. i), q(dir .. "/body" .. i), q(r.url), q(dir .. "/time" .. i))
  end
  script[#script + 1] = "wait"
  assert(os.execute(table.concat(script, "\n")))
  local out = {}
  for i = 1, #requests do
    local code, seconds = slurp(dir .. "/time" .. i):match("^(%d+) ([%d%.]+)")
    out[i] = { status = tonumber(code), seconds = tonumber(seconds), body = json.decode(slurp(dir .. "/out" .. i)) }
  end
  assert(os.execute("rm -rf " .. q(dir)))
  return out
end

local function bulk_body(counts, prefix)
  local lines = {}
  for index, n in pairs(counts) do
    for i = 1, n do
      lines[#lines + 1] = json.encode { index = { _index = index, _id = prefix .. "-" .. index .. "-" .. i } }
      lines[#lines + 1] = '{"n":' .. i .. '}'
    end
  end
  return table.concat(lines, "\n") .. "\n"
end

local function rejected_items(res)
  local n = 0
  for _, item in ipairs(res.body.items) do
    local r = item.index
    if r.status == 429 then
      assert.equal("es_rejected_execution_exception", r.error.type)
      n = n + 1
    end
  end
  return n
end

local function mean_seconds(results)
  local sum = 0
  for _, r in ipairs(results) do sum = sum + r.seconds end
  return sum / #results
end

describe("espipe serve #server: --capacity", function()
  local server, ports
  setup(function()
    server = devserver.start { nodes = 3, args = { "--capacity",
      "docs_per_s=20000,per_request_ms=5,per_shard_ms=60,hop_ms=1,queue=6,nodes=3" } }
    -- indices a, b, c with one shard each; where each shard lives
    ports = {}
    for _, name in ipairs { "a", "b", "c" } do
      assert.equal(200, (http.json("PUT", server.url .. "/" .. name, { settings = { number_of_shards = 1 } })))
    end
    local _, _, raw = http.json("GET", server.url .. "/_cat/shards?format=json&h=index,node,prirep")
    for _, row in ipairs(json.decode(raw.body)) do
      if row.prirep == "p" then ports[row.index] = server.port + tonumber(row.node:match("(%d+)$")) end
    end
  end)
  teardown(function() server.stop() end)

  local function url_of(index) return "http://127.0.0.1:" .. ports[index] .. "/_bulk" end

  it("answers past the sweet spot later and later, then rejects items beyond the queue", function()
    local one = parallel { { url = url_of("a"), body = bulk_body({ a = 200 }, "solo") } }
    assert.equal(200, one[1].status)
    assert.equal(0, rejected_items(one[1]))
    local four = {}
    for i = 1, 4 do four[i] = { url = url_of("a"), body = bulk_body({ a = 200 }, "four" .. i) } end
    four = parallel(four)
    for _, r in ipairs(four) do assert.equal(0, rejected_items(r)) end
    -- 4 requests queued on one node: on average 2.5 service times instead of 1
    assert.is_true(mean_seconds(four) > 1.5 * one[1].seconds,
      mean_seconds(four) .. " vs " .. one[1].seconds)

    local twelve = {}
    for i = 1, 12 do twelve[i] = { url = url_of("a"), body = bulk_body({ a = 200 }, "twelve" .. i) } end
    twelve = parallel(twelve)
    local rejected = 0
    for _, r in ipairs(twelve) do
      assert.equal(200, r.status)
      rejected = rejected + rejected_items(r)
    end
    assert.is_true(rejected >= 200, "rejected " .. rejected)
    assert.is_true(rejected <= 6 * 200)

    -- rejected items were not stored; the node's write pool counts them
    http.json("POST", server.url .. "/a/_refresh")
    local _, count = http.json("GET", server.url .. "/a/_count")
    assert.equal(200 + 800 + 12 * 200 - rejected, count.count)
    local status, stats = http.json("GET", "http://127.0.0.1:" .. ports.a .. "/_nodes/stats/thread_pool/write")
    assert.equal(200, status)
    local node = stats.nodes["espipe-node-" .. (ports.a - server.port)]
    assert.equal(rejected / 200, node.thread_pool.write.rejected)
    assert.equal(200 + 800 + 12 * 200 - rejected, node.indices.indexing.index_total)
  end)

  it("indexes pre-sorted batches (one shard each, sent to its node) faster in docs/s", function()
    local spread, sorted = {}, {}
    for i, name in ipairs { "a", "b", "c" } do
      spread[i] = { url = url_of(name), body = bulk_body({ a = 100, b = 100, c = 100 }, "spread" .. i) }
      sorted[i] = { url = url_of(name), body = bulk_body({ [name] = 300 }, "sorted" .. i) }
    end
    local function slowest(results)
      local s = 0
      for _, r in ipairs(results) do
        assert.equal(0, rejected_items(r))
        s = math.max(s, r.seconds)
      end
      return s
    end
    local t_spread, t_sorted = slowest(parallel(spread)), slowest(parallel(sorted))
    -- model: 3 x (5 + 60 + 5) ms on each node against 5 + 60 + 15 ms
    assert.is_true(t_sorted * 1.5 < t_spread, t_sorted .. " vs " .. t_spread)
  end)

  it("refuses a bad spec and --blackhole, naming the problem", function()
    local ok, out = pcall(devserver.start, { args = { "--capacity", "docs_per_sec=5" } })
    assert.is_false(ok)
    assert.matches("%-%-capacity: unknown key 'docs_per_sec'", out)
    ok, out = pcall(devserver.start, { blackhole = true, args = { "--capacity", "queue=5" } })
    assert.is_false(ok)
    assert.matches("%-%-capacity needs the stored path", out)
  end)
end)

describe("espipe serve #server: --capacity and the bulk indexer's auto settings", function()
  local server, client
  local MB = 1024 * 1024
  setup(function()
    server = devserver.start { nodes = 3, args = { "--capacity",
      "docs_per_s=4000,per_request_ms=5,per_shard_ms=2,hop_ms=1,queue=6,nodes=3" } }
    client = require("espipe.client").new { hosts = { server.url }, max_inflight = 32 }
  end)
  teardown(function() server.stop() end)

  local function run(index, opts, n)
    assert(client.indices:create { index = index, body = { settings = { index = { number_of_shards = 6 } } } })
    opts.index, opts.max_batch_bytes = index, MB
    local bi = client:bulk_indexer(opts)
    for i = 1, n do assert(bi:index({ n = i, text = string.rep("x", 200) })) end
    local st = assert(bi:close())
    assert.equal(n, st.ok)
    assert.equal(0, st.failed)
    http.json("POST", server.url .. "/" .. index .. "/_refresh")
    local _, count = http.json("GET", server.url .. "/" .. index .. "/_count")
    assert.equal(n, count.count)
    return st
  end

  it("backs off where a fixed concurrency past the queue gets its items rejected", function()
    local fixed = run("fixed16", { concurrency = 16, batch_bytes = 256 * 1024, batch_docs = 1e9 }, 30000)
    local auto = run("auto", { concurrency = "auto", batch_bytes = 256 * 1024, batch_docs = 1e9 }, 30000)
    assert.is_true(fixed.retried > 0, "16 requests of 2 shard tasks a node overflow a queue of 6")
    assert.is_true(auto.retried < fixed.retried / 2, auto.retried .. " vs " .. fixed.retried)
    local a = auto.adaptive
    assert.equal("auto", a.concurrency_mode)
    assert.equal("fixed", a.batch_mode)
    assert.is_true(a.concurrency >= 1 and a.concurrency <= 16)
    assert.matches("^c=%d+ b=256kB$", auto.tuning)
  end)

  it("espipe load picks both automatically and reports them in --json", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. q(dir)))
    local f = assert(io.open(dir .. "/in.ndjson", "w"))
    for i = 1, 5000 do f:write('{"n":', i, '}\n') end
    f:close()
    local p = io.popen((devserver.root) .. "/bin/espipe load " .. q(dir .. "/in.ndjson") .. " --index cli --json"
      .. " --url " .. server.url .. " --dead-letter " .. q(dir .. "/dl.ndjson") .. " 2>" .. q(dir .. "/err"))
    local out = p:read("*a")
    p:close()
    local err = slurp(dir .. "/err")
    assert(os.execute("rm -rf " .. q(dir)))
    local summary = json.decode(out)
    assert.is_table(summary, out .. err)
    assert.equal(5000, summary.ok)
    assert.equal("auto", summary.adaptive.concurrency_mode)
    assert.equal("auto", summary.adaptive.batch_mode)
    assert.matches("\n  tuning%s+c=%d+ b=%d+[kM]B", err)
  end)
end)
