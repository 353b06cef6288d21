-- The worker pool against real child processes (sh): records read without
-- blocking, stdin fed, a signal to the parent forwarded, a child killed by
-- a signal named, nothing left running.
local core = require "espipe.core"
local workers = require "espipe.pipeline.workers"

local function sh(script) return function() return { "sh", "-c", script } end end

local function collect(pool)
  local seen = {}
  local exits = pool:wait(function(ev) seen[#seen + 1] = ev end)
  return exits, seen
end

local function of_kind(events, kind)
  local out = {}
  for _, ev in ipairs(events) do if ev.kind == kind then out[#out + 1] = ev end end
  return out
end

describe("espipe.pipeline.workers #server", function()
  it("reads each worker's JSON records and exit code", function()
    local pool = assert(workers.start { count = 3, argv = function(i)
      return { "sh", "-c", 'echo \'{"type":"progress","n":' .. i .. '}\'; printf \'{"type":"stats","n":' .. (i * 10)
        .. '}\'; exit ' .. (i - 1) }
    end })
    local exits, events = collect(pool)
    local n = {}
    for _, ev in ipairs(of_kind(events, "record")) do n[#n + 1] = ev.worker .. ":" .. ev.record.type .. ":" .. ev.record.n end
    table.sort(n)
    assert.same({ "1:progress:1", "1:stats:10", "2:progress:2", "2:stats:20", "3:progress:3", "3:stats:30" }, n)
    assert.same({ { code = 0 }, { code = 1 }, { code = 2 } }, exits)
    assert.is_nil(workers.failure(1, exits[1]))
    assert.matches("worker 3 %(pid %d+%) exited with code 2", workers.failure(3, exits[3], pool:pid(3)))
  end)

  it("tells plain output and stderr lines apart from records", function()
    local pool = assert(workers.start { count = 1, argv = sh("echo not json; echo oops >&2; exit 0") })
    local _, events = collect(pool)
    assert.same({ "not json" }, { of_kind(events, "output")[1].line })
    assert.equal("oops", of_kind(events, "stderr")[1].line)
    assert.equal("oops", pool:last_stderr(1))
  end)

  it("feeds stdin larger than a pipe holds, then end of file", function()
    local pool = assert(workers.start { count = 2, stdin = true, argv = sh('printf \'{"bytes":%s}\\n\' "$(wc -c)"') })
    local big = string.rep("x", 300000)
    for i = 1, 2 do pool:write(i, big); pool:write(i, "tail"); pool:close_input(i) end
    local exits, events = collect(pool)
    local recs = of_kind(events, "record")
    assert.equal(2, #recs)
    assert.equal(300004, recs[1].record.bytes)
    assert.equal(300004, recs[2].record.bytes)
    assert.same({ { code = 0 }, { code = 0 } }, exits)
    assert.equal(0, pool:pending(1))
  end)

  it("names a worker killed by a signal", function()
    local pool = assert(workers.start { count = 2, argv = function(i)
      return { "sh", "-c", i == 2 and "kill -9 $$" or "exit 0" }
    end })
    local exits = collect(pool)
    assert.same({ signal = "SIGKILL" }, exits[2])
    assert.matches("worker 2 %(pid %d+%) was killed by SIGKILL", workers.failure(2, exits[2], pool:pid(2)))
  end)

  it("forwards a SIGTERM received by the parent to every worker, once", function()
    -- each child says it is ready, then waits; its TERM trap answers with a record
    local pool = assert(workers.start { count = 2, argv = sh(
      "trap 'kill $p; echo {\\\"got\\\":\\\"TERM\\\"}; exit 3' TERM; sleep 30 & p=$!; echo {\\\"ready\\\":true}; wait $p") })
    core.signals_trap()
    local ok, err = pcall(function()
      local ready, got = 0, {}
      local exits = pool:wait(function(ev)
        if ev.kind == "record" and ev.record.ready then
          ready = ready + 1
          if ready == 2 then os.execute("kill -TERM " .. core.process_id()) end
        elseif ev.kind == "record" and ev.record.got then
          got[#got + 1] = ev.record.got
        end
      end)
      assert.same({ "TERM", "TERM" }, got)
      assert.same({ { code = 3 }, { code = 3 } }, exits)
    end)
    core.signals_restore()
    pool:close()
    assert(ok, err)
  end)

  it("close() kills and reaps what still runs", function()
    local pool = assert(workers.start { count = 1, argv = sh("echo {}; exec sleep 30") })
    local pid = pool:pid(1)
    repeat local evs = pool:poll(1) until #evs > 0
    pool:close()
    assert.equal(0, pool:live())
    assert.is_nil(core.process_kill(pid, "SIGCONT")) -- reaped: no such process
  end)

  it("fails to start a program that does not exist, leaving nothing running", function()
    local pool, err = workers.start { count = 2, argv = function(i)
      return { i == 1 and "sh" or "/nonexistent/espipe", "-c", "exec sleep 30" }
    end }
    assert.is_nil(pool)
    assert.matches("cannot start worker 2: .*No such file", tostring(err))
  end)

  it("rejects wrong arguments", function()
    assert.has_error(function() workers.start { count = 0, argv = sh("true") } end)
    assert.has_error(function() workers.start { count = 1, argv = sh("true"), bogus = 1 } end)
  end)
end)
