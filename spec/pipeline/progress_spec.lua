-- Progress output with a controlled clock.
local progress = require "espipe.pipeline.progress"

local function sink()
  local buf = {}
  return { write = function(self, ...) for _, s in ipairs { ... } do buf[#buf + 1] = s end return self end,
           flush = function() end, text = function() return table.concat(buf) end }
end

describe("progress", function()
  it("logs a line per interval when not on a terminal, with rate and ETA", function()
    local now = 100
    local out = sink()
    local p = progress.new { label = "load", total = 1000, out = out, tty = false, interval = 5,
      clock = function() return now end }
    now = 103; p:update { done = 300 }
    assert.equal("", out.text())
    now = 110; p:update { done = 500, retries = 2, failed = 1 }
    assert.equal("load: 500/1000 (50%) docs, 50 docs/s, ETA 10s, 2 retries, 1 failed\n", out.text())
  end)

  it("shows the adaptive bulk settings when the indexer reports them", function()
    local now = 100
    local out = sink()
    local p = progress.new { label = "load", out = out, tty = false, interval = 5, clock = function() return now end }
    now = 110; p:update { done = 500, tuning = "c=6 b=8MB" }
    assert.equal("load: 500 docs, 50 docs/s, 0 retries, 0 failed, c=6 b=8MB\n", out.text())
  end)

  it("redraws one line with \\r on a terminal and clears it before the summary", function()
    local now = 0
    local out = sink()
    local p = progress.new { label = "x", out = out, tty = true, interval = 1, clock = function() return now end }
    now = 1; p:update { done = 10 }
    now = 2; p:update { done = 20 }
    local text = out.text()
    assert.equal(2, select(2, text:gsub("\r", "")))
    assert.is_nil(text:find("\n"))
    p:finish({ ok = 20 })
    assert.matches("x done: elapsed=2 ok=20\n$", out.text())
  end)

  it("quiet prints nothing; json writes the summary to stdout", function()
    local out = sink()
    local p = progress.new { quiet = true, out = out, clock = function() return 0 end }
    p:update { done = 5 }
    p:finish({ ok = 5 })
    assert.equal("", out.text())
    assert.equal("2h05m", progress.human_duration(7500))
  end)
end)
