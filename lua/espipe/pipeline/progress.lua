-- Progress of a job: on a terminal one line redrawn in place (\r), otherwise a
-- log line every few seconds; a final summary always (unless quiet), and with
-- json=true a machine-readable summary on stdout.
--
--   local p = progress.new{ label = "reindex", total = n, quiet =, json =,
--                           out = io.stderr, tty = nil (auto), interval = s, clock = fn }
--   p:update{ done =, retries =, failed =, tuning = "c=6 b=8MB" (auto bulk settings) }
--   p:finish(summary_table) -> prints the summary
local M = {}
local Progress = {}
Progress.__index = Progress

local function is_tty(fd)
  local ok, how, code = os.execute("test -t " .. fd)
  if type(ok) == "number" then return ok == 0 end -- Lua 5.1
  return ok == true and how == "exit" and code == 0
end
M.is_tty = is_tty

local function human_duration(s)
  if not s or s ~= s or s == math.huge then return "?" end
  s = math.floor(s + 0.5)
  local floor = math.floor
  if s >= 3600 then return string.format("%dh%02dm", floor(s / 3600), floor((s % 3600) / 60)) end
  if s >= 60 then return string.format("%dm%02ds", floor(s / 60), s % 60) end
  return s .. "s"
end
M.human_duration = human_duration

function M.new(opts)
  opts = opts or {}
  local self = setmetatable({
    label = opts.label or "espipe", total = opts.total, quiet = opts.quiet, json = opts.json,
    out = opts.out or io.stderr, clock = opts.clock or os.time,
    done = 0, retries = 0, failed = 0,
  }, Progress)
  if opts.tty == nil then self.tty = not self.quiet and is_tty(2) else self.tty = opts.tty end
  self.interval = opts.interval or (self.tty and 1 or 5)
  self.started = self.clock()
  self.last = self.started
  return self
end

function Progress:line()
  local elapsed = self.clock() - self.started
  local rate = elapsed > 0 and self.done / elapsed or 0
  local s = string.format("%s: %d", self.label, self.done)
  if self.total then
    s = s .. string.format("/%d", self.total)
    if self.total > 0 then s = s .. string.format(" (%.0f%%)", 100 * self.done / self.total) end
  end
  s = s .. string.format(" docs, %.0f docs/s", rate)
  if self.total and rate > 0 and self.done < self.total then
    s = s .. ", ETA " .. human_duration((self.total - self.done) / rate)
  end
  s = s .. string.format(", %d retries, %d failed", self.retries, self.failed)
  if self.tuning then s = s .. ", " .. self.tuning end
  return s
end

function Progress:update(t)
  if t.done then self.done = t.done end
  if t.retries then self.retries = t.retries end
  if t.failed then self.failed = t.failed end
  if t.tuning then self.tuning = t.tuning end
  if self.quiet then return end
  local now = self.clock()
  if now - self.last < self.interval then return end
  self.last = now
  if self.tty then
    self.out:write("\r", self:line(), "\027[K")
  else
    self.out:write(self:line(), "\n")
  end
  self.out:flush()
end

-- summary: a flat table of counts (and strings); printed as one line on
-- stderr, and as JSON on stdout with json=true.
function Progress:finish(summary, encode)
  if self.tty and not self.quiet then self.out:write("\r\027[K") end
  summary.elapsed = summary.elapsed or (self.clock() - self.started)
  if self.json then
    io.stdout:write(encode(summary), "\n")
    io.stdout:flush()
  end
  if not self.quiet then
    local keys = {}
    for k in pairs(summary) do keys[#keys + 1] = k end
    table.sort(keys)
    local parts = {}
    for _, k in ipairs(keys) do
      local v = summary[k]
      if type(v) ~= "table" then parts[#parts + 1] = k .. "=" .. tostring(v) end
    end
    self.out:write(self.label, " done: ", table.concat(parts, " "), "\n")
    self.out:flush()
  end
end

return M
