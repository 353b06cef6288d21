-- The log shipper's on-disk spool, in the example nginx against the dev
-- server: nothing is lost while the cluster is down (ESPIPE_OUTAGE seconds,
-- default 12; the issue's 60 s is `ESPIPE_OUTAGE=60 busted ...`), nor across
-- an nginx restart, and each worker's events are indexed in the order they
-- were pushed. Everything is checked by reading the dev server directly.
local devserver = require "support.devserver"
local http = require "support.http"
local nginx = require "support.nginx"
local example = require "openresty.example"
local cjson = require "cjson"

local OUTAGE = tonumber(os.getenv("ESPIPE_OUTAGE") or "12")
local INDEX = "nginx-access"

local q, sh, read, mktemp = example.q, example.sh, example.read, example.mktemp

local function lines_in(path)
  local _, n = read(path):gsub("\n", "")
  return n
end

-- The example with 2 workers, one bulk request in flight per worker (the
-- order promise) and its spool in spool_dir.
local function start_app(es_url, spool_dir, flush_interval)
  return example.start(es_url, { edit = function(conf)
    local n
    if flush_interval then
      conf, n = conf:gsub("flush_interval = 1,", "flush_interval = " .. flush_interval .. ",")
      assert(n == 1)
    end
    conf, n = conf:gsub("\nworker_processes 1;", "\nworker_processes 2;")
    assert(n == 1)
    conf, n = conf:gsub('spool_dir = ngx%.config%.prefix%(%) %.%. "logs/spool",',
      "spool_dir = " .. string.format("%q", spool_dir) .. ", concurrency = 1,")
    assert(n == 1, "example nginx.conf: spool_dir line not found")
    return conf
  end })
end

-- The dev server again on its port, with its data; the port may stay taken
-- for a moment after a stop (its workers exit after the master).
local function restart(data, port)
  local es, err
  nginx.wait_for(function()
    local ok, started = pcall(devserver.start, { data = data, port = port })
    if ok then es = started else err = started end
    return es ~= nil
  end, 20)
  return assert(es, err)
end

-- Every document of the index: id, _seq_no, source.
local function all_docs(es, n)
  http.request{ method = "POST", url = es.url .. "/" .. INDEX .. "/_refresh" }
  -- one page holds every event and any extra (a duplicate would show)
  http.request{ method = "PUT", url = es.url .. "/" .. INDEX .. "/_settings",
    headers = { ["content-type"] = "application/json" },
    body = cjson.encode{ index = { max_result_window = n + 100 } } }
  local res = http.request{ method = "POST", url = es.url .. "/" .. INDEX .. "/_search",
    headers = { ["content-type"] = "application/json" },
    body = cjson.encode{ size = n + 100, query = { match_all = {} }, _source = { "uri", "worker" } } }
  assert(res.status == 200, res.body)
  local hits = cjson.decode(res.body).hits.hits
  local ids = {}
  for i, h in ipairs(hits) do ids[i] = h._id end
  local mres = http.request{ method = "POST", url = es.url .. "/" .. INDEX .. "/_mget?_source=false",
    headers = { ["content-type"] = "application/json" }, body = cjson.encode{ ids = ids } }
  assert(mres.status == 200, mres.body)
  local seq = {}
  for _, d in ipairs(cjson.decode(mres.body).docs) do seq[d._id] = d._seq_no end
  local docs = {}
  for i, h in ipairs(hits) do
    docs[i] = { id = h._id, seq = seq[h._id], uri = h._source.uri, worker = h._source.worker }
  end
  return docs
end

-- Each page number exactly once.
local function assert_pages(docs, n)
  local seen, dup = {}, {}
  for _, d in ipairs(docs) do
    local page = tonumber(d.uri:match("^/page/(%d+)$"))
    if seen[page] then dup[#dup + 1] = page end
    seen[page] = true
  end
  local missing = {}
  for i = 1, n do if not seen[i] then missing[#missing + 1] = i end end
  assert.same({ {}, {} }, { missing, dup })
end

-- Per worker (its id prefix), _seq_no order is push order (the counter
-- ending each id).
local function assert_in_order(docs)
  local by_prefix = {}
  for _, d in ipairs(docs) do
    local prefix, n = d.id:match("^(.-)(%d+)$")
    by_prefix[prefix] = by_prefix[prefix] or {}
    table.insert(by_prefix[prefix], { seq = d.seq, n = tonumber(n) })
  end
  local workers = 0
  for prefix, list in pairs(by_prefix) do
    workers = workers + 1
    table.sort(list, function(a, b) return a.seq < b.seq end)
    for i = 2, #list do
      if list[i].n < list[i - 1].n then
        error(string.format("worker %s: event %d indexed after event %d", prefix, list[i - 1].n, list[i].n))
      end
    end
  end
  return workers
end

describe("log shipper spool #server", function()
  local es, app, data, spool_dir, loadgen

  before_each(function()
    data, spool_dir, loadgen = mktemp(), mktemp(), mktemp()
  end)
  after_each(function()
    if app then app.stop(); app = nil end
    if es then es.stop(); es = nil end
    sh("rm -rf " .. q(data) .. " " .. q(spool_dir) .. " " .. q(loadgen))
  end)

  it("loses nothing of 10,000 requests while the cluster is down for a while, and keeps each worker's order",
     function()
    local n = 10000
    es = devserver.start{ data = data }
    local port = es.port
    app = start_app(es.url, spool_dir)
    -- two connections (so both workers get events), 250 requests/s each
    for _, range in ipairs{ "[1-9999:2]", "[2-10000:2]" } do
      assert(sh("(curl -s --rate 250/s -o /dev/null -w '%{http_code}\\n' " .. q(app.url .. "/page/" .. range)
        .. " > " .. q(loadgen .. "/" .. range:sub(2, 2)) .. "; echo > " .. q(loadgen .. "/done" .. range:sub(2, 2))
        .. ") >/dev/null 2>&1 &"))
    end
    local function answered() return lines_in(loadgen .. "/1") + lines_in(loadgen .. "/2") end
    assert(nginx.wait_for(function() return answered() >= n / 4 end, 60), "load generator did not start")
    es.stop(); es = nil
    local down_at, before = os.time(), answered()
    -- the outage: requests keep coming, their events go to the spool
    local spooled
    assert(nginx.wait_for(function()
      local s = example.stats(app)
      if (s.spool_files or 0) > 0 then spooled = true end
      return os.time() - down_at >= OUTAGE
    end, OUTAGE + 5))
    assert.is_true(spooled, "nothing was spooled during the outage")
    assert.is_true(answered() > before, "no requests during the outage")
    es = restart(data, port)
    assert(nginx.wait_for(function()
      return read(loadgen .. "/done1") ~= "" and read(loadgen .. "/done2") ~= ""
    end, 120), "load generator did not finish")
    local codes = read(loadgen .. "/1") .. read(loadgen .. "/2")
    local _, ok200 = codes:gsub("200\n", "")
    assert.equal(n, ok200)
    assert(nginx.wait_for(function() return example.count(es, INDEX) >= n end, 120),
      "only " .. example.count(es, INDEX) .. " of " .. n .. " events arrived\n" .. app.error_log():sub(-3000))
    local docs = all_docs(es, n)
    assert.equal(n, #docs)
    assert_pages(docs, n)
    assert.equal(2, assert_in_order(docs), "events came from both workers")
    assert.is_nil(app.error_log():find("delayed events", 1, true), "ngx.sleep(0) warnings in the error log")
    assert.is_nil(app.error_log():find("dropped", 1, true), app.error_log():sub(-2000))
  end)

  it("replays what the old workers spooled on a reload (nginx -s reload)", function()
    es = devserver.start{ data = data }
    local url, port = es.url, es.port
    es.stop(); es = nil
    -- no drain before the reload: the 300 events are in the workers' memory
    app = start_app(url, spool_dir, 10)
    example.hit(app, 300)
    local p = io.popen("pgrep -P " .. app.pid)
    local old_workers = p:read("*a")
    p:close()
    assert(sh("kill -HUP " .. app.pid))
    assert(nginx.wait_for(function()
      for pid in old_workers:gmatch("%d+") do
        if sh("kill -0 " .. pid .. " 2>/dev/null") then return false end
      end
      return true
    end, 20), "the old workers did not exit")
    es = restart(data, port)
    assert(nginx.wait_for(function() return example.count(es, INDEX) >= 300 end, 60),
      "only " .. example.count(es, INDEX) .. " of 300 events arrived\n" .. app.error_log():sub(-3000))
    assert_pages(all_docs(es, 300), 300)
  end)

  it("replays what was spooled after an nginx restart", function()
    es = devserver.start{ data = data }
    local url, port = es.url, es.port
    es.stop(); es = nil
    app = start_app(url, spool_dir)
    example.hit(app, 300)
    -- stopping nginx writes each worker's memory queue to its spool
    app.stop(); app = nil
    local p = io.popen("cat " .. q(spool_dir) .. "/*.spool 2>/dev/null | wc -l")
    local spooled = tonumber(p:read("*a"))
    p:close()
    assert.equal(300, spooled)
    es = restart(data, port)
    app = start_app(url, spool_dir)
    assert(nginx.wait_for(function() return example.count(es, INDEX) >= 300 end, 60),
      "only " .. example.count(es, INDEX) .. " of 300 events arrived\n" .. app.error_log():sub(-3000))
    assert(nginx.wait_for(function()
      local left = io.popen("ls " .. q(spool_dir) .. " | wc -l")
      local k = tonumber(left:read("*a"))
      left:close()
      return k == 0
    end, 10), "spool files left after the replay")
    local docs = all_docs(es, 300)
    assert.equal(300, #docs)
    assert_pages(docs, 300)
    assert_in_order(docs)
  end)
end)
