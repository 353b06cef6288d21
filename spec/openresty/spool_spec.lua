-- The log shipper's on-disk spool on its own (plain files, no nginx): order,
-- the size cap and what it drops, reopening after a restart.
local spool = require "espipe.ngx.spool"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function tmpdir()
  local p = assert(io.popen("mktemp -d ${TMPDIR:-/tmp}/espipe-spool-unit.XXXXXX"))
  local d = p:read("*l")
  p:close()
  return d
end

local function files(dir)
  local out = {}
  local p = assert(io.popen("ls -1 " .. q(dir)))
  for f in p:lines() do out[#out + 1] = f end
  p:close()
  return out
end

-- every line the spool holds, oldest first, sending (finishing) each file
local function drain(s)
  local all = {}
  while not s:empty() do
    local e, lines = s:oldest()
    for _, l in ipairs(lines) do all[#all + 1] = l end
    s:finish(e, nil)
  end
  return all
end

local function line(i) return string.format("id-%d\t{\"n\":%d}", i, i) end

describe("espipe.ngx.spool", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)

  local function open(max, file)
    return assert(spool.open{ dir = dir, name = "worker-0", max_bytes = max or 1e6, file_bytes = file or 100 })
  end

  it("gives back appended lines oldest first, across files, and removes each file once sent", function()
    local s = open()
    for i = 1, 50 do assert.is_true(s:append(line(i))) end
    assert.is_true(s.files > 3, "small files: several of them")
    local expect = {}
    for i = 1, 50 do expect[i] = line(i) end
    assert.same(expect, drain(s))
    assert.same({}, files(dir))
    assert.same({ 0, 0, 0 }, { s.bytes, s.files, s.dropped })
  end)

  it("puts prepended lines before everything spooled", function()
    local s = open()
    for i = 3, 6 do s:append(line(i)) end
    s:prepend({ line(1), line(2) })
    assert.same({ line(1), line(2), line(3), line(4), line(5), line(6) }, drain(s))
  end)

  it("keeps what was not sent of a file, in place", function()
    local s = open(1e6, 1e6)
    for i = 1, 5 do s:append(line(i)) end
    local e, lines = s:oldest()
    assert.equal(5, #lines)
    s:append(line(6)) -- while the file is replayed, new lines start a new one
    s:finish(e, { line(4), line(5) })
    assert.same({ line(4), line(5), line(6) }, drain(s))
  end)

  it("drops the oldest file past max_bytes, counting its events, never the one being replayed", function()
    local one = #line(10) + 1 -- every line here has the same length
    local s = open(one * 20, one * 5)
    for i = 10, 29 do assert.is_true(s:append(line(i))) end
    assert.equal(0, s.dropped, "nothing dropped below the cap")
    local e = s:oldest() -- 10..14 being replayed
    assert.is_true(s:append(line(30)))
    assert.equal(5, s.dropped, "the oldest file not being replayed: 15..19")
    s:finish(e, nil)
    local left = drain(s)
    assert.equal(line(20), left[1])
    assert.equal(line(30), left[#left])
    assert.equal(11, #left)
    assert.is_true(s.bytes <= one * 20)
  end)

  it("finds an earlier nginx's files at open, in order, and writes them 0600", function()
    local s = open()
    for i = 1, 30 do s:append(line(i)) end
    s:close()
    local p = assert(io.popen("stat -c %a " .. q(dir) .. "/*.spool | sort -u"))
    assert.equal("600", p:read("*l"))
    p:close()
    local again = open()
    again:append(line(31))
    local got = drain(again)
    assert.equal(31, #got)
    assert.equal(line(1), got[1])
    assert.equal(line(31), got[31])
  end)

  it("takes in, on rescan, what the worker it replaces spooled as it exited (a reload)", function()
    local new = assert(spool.open{ dir = dir, name = "worker-0", pid = 2, max_bytes = 1e6, file_bytes = 100 })
    local old = assert(spool.open{ dir = dir, name = "worker-0", pid = 1, max_bytes = 1e6, file_bytes = 100 })
    for i = 1, 20 do old:append(line(i)) end
    old:close()
    assert.is_true(new:empty())
    assert.is_true(new:rescan() > 0)
    assert.equal(0, new:rescan(), "each file once")
    new:append(line(21))
    local got = drain(new)
    assert.equal(21, #got)
    assert.equal(line(1), got[1])
    assert.equal(line(21), got[21])
  end)

  it("keeps the files of another worker apart", function()
    local s = open()
    s:append(line(1))
    local other = assert(spool.open{ dir = dir, name = "worker-1", max_bytes = 1e6, file_bytes = 100 })
    assert.is_true(other:empty())
    other:append(line(2))
    assert.same({ line(1) }, drain(open()))
  end)

  it("creates a missing directory, and says which one when it cannot", function()
    assert.is_truthy(spool.open{ dir = dir .. "/a/b", name = "w", max_bytes = 1e6, file_bytes = 100 })
    local s, err = spool.open{ dir = "/proc/espipe-no", name = "w", max_bytes = 1e6, file_bytes = 100 }
    assert.is_nil(s)
    assert.matches("/proc/espipe%-no", err)
  end)
end)
