-- espipe load: bad input lines and interrupted loads lose nothing. Every
-- line ends indexed, in a dead letter, or (with stop) after the line the job
-- stopped at; counted by reading the dev server directly.
local json = require "espipe.json"
local S = require "pipeline.support"
local J = require "pipeline.jobs"

local function records(path)
  local f = io.open(path, "rb")
  if not f then return {} end
  local out = {}
  for l in f:lines() do out[#out + 1] = json.decode(l) end
  f:close()
  return out
end

local function base64_decode(s, dir)
  S.write(dir .. "/b64", s)
  return S.sh("base64 -d " .. S.q(dir .. "/b64"))
end

local function number_in(path)
  local p = io.open(path, "rb")
  local s = p and p:read("*l")
  if p then p:close() end
  return tonumber(s)
end

local function summary_of(text)
  for l in text:gmatch("[^\n]+") do
    if l:sub(1, 1) == "{" then return json.decode(l) end
  end
end

describe("espipe load, bad lines and interrupts #server", function()
  local env = require("pipeline.load_env").new()
  setup(env.start) teardown(env.stop) before_each(env.fresh)
  local server, dir
  before_each(function() server, dir = env.server, env.dir end)

  local count = env.count

  it("skips a line with invalid UTF-8 into the dead letter, raw bytes in base64, and indexes the rest", function()
    local dl = dir .. "/dl"
    local cmd = [[printf '{"id":"a"}\n{"id":"b","x":"\xff"}\n' | ]] .. J.bin
      .. " load - --index t --id-field id --on-bad-line skip --url " .. server.url .. " --dead-letter " .. dl
    local code = J.exec("bash -c " .. S.q(cmd) .. " >" .. S.q(dir .. "/out") .. " 2>" .. S.q(dir .. "/err"))
    local err = S.read(dir .. "/err")
    assert.equal(1, code, err)
    assert.is_nil(err:find("usage:", 1, true))
    assert.matches("bad lines%s+1\n", err)
    assert.matches("line 2, byte 26", err, 1, true)
    assert.matches(dl .. ".input", err, 1, true)
    assert.equal(1, count("t"))
    local recs = records(dl .. ".input")
    assert.equal(1, #recs)
    assert.equal(2, recs[1].line)
    assert.equal(11, recs[1].offset)
    assert.matches("UTF%-8", recs[1].error)
    assert.equal('{"id":"b","x":"\255"}', base64_decode(recs[1].raw_base64, dir))
  end)

  -- 6,000 lines, every 400th one bad in a different way
  local BAD = { '{"id":"x","v":"\255\254"}', '{"id":"x",', "[1,2,3]", '{"no_id":1}', "not json", '"a string"' }
  local function write_mixed(path)
    local f = assert(io.open(path, "wb"))
    local lines = {}
    for i = 1, 6000 do
      local l
      if i % 400 == 0 then l = BAD[(i / 400) % #BAD + 1] else l = string.format('{"id":"d%d","n":%d}', i, i) end
      lines[i] = l
      f:write(l, "\n")
    end
    f:close()
    return lines
  end

  it("accounts for every line of a 6,000-line file with bad lines: indexed + dead letter == input", function()
    local lines = write_mixed(dir .. "/mixed.ndjson")
    local dl = dir .. "/dl"
    local code, _, err = J.espipe("load " .. S.q(dir .. "/mixed.ndjson") .. " --index mixed --id-field id --on-bad-line skip"
      .. " --batch-docs 500 --url " .. server.url .. " --dead-letter " .. S.q(dl))
    assert.equal(1, code, err)
    local bad = records(dl .. ".input")
    local rejected = records(dl)
    assert.equal(15, #bad)
    assert.equal(6000, count("mixed") + #bad + #rejected)
    for _, r in ipairs(bad) do
      assert.equal(0, r.line % 400)
      assert.equal(lines[r.line], base64_decode(r.raw_base64, dir))
    end
  end)

  it("stops at the first bad line naming line and byte, after indexing everything before it", function()
    local f = assert(io.open(dir .. "/stop.ndjson", "wb"))
    local offset = 0
    for i = 1, 6000 do
      local l = i == 4500 and '{"id":"x","v":"\255"}' or string.format('{"id":"d%d"}', i)
      if i == 4500 then offset = f:seek() end
      f:write(l, "\n")
    end
    f:close()
    local code, _, err = J.espipe("load " .. S.q(dir .. "/stop.ndjson") .. " --index stopped --id-field id --batch-docs 700"
      .. " --url " .. server.url .. " --dead-letter " .. S.q(dir .. "/dl"))
    assert.equal(1, code, err)
    assert.matches("line 4500, byte " .. (offset + 15), err, 1, true)
    assert.equal(4499, count("stopped"))
    assert.same({}, records(dir .. "/dl.input"))
  end)

  it("reports a line over --max-line-bytes with its number, without its bytes, and loads the lines after it", function()
    local dl = dir .. "/dl"
    local long = '{"id":"big","v":"' .. string.rep("x", 5000) .. '"}'
    S.write(dir .. "/long.ndjson", '{"id":"l1"}\n' .. long .. '\n{"id":"l3"}\n{"id":"l4"}\n')
    local code, _, err = J.espipe("load " .. S.q(dir .. "/long.ndjson") .. " --index longlines --id-field id"
      .. " --max-line-bytes 1000 --on-bad-line skip --url " .. server.url .. " --dead-letter " .. S.q(dl))
    assert.equal(1, code, err)
    assert.matches("line 2, byte 12", err, 1, true)
    assert.equal(3, count("longlines"))
    local recs = records(dl .. ".input")
    assert.equal(1, #recs)
    assert.same({ line = 2, offset = 12, bytes = #long, error = "line longer than 1000 bytes (--max-line-bytes)" }, recs[1])
    -- with stop, the same line ends the job after the line before it
    code, _, err = J.espipe("load " .. S.q(dir .. "/long.ndjson") .. " --index longstop --id-field id"
      .. " --max-line-bytes 1000 --url " .. server.url .. " --dead-letter " .. S.q(dir .. "/dl2"))
    assert.equal(1, code, err)
    assert.matches("line longer than 1000 bytes (--max-line-bytes) at line 2, byte 12", err, 1, true)
    assert.equal(1, count("longstop"))
  end)

  it("skips a CSV row with invalid UTF-8 instead of failing the job", function()
    local dl = dir .. "/dl"
    S.write(dir .. "/in.csv", "id,name\n1,ok\n2,caf\233\n3,fine\n")
    local code, _, err = J.espipe("load " .. S.q(dir .. "/in.csv") .. " --format csv --index csvutf --id-field id"
      .. " --on-bad-line skip --url " .. server.url .. " --dead-letter " .. S.q(dl))
    assert.equal(1, code, err)
    assert.equal(2, count("csvutf"))
    local recs = records(dl .. ".input")
    assert.equal(1, #recs)
    assert.equal(3, recs[1].line)
    assert.matches("invalid UTF%-8 in column name", recs[1].error)
    assert.equal("2,caf\233", base64_decode(recs[1].raw_base64, dir))
  end)

  it("flushes what it accepted when the job fails mid-load (the bad-line dead letter cannot be written)", function()
    local f = assert(io.open(dir .. "/e.ndjson", "wb"))
    for i = 1, 6000 do f:write(i == 3001 and "[1]" or string.format('{"id":"e%d"}', i), "\n") end
    f:close()
    assert.equal(0, J.exec("mkdir " .. S.q(dir .. "/dl.input"))) -- a directory where the file should go
    local code, _, err = J.espipe("load " .. S.q(dir .. "/e.ndjson") .. " --index errpath --id-field id --on-bad-line skip"
      .. " --batch-docs 700 --url " .. server.url .. " --dead-letter " .. S.q(dir .. "/dl"))
    assert.equal(1, code, err)
    assert.matches("cannot open dead letter", err, 1, true)
    assert.is_nil(err:find("usage:", 1, true))
    assert.equal(3000, count("errpath"))
  end)

  it("replays a dead letter holding bad-line records: documents loaded, bad lines counted and named", function()
    local dl = dir .. "/dl"
    S.write(dir .. "/in.ndjson", '{"id":"r1"}\nnot json\n{"id":"r2"}\n')
    assert.equal(1, (J.espipe("load " .. S.q(dir .. "/in.ndjson") .. " --index replayed --id-field id --on-bad-line skip"
      .. " --url " .. server.url .. " --dead-letter " .. S.q(dl))))
    -- an indexer dead-letter record next to the bad-line record
    local f = assert(io.open(dl .. ".input", "ab"))
    f:write('{"action":{"index":{"_index":"replayed","_id":"r3"}},"source":{"id":"r3"},"status":429}\n')
    f:close()
    local code, _, err = J.espipe("load " .. S.q(dl .. ".input") .. " --format deadletter --url " .. server.url
      .. " --dead-letter " .. S.q(dir .. "/dl2"))
    assert.equal(1, code, err)
    assert.matches("unreplayable%s+1\n", err)
    assert.matches("line 2 of the original input", err, 1, true)
    assert.equal(3, count("replayed"))
  end)

  -- Starts a load reading a FIFO the spec writes to, so the signal arrives
  -- while the job waits for input with a partial batch in hand. Once a write
  -- of 500 kB returns, at most the pipe's 64 kB and one partly read 64 kB
  -- chunk are unread: the job has taken well over 2,000 lines.
  local function interrupted_load(sig, index, from_stdin)
    local fifo = dir .. "/in.fifo"
    assert.equal(0, J.exec("mkfifo " .. S.q(fifo)))
    local log, rcf, pidf = dir .. "/log", dir .. "/rc", dir .. "/pid"
    local input = from_stdin and ("- <" .. S.q(fifo)) or S.q(fifo)
    J.exec("(env --default-signal=INT,TERM " .. J.bin .. " load " .. input .. " --index " .. index
      .. " --id-field id --json --url " .. server.url .. " --dead-letter " .. S.q(dir .. "/dl")
      .. " >" .. S.q(log) .. " 2>&1 & echo $! >" .. S.q(pidf) .. "; wait $!; echo $? >" .. S.q(rcf) .. ") &")
    local w = assert(io.open(fifo, "wb"))
    local pid = J.wait_for(function() return number_in(pidf) end, 30, "the load's pid")
    for i = 1, 5000 do w:write(string.format('{"id":"s%d","pad":"%s"}\n', i, string.rep("x", 80))) end
    w:flush()
    assert.equal(0, J.exec("kill -" .. sig .. " " .. pid))
    local exited, rc = pcall(J.wait_for, function() return number_in(rcf) end, 60, "the load to exit")
    if not exited then
      J.exec("kill -9 " .. pid .. " 2>/dev/null")
      error(rc .. "; its output: " .. S.read(log), 0)
    end
    w:close()
    local out = S.read(log)
    return rc, summary_of(out), out
  end

  it("on SIGINT while waiting for the first input line, exits at once with nothing lost (nothing read)", function()
    local fifo = dir .. "/in.fifo"
    assert.equal(0, J.exec("mkfifo " .. S.q(fifo)))
    local log, rcf, pidf = dir .. "/log", dir .. "/rc", dir .. "/pid"
    J.exec("(env --default-signal=INT,TERM " .. J.bin .. " load - <" .. S.q(fifo) .. " --index waiting --json --url "
      .. server.url .. " >" .. S.q(log) .. " 2>&1 & echo $! >" .. S.q(pidf) .. "; wait $!; echo $? >" .. S.q(rcf) .. ") &")
    local w = assert(io.open(fifo, "wb"))
    local pid = J.wait_for(function() return number_in(pidf) end, 30, "the load's pid")
    -- blocked reading the pipe (the kernel says where the process waits)
    J.wait_for(function()
      local f = io.open("/proc/" .. pid .. "/wchan", "rb")
      local where = f and f:read("*a") or ""
      if f then f:close() end
      return where:find("pipe") ~= nil
    end, 30, "the load to wait for input")
    assert.equal(0, J.exec("kill -INT " .. pid))
    local rc = J.wait_for(function() return number_in(rcf) end, 30, "the load to exit")
    w:close()
    local out = S.read(log)
    assert.equal(130, rc, out)
    assert.equal("SIGINT", summary_of(out).interrupted)
    assert.equal(0, summary_of(out).read)
  end)

  for _, case in ipairs { { "INT", 130 }, { "TERM", 143 }, { "INT", 130, "stdin" } } do
    local from = case[3] and " reading stdin" or ""
    it("on SIG" .. case[1] .. from .. " mid-load flushes what it accepted: server count == summary, nothing lost", function()
      local index = "sig-" .. case[1]:lower() .. (case[3] and "-stdin" or "")
      local rc, summary, out = interrupted_load(case[1], index, case[3])
      assert.equal(case[2], rc, out)
      assert.is_table(summary, out)
      assert.equal("SIG" .. case[1], summary.interrupted)
      assert.is_true(summary.read >= 2000, out)
      assert.equal(summary.read, summary.ok + summary.failed)
      assert.equal(summary.ok, count(index))
      assert.equal(summary.failed, #records(dir .. "/dl"))
      assert.matches("interrupted by SIG" .. case[1], out)
    end)
  end
end)
