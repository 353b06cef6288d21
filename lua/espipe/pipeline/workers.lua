-- A pool of worker processes: N children running this same espipe, each with
-- its own Lua state and transport. The parent reads their newline-delimited
-- JSON records without blocking, may feed their stdin, forwards SIGINT and
-- SIGTERM to them, reaps them and names a child that a signal killed.
-- Processes, not threads: no Lua state is shared (espipe.core's process_*).
--
--   workers.cpus() -> online CPUs
--   workers.command(args) -> argv running this espipe (the interpreter and
--       script of the running one) with args appended
--   local pool, err = workers.start{
--     count = N,
--     argv = function(i) -> argv of worker i (1..N), e.g. workers.command{...},
--     stdin = false,    -- true: a pipe to each worker's stdin (pool:write)
--   }                   -> pool | nil, err (nothing left running on failure)
--   pool:poll(seconds) -> events, waiting at most seconds for the first one:
--       { worker = i, kind = "record", record = <decoded JSON object> }
--       { worker = i, kind = "output", line = "..." }   a stdout line that is not a JSON object
--       { worker = i, kind = "stderr", line = "..." }
--       { worker = i, kind = "exit", code = 0 }  |  { worker = i, kind = "exit", signal = "SIGKILL" }
--     A signal received by this process (espipe.core's signals_trap) is
--     forwarded to every live worker once, as it arrives.
--   pool:write(i, bytes)       queue bytes for worker i's stdin (sent as the pipe takes them)
--   pool:pending(i)            bytes still queued for worker i
--   pool:close_input(i)        close worker i's stdin once its queue is sent (it sees end of file)
--   pool:signal(sig)           "SIGTERM" | "SIGINT" | "SIGKILL" to every live worker
--   pool:live()                number of workers not yet reaped
--   pool:wait(on_event [, seconds]) -> exits: polls until every worker exited,
--       calling on_event(event) for each event; exits[i] = { code = } | { signal = }
--   pool:close()               SIGKILL and reap whatever still runs, close every pipe
--                              (for error paths; a no-op once all exited)
--   workers.failure(i, exit, pid, last_stderr) -> a readable message naming the worker and
--       its signal or exit code, or nil when it exited 0
--
-- On the worker side:
--   workers.emit(record)       one JSON line on stdout, flushed (the parent's record event)
local core = require "espipe.core"
local json = require "espipe.json"

local M = {}

-- A line longer than this is not a record: stop buffering it.
local MAX_LINE = 16 * 1024 * 1024
-- A worker whose pipes are closed but is not reaped yet is looked at again after this.
local REAP_STEP = 0.05

function M.cpus() return core.process_cpus() end

function M.command(args)
  local interp = arg and arg[-1] or "lua"
  local script = arg and arg[0] or "espipe"
  local argv = { interp, script }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = tostring(a) end
  return argv
end

function M.emit(record)
  io.stdout:write(json.encode(record), "\n")
  io.stdout:flush()
end

local Pool = {}
Pool.__index = Pool

local function new_worker(i, proc)
  return { index = i, pid = proc.pid, stdout = proc.stdout, stdin = proc.stdin, stderr = proc.stderr,
    bufs = { stdout = "", stderr = "" }, queue = {}, queued = 0, close_after = false, exit = nil,
    last_stderr = nil }
end

function M.start(opts)
  if type(opts) ~= "table" then error("workers.start: expected an options table", 2) end
  require("espipe.client.options").check(opts, { "count", "argv", "stdin" }, "workers.start", 2)
  local count = opts.count
  if type(count) ~= "number" or count < 1 or count % 1 ~= 0 then error("workers.start: count must be a positive integer", 2) end
  if type(opts.argv) ~= "function" then error("workers.start: argv must be a function(i)", 2) end
  local pool = setmetatable({ workers = {}, forwarded = {} }, Pool)
  for i = 1, count do
    local proc, err = core.process_spawn(opts.argv(i), { stdin = opts.stdin and true or false, stderr = true })
    if not proc then
      pool:close()
      return nil, require("espipe.client.errors").new { kind = "workers", message = "cannot start worker " .. i .. ": " .. tostring(err) }
    end
    pool.workers[i] = new_worker(i, proc)
  end
  return pool
end

local function close_fd(w, key)
  if w[key] then core.fd_close(w[key]) w[key] = nil end
end

-- Splits what arrived on one pipe into line events.
local function lines_of(w, key, chunk, events)
  local buf = w.bufs[key] .. chunk
  local start = 1
  while true do
    local nl = buf:find("\n", start, true)
    if not nl then break end
    events[#events + 1] = { worker = w.index, kind = key, line = buf:sub(start, nl - 1) }
    start = nl + 1
  end
  buf = buf:sub(start)
  if #buf > MAX_LINE then
    events[#events + 1] = { worker = w.index, kind = key, line = buf }
    buf = ""
  end
  w.bufs[key] = buf
end

-- Reads what one pipe has; at end of file flushes an unterminated last line.
local function drain(w, key, events)
  while w[key] do
    local chunk, err = core.fd_read(w[key])
    if chunk == "" then return end
    if not chunk then
      if w.bufs[key] ~= "" then lines_of(w, key, "\n", events) end
      close_fd(w, key)
      if err then events[#events + 1] = { worker = w.index, kind = "stderr", line = "read: " .. err } end
      return
    end
    lines_of(w, key, chunk, events)
  end
end

local function as_record(ev)
  if ev.kind ~= "stdout" then return ev end
  local ok, rec = pcall(json.decode, ev.line)
  if ok and type(rec) == "table" then return { worker = ev.worker, kind = "record", record = rec } end
  return { worker = ev.worker, kind = "output", line = ev.line }
end

local function feed(w)
  while w.stdin and #w.queue > 0 do
    local head = w.queue[1]
    local put, err = core.fd_write(w.stdin, head.data, head.at)
    if not put then -- the worker closed its stdin or died: its exit says why
      w.queue, w.queued = {}, 0
      close_fd(w, "stdin")
      return err
    end
    if put == 0 then return end
    head.at, w.queued = head.at + put, w.queued - put
    if head.at > #head.data then table.remove(w.queue, 1) end
  end
  if w.stdin and w.close_after and #w.queue == 0 then close_fd(w, "stdin") end
end

local function reap(w, events)
  if w.exit or w.stdout or w.stderr then return end
  local status, value = core.process_wait(w.pid)
  if status == "running" then return end
  close_fd(w, "stdin")
  if status == "signaled" then w.exit = { signal = value }
  elseif status == "exited" then w.exit = { code = value }
  else w.exit = { code = -1, error = value } end
  local ev = { worker = w.index, kind = "exit" }
  for k, v in pairs(w.exit) do ev[k] = v end
  events[#events + 1] = ev
end

function Pool:forward_signals()
  local sig = core.signals_received()
  if sig and not self.forwarded[sig] then
    self.forwarded[sig] = true
    self:signal(sig)
  end
end

local function wanted_fds(self)
  local reads, writes, waiting = {}, {}, false
  for _, w in ipairs(self.workers) do
    if w.stdout then reads[#reads + 1] = w.stdout end
    if w.stderr then reads[#reads + 1] = w.stderr end
    if w.stdin and #w.queue > 0 then writes[#writes + 1] = w.stdin end
    if not w.exit and not w.stdout and not w.stderr then waiting = true end
  end
  return reads, writes, waiting
end

function Pool:poll(seconds)
  self:forward_signals()
  local reads, writes, waiting = wanted_fds(self)
  local timeout = seconds or 0
  if waiting then timeout = math.min(timeout, REAP_STEP) end
  if #reads > 0 or #writes > 0 or timeout > 0 then
    local _, perr = core.fd_poll(reads, writes, math.floor(timeout * 1000))
    if perr then error("workers: " .. perr, 0) end
  end
  self:forward_signals()
  local raw = {}
  for _, w in ipairs(self.workers) do
    drain(w, "stdout", raw)
    drain(w, "stderr", raw)
    feed(w)
    reap(w, raw)
  end
  local events = {}
  for i, ev in ipairs(raw) do
    if ev.kind == "stderr" then self.workers[ev.worker].last_stderr = ev.line end
    events[i] = as_record(ev)
  end
  return events
end

function Pool:write(i, bytes)
  local w = self.workers[i]
  if not w or not w.stdin or w.close_after then return nil end
  if #bytes == 0 then return true end
  w.queue[#w.queue + 1] = { data = bytes, at = 1 }
  w.queued = w.queued + #bytes
  feed(w)
  return true
end

function Pool:pending(i) return self.workers[i].queued end

function Pool:close_input(i)
  local w = self.workers[i]
  w.close_after = true
  feed(w)
end

function Pool:signal(sig)
  for _, w in ipairs(self.workers) do
    if not w.exit then core.process_kill(w.pid, sig) end -- ESRCH: it is exiting, the reap tells
  end
end

function Pool:live()
  local n = 0
  for _, w in ipairs(self.workers) do if not w.exit then n = n + 1 end end
  return n
end

function Pool:pid(i) return self.workers[i].pid end

function Pool:last_stderr(i) return self.workers[i].last_stderr end

function Pool:wait(on_event, seconds)
  while self:live() > 0 do
    for _, ev in ipairs(self:poll(seconds or 0.25)) do on_event(ev) end
  end
  local exits = {}
  for i, w in ipairs(self.workers) do exits[i] = w.exit end
  return exits
end

function Pool:close()
  for _, w in ipairs(self.workers) do
    close_fd(w, "stdin")
    close_fd(w, "stdout")
    close_fd(w, "stderr")
    if not w.exit then
      core.process_kill(w.pid, "SIGKILL")
      local status, value = core.process_wait(w.pid, true)
      w.exit = status == "signaled" and { signal = value } or { code = value }
    end
  end
end

function M.failure(i, exit, pid, last_stderr)
  if not exit or exit.code == 0 then return nil end
  local who = "worker " .. i .. (pid and (" (pid " .. pid .. ")") or "")
  local why = exit.signal and ("was killed by " .. exit.signal) or ("exited with code " .. tostring(exit.code))
  local said = last_stderr and last_stderr ~= "" and (": " .. last_stderr) or ""
  return who .. " " .. why .. said
end

return M
