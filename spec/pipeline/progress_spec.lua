-- Progress output with a controlled clock and terminal width.
local progress = require "espipe.pipeline.progress"

local function sink()
  local buf = {}
  return { write = function(self, ...) for _, s in ipairs { ... } do buf[#buf + 1] = s end return self end,
           flush = function() end, text = function() return table.concat(buf) end }
end

local function job(opts)
  local clock = { now = 100 }
  local out = sink()
  opts.out, opts.clock = out, function() return clock.now end
  return progress.new(opts), out, clock
end

describe("progress", function()
  it("logs a line every interval (10 s) when not on a terminal, with percent, rates and ETA", function()
    local p, out, clock = job { label = "reindex", total = 1000, tty = false }
    clock.now = 105; p:update { done = 300, bytes = 3e6 }
    assert.equal("", out.text())
    clock.now = 110; p:update { done = 500, bytes = 5e6, retries = 2, failed = 1 }
    assert.equal("reindex: 50%, 500 docs, 50 docs/s, 0.5 MB/s, ETA 10s, 2 retries, 1 failed\n", out.text())
  end)

  it("takes the percent from bytes read when the total is a file's size", function()
    local p, out, clock = job { label = "load", total = 4e6, unit = "bytes", tty = false }
    clock.now = 110; p:update { done = 20000, bytes = 3e6, position = 1e6 }
    assert.equal("load: 25%, 1.0/4.0 MB, 20.0k docs, 2000 docs/s, 0.3 MB/s, ETA 30s, 0 retries, 0 failed\n",
      out.text())
  end)

  it("measures rates over the moving window, not since the start", function()
    local p, out, clock = job { label = "x", tty = false, interval = 10, window = 10 }
    clock.now = 110; p:update { done = 10000 } -- 1000 docs/s for the first 10 s
    clock.now = 120; p:update { done = 10100 } -- then 10 docs/s
    clock.now = 130; p:update { done = 10200 }
    local last = out.text():match("([^\n]*)\n$")
    assert.matches(" 10 docs/s", last)
  end)

  it("keeps the adaptive bulk settings visible", function()
    local p, out, clock = job { label = "load", tty = false }
    clock.now = 110; p:update { done = 500, tuning = "c=6 b=8MB" }
    assert.equal("load: 500 docs, 50 docs/s, 0 retries, 0 failed, c=6 b=8MB\n", out.text())
  end)

  it("names the slowest worker, and leaves it out first on a narrow terminal", function()
    local p, out, clock = job { label = "reindex", total = 1000, tty = false }
    clock.now = 110; p:update { done = 500, slowest = "slowest: worker 2 at 31%" }
    assert.equal("reindex: 50%, 500 docs, 50 docs/s, ETA 10s, 0 retries, 0 failed, slowest: worker 2 at 31%\n",
      out.text())
    local narrow, nout, nclock = job { label = "reindex", total = 1000, tty = true, width = 60 }
    nclock.now = 110; narrow:update { done = 500, slowest = "slowest: worker 2 at 31%" }
    assert.is_nil(nout.text():find("slowest", 1, true))
    assert.matches("ETA 10s", nout.text())
  end)

  it("on a terminal redraws one line, at most every redraw seconds, cut to the width", function()
    local p, out, clock = job { label = "load", total = 1e6, tty = true, width = 40, redraw = 0.25 }
    clock.now = 100.1; p:update { done = 10 }
    assert.equal("", out.text()) -- too soon
    clock.now = 100.3; p:update { done = 20 }
    clock.now = 100.4; p:update { done = 30 }
    clock.now = 100.6; p:update { done = 40 }
    local text = out.text()
    assert.equal(2, select(2, text:gsub("\r", "")))
    assert.is_nil(text:find("\n"))
    for line in text:gmatch("\r([^\r]*)\027%[K") do assert.is_true(#line <= 39, line) end
  end)

  it("on a narrow terminal leaves out the bytes first, then MB/s, and keeps the adaptive settings", function()
    local p, out, clock = job { label = "load", total = 15e6, unit = "bytes", tty = false, width = 80 }
    clock.now = 110; p:update { done = 123456, bytes = 5e6, position = 5e6, tuning = "c=16 b=40MB" }
    assert.equal("load: 33%, 123.5k docs, 12.3k docs/s, ETA 20s, 0 retries, 0 failed, c=16 b=40MB\n", out.text())
    local p2, out2, clock2 = job { label = "load", total = 15e6, unit = "bytes", tty = false, width = 90 }
    clock2.now = 110; p2:update { done = 123456, bytes = 5e6, position = 5e6, tuning = "c=16 b=40MB" }
    assert.matches("12.3k docs/s, 0.5 MB/s, ETA", out2.text())
  end)

  it("clears the line before a message and redraws at the next update", function()
    local p, out, clock = job { label = "load", tty = true, width = 80 }
    clock.now = 101; p:update { done = 10 }
    p:message("espipe load: a warning")
    assert.matches("\r\027%[Kespipe load: a warning\n$", out.text())
    clock.now = 102; p:update { done = 20 }
    assert.matches("\rload: 20 docs", out.text())
  end)

  it("completes at 100% of the total and keeps the last line", function()
    local p, out, clock = job { label = "load", total = 5e6, unit = "bytes", tty = true, width = 120 }
    clock.now = 101; p:update { done = 10, position = 1e6 }
    clock.now = 102; p:complete { done = 50, whole = true }
    local last = out.text():match("\r([^\r]*)\n$")
    assert.matches("^load: 100%%, 5.0/5.0 MB, 50 docs, ", last)
  end)

  it("adds the counts of the earlier runs of a resumed job", function()
    local p, out, clock = job { label = "reindex", total = 1000, tty = false }
    p.base = { done = 600, position = 600 }
    clock.now = 110; p:update { done = 200 }
    assert.matches("^reindex: 80%%, 800 docs, 20 docs/s, ETA 10s", out.text())
  end)

  it("quiet prints nothing", function()
    local p, out, clock = job { quiet = true }
    clock.now = 200; p:update { done = 5 }
    p:complete { done = 5 }
    assert.equal("", out.text())
    assert.equal("2h05m", progress.human_duration(7500))
  end)
end)
