-- Issue 12, points 6-9 and 13, at the network: `espipe load` as a real
-- process against the dev server, with the faults made by stopping the
-- server or by the fault proxy, and the outcome read from the server
-- directly (never through espipe).
--   ESPIPE_OUTAGE_SECONDS=60 busted spec/client/faults_server_spec.lua   (default 10)
local devserver = require("support.devserver")
local fault_proxy = require("support.fault_proxy")
local http = require("support.http")
local json = require("espipe.json")
local S = require("pipeline.support")
local J = require("pipeline.jobs")

local OUTAGE = tonumber(os.getenv("ESPIPE_OUTAGE_SECONDS") or "") or 10

local function count(url, index)
  http.request{ method = "POST", url = url .. "/" .. index .. "/_refresh" }
  local status, body = http.json("GET", url .. "/" .. index .. "/_count")
  if status ~= 200 then return nil end
  return body.count
end

local function write_docs(path, n, from)
  local f = assert(io.open(path, "wb"))
  for i = from or 1, (from or 1) + n - 1 do f:write('{"n":', i, ',"b":"x', i, '"}\n') end
  f:close()
end

-- The job's files in dir other than its input: what it left behind.
local function left_behind(dir, input)
  local out = {}
  for _, name in ipairs(S.listdir(dir)) do
    if name ~= input and name ~= "out" and name ~= "err" then out[#out + 1] = name end
  end
  return out
end

local function load(dir, args)
  return J.espipe("load " .. args .. " --quiet --json --dead-letter " .. S.q(dir .. "/dl.ndjson"))
end

describe("espipe load under faults #server", function()
  local server, proxy, dir
  before_each(function() dir = S.tmpdir() end)
  after_each(function()
    if proxy then proxy:stop() end
    if server then server.stop() end
    proxy, server = nil, nil
    S.cleanup()
  end)

  it("rides out a dev server outage in the middle of a load: nothing dead-lettered, every document there", function()
    server = devserver.start{ data = true }
    local N = 200000
    write_docs(dir .. "/in.ndjson", N)
    -- (--rate: the load lasts at least 10 s however fast it is, so the outage below meets it)
    local cmd = J.bin .. " load " .. S.q(dir .. "/in.ndjson") .. " --index outage --batch-docs 500 --concurrency 2"
      .. " --rate 20000 --retry-for 300 --json --quiet --dead-letter " .. S.q(dir .. "/dl.ndjson") .. " --url " .. server.url
    -- espipe runs in the background; its pid and, at the end, its exit status land in files
    local script = cmd .. " >" .. S.q(dir .. "/out") .. " 2>" .. S.q(dir .. "/err") .. " & echo $! > "
      .. S.q(dir .. "/pid") .. "; wait $!; echo $? > " .. S.q(dir .. "/rc")
    J.exec("sh -c " .. S.q(script) .. " >/dev/null 2>&1 &")
    local pid = J.wait_for(function()
      local f = io.open(dir .. "/pid")
      local v = f and tonumber(f:read("*a"))
      if f then f:close() end
      return v
    end, 10, "the load to start")
    local function finished()
      local f = io.open(dir .. "/rc")
      if f then f:close() end
      return f ~= nil
    end
    finally(function() if J.alive(pid) then J.exec("kill " .. pid) end end)
    -- the server goes away once the load is well under way
    J.wait_for(function() return (count(server.url, "outage") or 0) >= 5000 end, 60, "5000 documents")
    local first = server
    assert.equal(0, J.exec("kill -TERM " .. first.pid))
    J.wait_for(function() return not J.alive(first.pid) end, 15, "the server to exit")
    assert.is_false(finished(), "the load ended before the outage")
    J.exec("sleep " .. OUTAGE) -- the outage itself
    server = devserver.start{ port = first.port, data = first.data }
    J.wait_for(finished, OUTAGE + 180, "the load to finish")
    first.stop()

    assert.equal("0", S.read(dir .. "/rc"):match("%d+"), S.read(dir .. "/err"))
    local summary = json.decode(S.read(dir .. "/out"))
    assert.equal(N, summary.ok)
    assert.equal(0, summary.failed)
    assert.is_true(summary.retried > 0, "nothing was retried: the outage missed the load")
    assert.equal(N, count(server.url, "outage")) -- with client-side ids: no duplicate either
    assert.is_nil(io.open(dir .. "/dl.ndjson"), "a dead letter was written")
  end)

  describe("stops at once on a systemic failure, exit 2, one line, no dead letter", function()
    -- a loopback URL whose port nothing listens on (a dev server's, stopped)
    local function dead_url()
      local s = devserver.start{}
      s.stop()
      return s.url
    end

    it("a port nothing listens on", function()
      local url = dead_url()
      write_docs(dir .. "/in.ndjson", 3000)
      local code, _, err = load(dir, S.q(dir .. "/in.ndjson") .. " --index t --url " .. url)
      assert.equal(2, code, err)
      local lines = {}
      for line in err:gmatch("[^\n]+") do lines[#lines + 1] = line end
      assert.equal(1, #lines, err)
      assert.truthy(err:find(url, 1, true), err)
      assert.same({}, left_behind(dir, "in.ndjson"))
    end)

    it("401 and 403 from the cluster", function()
      server = devserver.start{}
      write_docs(dir .. "/in.ndjson", 3000)
      for _, status in ipairs{ 401, 403 } do
        proxy = fault_proxy.start{ upstream = server.url,
                                   rules = { { match = "*", action = "status", status = status } },
                                   max_seconds = 60 }
        local code, out, err = load(dir, S.q(dir .. "/in.ndjson") .. " --index t --concurrency 1 --url " .. proxy.url)
        assert.equal(2, code, err)
        assert.truthy(err:find(tostring(status), 1, true), err)
        assert.truthy(err:find(proxy.url, 1, true), err)
        -- GET / (the version, read up front) and one _bulk, neither retried
        assert.equal(2, proxy:stats().requests)
        assert.equal(0, json.decode(out).failed)
        assert.same({}, left_behind(dir, "in.ndjson"))
        proxy:stop()
        proxy = nil
      end
      assert.is_nil(count(server.url, "t"))
    end)

    it("espipe reindex into a destination that answers 403", function()
      server = devserver.start{}
      local body = {}
      for i = 1, 3000 do body[#body + 1] = '{"index":{"_index":"src","_id":"' .. i .. '"}}\n{"n":' .. i .. '}\n' end
      assert.equal(200, http.request{ method = "POST", url = server.url .. "/_bulk?refresh=true",
        body = table.concat(body), headers = { ["Content-Type"] = "application/x-ndjson" } }.status)
      proxy = fault_proxy.start{ upstream = server.url, max_seconds = 60,
                                 rules = { { match = "_bulk", action = "status", status = 403 } } }
      local dl = dir .. "/dl.ndjson"
      local code, _, err = J.espipe("reindex " .. server.url .. "/src " .. proxy.url .. "/dst --quiet --dead-letter "
        .. S.q(dl))
      assert.equal(2, code, err)
      assert.matches("^espipe reindex: 403 [^\n]+ %(POST /dst/_bulk%) on " .. proxy.url:gsub("%p", "%%%0") .. "\n$", err)
      assert.same({}, left_behind(dir, "in.ndjson"))
    end)

    it("a TLS certificate that does not verify", function()
      local key, crt = dir .. "/k.pem", dir .. "/c.pem"
      assert.equal(0, J.exec("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -keyout "
        .. S.q(key) .. " -out " .. S.q(crt) .. " >/dev/null 2>&1"))
      local port, pid
      for _ = 1, 10 do
        port = math.random(20000, 60000)
        local p = io.popen("(exec openssl s_server -quiet -www -accept 127.0.0.1:" .. port .. " -cert " .. S.q(crt)
          .. " -key " .. S.q(key) .. " >" .. S.q(dir .. "/tls.log") .. " 2>&1) & echo $!")
        pid = tonumber(p:read("*l"))
        p:close()
        local up = pcall(J.wait_for, function()
          return not J.alive(pid) or J.exec("curl -sk -o /dev/null https://127.0.0.1:" .. port .. "/") == 0
        end, 10, "openssl s_server")
        if up and J.alive(pid) then break end
        if J.alive(pid) then J.exec("kill " .. pid) end -- slow to start: try another port
        pid = nil
      end
      assert.truthy(pid, "openssl s_server did not start")
      finally(function()
        J.exec("kill " .. pid)
        J.wait_for(function() return not J.alive(pid) end, 10, "s_server to exit")
      end)
      write_docs(dir .. "/in.ndjson", 100)
      local code, _, err = load(dir, S.q(dir .. "/in.ndjson") .. " --index t --url https://127.0.0.1:" .. port)
      assert.equal(2, code, err)
      assert.truthy(err:lower():find("certificate"), err)
      assert.same({ "c.pem", "k.pem", "tls.log" }, left_behind(dir, "in.ndjson"))
    end)

    it("returns nil, err with err.kind == 'systemic' from the library", function()
      local url = dead_url()
      write_docs(dir .. "/in.ndjson", 10)
      local client = require("espipe.client").new{ hosts = { url } }
      local res, err, summary = require("espipe.pipeline.load").run{ client = client, input = dir .. "/in.ndjson",
        index = "t", dead_letter = dir .. "/dl.ndjson" }
      client:close()
      assert.is_nil(res)
      assert.equal("systemic", err.kind)
      assert.equal("transport", err.cause)
      assert.equal(10, summary.unsent)
      assert.equal(summary.added, summary.ok + summary.failed + summary.unsent)
    end)
  end)

  it("stops early when every document is rejected (error budget), showing the first error with its _id", function()
    server = devserver.start{}
    local status = http.json("PUT", server.url .. "/strict", { mappings = { dynamic = "strict",
      properties = { n = { type = "long" } } } })
    assert.equal(200, status)
    write_docs(dir .. "/in.ndjson", 20000)
    local input = S.q(dir .. "/in.ndjson")
    local code, out, err = load(dir, input .. " --index strict --batch-docs 500 --url " .. server.url)
    assert.equal(1, code, err)
    local summary = json.decode(out)
    assert.is_true(summary.read < 20000, "read the whole input: " .. summary.read)
    -- at most what was accepted when the budget tripped: the batches in flight (4) and the open one
    assert.is_true(summary.failed >= 1000 and summary.failed <= 500 * 6, "failed " .. summary.failed)
    assert.equal(summary.added, summary.ok + summary.failed) -- everything accepted was flushed
    assert.equal(0, summary.ok)
    assert.matches("all of the first 1000 documents failed", err)
    assert.matches("first: document _id [%w_-]+, index strict: 400 strict_dynamic_mapping_exception", err)
    assert.truthy(err:find(summary.failed .. " document(s) dead-lettered to " .. dir .. "/dl.ndjson", 1, true), err)
    local lines = 0
    for _ in io.lines(dir .. "/dl.ndjson") do lines = lines + 1 end
    assert.equal(summary.failed, lines)

    -- a count, and a percentage
    code, out, err = load(dir, S.q(dir .. "/in.ndjson") .. " --index strict --batch-docs 100 --max-errors 5 --url "
      .. server.url)
    assert.equal(1, code, err)
    summary = json.decode(out)
    assert.is_true(summary.failed > 5 and summary.failed <= 100 * 6, "failed " .. summary.failed)
    assert.matches("more than 5 documents failed", err)
    code, out, err = load(dir, input .. " --index strict --max-errors 50% --url " .. server.url)
    assert.equal(1, code, err)
    assert.matches("more than 50%% of the documents failed", err)
    summary = json.decode(out)
    assert.equal(summary.added, summary.ok + summary.failed)
    local bad_code, _, bad_err = load(dir, input .. " --index strict --max-errors lots --url " .. server.url)
    assert.equal(2, bad_code)
    assert.matches("%-%-max%-errors must be a count or a percentage", bad_err)
  end)

  it("stops a stalled job after --stall-timeout, everything accepted accounted, nothing dead-lettered", function()
    server = devserver.start{}
    proxy = fault_proxy.start{ upstream = server.url, rules = { { match = "_bulk", action = "stall" } },
                               max_seconds = 60 }
    write_docs(dir .. "/in.ndjson", 3000)
    local t0 = os.time()
    local code, out, err = load(dir, S.q(dir .. "/in.ndjson") .. " --index t --batch-docs 500 --stall-timeout 2"
      .. " --timeout 30 --url " .. proxy.url)
    assert.is_true(os.time() - t0 < 20, "took " .. (os.time() - t0) .. " s")
    assert.equal(1, code, err)
    assert.matches("stalled: no answer from the cluster for %d s", err)
    local summary = json.decode(out)
    assert.is_true(summary.unsent > 0)
    assert.equal(summary.added, summary.ok + summary.failed + summary.unsent)
    assert.is_true(proxy:stats().stalls >= 1)
    assert.same({}, left_behind(dir, "in.ndjson"))
  end)

  it("gives up on a request after --timeout seconds (a timeout is retryable: --retry-for 0 ends it at once)", function()
    server = devserver.start{}
    proxy = fault_proxy.start{ upstream = server.url, rules = { { match = "_bulk", action = "stall" } },
                               max_seconds = 60 }
    write_docs(dir .. "/in.ndjson", 10)
    local t0 = os.time()
    local code, out, err = load(dir, S.q(dir .. "/in.ndjson") .. " --index t --timeout 1 --retry-for 0"
      .. " --url " .. proxy.url)
    assert.is_true(os.time() - t0 < 10, "took " .. (os.time() - t0) .. " s")
    assert.equal(1, code, err)
    local summary = json.decode(out)
    assert.equal(10, summary.failed)
    local rec = json.decode(S.read(dir .. "/dl.ndjson"):match("[^\n]+"))
    assert.equal("transport", rec.error.type)
    assert.matches("[Tt]imed? ?out", rec.error.reason)
  end)

  describe("a response lost after the server applied the _bulk request", function()
    local function run(extra)
      server = devserver.start{}
      -- the 2nd _bulk request reaches the server, its answer never reaches espipe
      proxy = fault_proxy.start{ upstream = server.url, max_seconds = 120,
                                 rules = { { match = "_bulk", action = "reset_response", nth = 2 } } }
      write_docs(dir .. "/in.ndjson", 3000)
      local code, out, err = load(dir, S.q(dir .. "/in.ndjson") .. " --index lost --batch-docs 500 --concurrency 1 "
        .. extra .. " --url " .. proxy.url)
      assert.equal(1, proxy:stats().reset_responses)
      return code, json.decode(out), err
    end

    it("with client-side ids (the default): indexed exactly once", function()
      local code, summary, err = run("")
      assert.equal(0, code, err)
      assert.equal(3000, summary.ok)
      assert.equal(3000, count(server.url, "lost"))
    end)

    it("with client-side ids and --op create: the retried creates' 409s are done, not dead-lettered", function()
      local code, summary, err = run("--op create")
      assert.equal(0, code, err)
      assert.equal(3000, summary.ok)
      assert.equal(500, summary.conflicts)
      assert.equal(0, summary.failed)
      assert.equal(3000, count(server.url, "lost"))
      assert.same({}, left_behind(dir, "in.ndjson"))
    end)

    it("with --server-ids: the retried batch is indexed twice, as documented", function()
      local code, summary, err = run("--server-ids")
      assert.equal(0, code, err)
      assert.equal(3000, summary.ok)
      assert.equal(3500, count(server.url, "lost"))
    end)
  end)
end)
