-- Progress of a job: on a terminal one line redrawn in place (at most every
-- redraw seconds, cut to the terminal's width so it never wraps), otherwise
-- a log line every interval seconds (10). Percent and ETA when the total is
-- known; docs/s and MB/s over a moving window of the last few seconds.
--
--   local p = progress.new{ label = "load", total = n (or set p.total later), unit = "docs"|"bytes",
--                           quiet =, out = io.stderr, tty = nil (auto), width = nil (auto),
--                           interval = 10, redraw = 0.25, window = 10, clock = fn (seconds) }
--   p:update{ done = docs, bytes = bytes processed, position = in the total's unit
--             (default done), retries =, failed =, tuning = "c=6 b=8MB" (auto bulk settings),
--             slowest = "slowest: worker 2 at 31%" (with workers or parts) }
--   p:message(text)  a line of its own: the progress line is cleared first, redrawn at the next update
--   p:clear()        clears the progress line (before the summary)
--   p.base           counts of earlier runs of a resumed job (done, position), added to this run's
local M = {}
local Progress = {}
Progress.__index = Progress

local function is_tty(fd)
  local ok, how, code = os.execute("test -t " .. fd)
  if type(ok) == "number" then return ok == 0 end -- Lua 5.1
  return ok == true and how == "exit" and code == 0
end
M.is_tty = is_tty

-- The width of the terminal on stderr ($COLUMNS first); 80 when unknown.
function M.terminal_width()
  local cols = tonumber(os.getenv("COLUMNS") or "")
  if cols and cols > 0 then return cols end
  local p = io.popen("stty size <&2 2>/dev/null")
  local line = p and p:read("*l")
  if p then p:close() end
  cols = line and tonumber(line:match("^%d+%s+(%d+)"))
  return cols and cols > 0 and cols or 80
end

local function default_clock()
  local ok, clock = pcall(function() return require("espipe.transport").clock() end)
  return ok and clock or os.time
end

local function human_duration(s)
  if not s or s ~= s or s == math.huge then return "?" end
  s = math.floor(s + 0.5)
  local floor = math.floor
  if s >= 3600 then return string.format("%dh%02dm", floor(s / 3600), floor((s % 3600) / 60)) end
  if s >= 60 then return string.format("%dm%02ds", floor(s / 60), s % 60) end
  return s .. "s"
end
M.human_duration = human_duration

-- 1234567 -> "1.2M", 15864 -> "15.9k", 950 -> "950"
local function short_count(n)
  if n >= 1e6 then return string.format("%.1fM", n / 1e6) end
  if n >= 1e4 then return string.format("%.1fk", n / 1e3) end
  return string.format("%.0f", n)
end
M.short_count = short_count

local function megabytes(n) return string.format("%.1f MB", n / 1e6) end
M.megabytes = megabytes

function M.new(opts)
  opts = opts or {}
  local self = setmetatable({
    label = opts.label or "espipe", total = opts.total, unit = opts.unit or "docs", quiet = opts.quiet,
    out = opts.out or io.stderr, clock = opts.clock or default_clock(),
    done = 0, bytes = 0, retries = 0, failed = 0, base = { done = 0, position = 0 },
    window = opts.window or 10, samples = {}, shown = false, position = 0,
  }, Progress)
  if opts.tty == nil then self.tty = not self.quiet and is_tty(2) else self.tty = opts.tty end
  self.interval = self.tty and (opts.redraw or 0.25) or (opts.interval or 10)
  self.width = opts.width or (self.tty and M.terminal_width()) or nil
  self.started = self.clock()
  self.last = self.started
  self.samples[1] = { t = self.started, done = 0, bytes = 0, position = 0 }
  return self
end

-- Rates over the moving window: docs/s, bytes/s, position/s (nil before any time passed).
function Progress:rates(now)
  local first = self.samples[1]
  local dt = now - first.t
  if dt <= 0 then return nil end
  return (self.done - first.done) / dt, (self.bytes - first.bytes) / dt, (self.position - first.position) / dt
end

function Progress:sample(now)
  local s = self.samples
  s[#s + 1] = { t = now, done = self.done, bytes = self.bytes, position = self.position }
  -- keep one sample older than the window, so the window spans it whole
  while #s > 2 and now - s[2].t >= self.window do table.remove(s, 1) end
end

-- The parts of the line, each with the order it is left out in when the
-- terminal is too narrow (1 first; 0 never: percent, docs, rate, ETA,
-- retries, failures and the adaptive settings stay).
function Progress:parts(now)
  local docs_rate, byte_rate, pos_rate = self:rates(now)
  local parts = {}
  local function add(text, drop) parts[#parts + 1] = { text, drop or 0 } end
  local total, position = self.total, self.base.position + (self.position or 0)
  if total and total > 0 then add(string.format("%.0f%%", math.min(100, 100 * position / total))) end
  if self.unit == "bytes" and total then
    add(string.format("%.1f/%.1f MB", position / 1e6, total / 1e6), 1)
  end
  add(short_count(self.base.done + self.done) .. " docs")
  if docs_rate then
    add(short_count(docs_rate) .. " docs/s")
    if self.bytes > 0 then add(string.format("%.1f MB/s", byte_rate / 1e6), 2) end
    if total and pos_rate and pos_rate > 0 and position < total then
      add("ETA " .. human_duration((total - position) / pos_rate))
    end
  end
  add(self.retries .. " retries")
  add(self.failed .. " failed")
  if self.tuning then add(self.tuning) end
  if self.slowest then add(self.slowest, 1) end
  return parts
end

local function joined(label, parts)
  local texts = {}
  for _, p in ipairs(parts) do texts[#texts + 1] = p[1] end
  return label .. ": " .. table.concat(texts, ", ")
end

function Progress:line(now)
  local parts = self:parts(now or self.clock())
  local s = joined(self.label, parts)
  -- one column left free: a line ending in the last column wraps on some terminals
  local room = self.width and self.width - 1
  for drop = 1, 2 do
    if not room or #s <= room then break end
    for i = #parts, 1, -1 do if parts[i][2] == drop then table.remove(parts, i) end end
    s = joined(self.label, parts)
  end
  if room and #s > room then s = s:sub(1, room) end
  return s
end

function Progress:show(now)
  if self.tty then
    self.out:write("\r", self:line(now), "\027[K")
    self.shown = true
  else
    self.out:write(self:line(now), "\n")
  end
  self.out:flush()
end

function Progress:update(t)
  if t.done then self.done = t.done end
  if t.bytes then self.bytes = t.bytes end
  if t.retries then self.retries = t.retries end
  if t.failed then self.failed = t.failed end
  if t.tuning then self.tuning = t.tuning end
  if t.slowest then self.slowest = t.slowest end
  self.position = t.position or (self.unit == "docs" and self.done) or self.position or 0
  if self.quiet then return end
  local now = self.clock()
  if now - self.last < self.interval then return end
  self.last = now
  self:sample(now)
  self:show(now)
end

-- The drawn line is done with: wiped (clear) or kept (complete).
function Progress:_leave_line(ending)
  self.out:write(ending)
  self.out:flush()
  self.shown = false
end

function Progress:clear()
  if self.shown then self:_leave_line("\r\027[K") end
end

function Progress:message(text)
  self:clear()
  self.out:write(text, "\n")
  self.out:flush()
end

function Progress:elapsed() return self.clock() - self.started end

-- The job ended: its last progress line is drawn once more with the final
-- counts (whole = true: all of the total was read) and kept, ended by a newline.
function Progress:complete(t)
  if self.quiet then return end
  t = t or {}
  for _, k in ipairs { "done", "retries", "failed" } do
    if t[k] then self[k] = t[k] end
  end
  if t.whole and self.total then self.position = self.total - self.base.position
  elseif self.unit == "docs" then self.position = self.done end
  local now = self.clock()
  self:sample(now)
  self:show(now)
  if self.tty then self:_leave_line("\n") end
end

return M
