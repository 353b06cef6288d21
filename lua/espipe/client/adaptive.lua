-- Adaptive bulk concurrency and batch size: pure logic, no I/O, no clock of
-- its own (opts.now), so it can be driven by scripted timelines in specs.
--   concurrency: AIMD on round-trip time and rejections. While the RTT per
--     byte stays near its recent floor, add one slot per round of responses;
--     a 429 item, a 429/503 response or an RTT jump cuts it (once per round,
--     since the responses already in flight report the same overload). An
--     RTT jump also raises the floor to RTT / JUMP: when the cluster's
--     capacity falls (other tenants), growth resumes once the cut has
--     drained the queue, instead of waiting for the old floor to drift up
--     or cutting again and again.
--   batch size: hill-climbing on acknowledged docs/s, one step per epoch of
--     at least EPOCH_SECONDS and EPOCH_RESPONSES, between MIN_BATCH and the
--     cap; a 413 (or the server's http.max_content_length) lowers the cap.
--     An epoch whose RTT and RTT per byte both moved the same way by more
--     than SHIFT against the epoch before (a step of the batch size moves one
--     of them the other way or not at all), or that saw a cut, measured a
--     change of the cluster, not of the step: the climb keeps its direction
--     (a fall in docs/s there does not turn it round). At a bound the climb
--     turns and steps away on the next epoch: that epoch took no step, so
--     its docs/s against the one before says nothing about the batch size
--     (before, a fall there turned it back, and it stayed at the cap).
-- A fixed number for either value pins it; the other one still adapts.
local options = require("espipe.client.options")

local floor, max, min = math.floor, math.max, math.min

local M = {}

local MB = 1024 * 1024
M.MIN_BATCH = MB
M.DEFAULT_MAX_CONCURRENCY = 16
M.DEFAULT_MAX_BATCH = 20 * MB  -- no auto run went past 17 MB; worst case 20 MB x (16 + 1) in memory
M.START_CONCURRENCY = 2
M.START_BATCH = 5 * MB
M.EPOCH_SECONDS = 2
M.EPOCH_RESPONSES = 4
M.NEAR_FLOOR = 1.5   -- RTT per byte within this factor of the floor: room to grow
M.JUMP = 2.5         -- beyond this factor: the server queues, back off
M.FLOOR_DRIFT = 0.02 -- the floor forgets by 2% a second (the cluster's capacity changes)
M.BATCH_STEP = 1.5
M.SHIFT = 1.3        -- epoch RTT and RTT per byte both beyond this factor of the last epoch's: the cluster changed

local KNOWN = { concurrency = true, batch_bytes = true, max_concurrency = true,
                max_batch_bytes = true, now = true }

local Ctl = {}
Ctl.__index = Ctl

local function check_setting(v, name, lo)
  if v == nil or v == "auto" then return nil end
  if type(v) ~= "number" or v ~= floor(v) or v < lo then
    error("espipe.client.adaptive: " .. name .. " must be \"auto\" or an integer >= " .. lo
      .. ", got " .. tostring(v), 3)
  end
  return v
end

local function check_cap(v, name, lo, default)
  if v == nil then return default end
  if type(v) ~= "number" or v ~= floor(v) or v < lo then
    error("espipe.client.adaptive: " .. name .. " must be an integer >= " .. lo .. ", got " .. tostring(v), 3)
  end
  return v
end

-- new{ concurrency = "auto"|N, batch_bytes = "auto"|N, max_concurrency =,
--      max_batch_bytes =, now = function() return seconds end }
function M.new(opts)
  opts = options.check(opts or {}, KNOWN, "espipe.client.adaptive", 2)
  local fixed_c = check_setting(opts.concurrency, "concurrency", 1)
  local fixed_b = check_setting(opts.batch_bytes, "batch_bytes", 1)
  local max_c = check_cap(opts.max_concurrency, "max_concurrency", 1, M.DEFAULT_MAX_CONCURRENCY)
  local max_b = check_cap(opts.max_batch_bytes, "max_batch_bytes", 1, max(M.DEFAULT_MAX_BATCH, fixed_b or 0))
  if opts.now ~= nil and type(opts.now) ~= "function" then
    error("espipe.client.adaptive: now must be a function, got " .. type(opts.now), 2)
  end
  local now = opts.now or os.time
  local self = setmetatable({
    now = now, fixed_c = fixed_c, fixed_b = fixed_b, max_c = max_c, cap = max_b,
    c = fixed_c or min(M.START_CONCURRENCY, max_c),
    b = fixed_b or min(max(M.START_BATCH, M.MIN_BATCH), max_b),
    reason_c = fixed_c and "fixed" or "start", reason_b = fixed_b and "fixed" or "start",
    floor = nil, since_cut = 0, direction = 1, stepped = false,
    epoch_start = now(), epoch_docs = 0, epoch_responses = 0, last_rate = nil, rate = nil,
    epoch_rtt = 0, epoch_per_byte = 0, epoch_timed = 0, epoch_cut = false, last_rtt = nil, last_per_byte = nil,
    responses = 0, rejected = 0,
  }, Ctl)
  self.b = min(self.b, self.cap)
  return self
end

function Ctl:concurrency() return floor(self.c) end
function Ctl:batch_bytes() return floor(self.b) end

local function set_c(self, c, reason)
  c = max(1, min(self.max_c, c))
  if floor(c) ~= floor(self.c) then self.reason_c = reason end
  self.c = c
end

local function set_b(self, b, reason)
  b = floor(max(min(M.MIN_BATCH, self.cap), min(self.cap, b)))
  if b ~= floor(self.b) then self.reason_b = reason end
  self.b = b
end

-- The largest body the server takes (its http.max_content_length, or just
-- under the size a 413 answered): the batch never grows past it again.
function Ctl:limit_bytes(n, reason)
  if type(n) ~= "number" or n < 1 then
    error("espipe.client.adaptive: limit_bytes needs a positive number, got " .. tostring(n), 2)
  end
  if n < self.cap then
    self.cap = floor(n)
    if self.b > self.cap then
      self.b = self.cap
      self.reason_b = reason or "server limit"
    end
  end
end

local function cut(self, factor, reason)
  if self.fixed_c then return end
  -- the responses of the current round left before the cut report the same overload
  if self.since_cut < floor(self.c) and self.reason_c:sub(1, 4) == "cut:" then return end
  set_c(self, self.c * factor, "cut: " .. reason)
  self.reason_c = "cut: " .. reason
  self.since_cut = 0
  self.epoch_cut = true
end

local function adapt_concurrency(self, r, per_byte, t)
  if (r.rejected_items or 0) > 0 then return cut(self, 0.5, "rejected items") end
  if r.status == 429 or r.status == 503 then return cut(self, 0.5, "status " .. r.status) end
  if not per_byte then return end
  local fl = self.floor
  if fl then fl = fl * (1 + M.FLOOR_DRIFT * math.max(0, t - self.floor_at)) end
  if not fl or per_byte < fl then fl = per_byte end
  self.floor, self.floor_at = fl, t
  if per_byte > fl * M.JUMP then
    self.floor = per_byte / M.JUMP
    return cut(self, 0.75, "rtt jump")
  end
  if self.fixed_c or per_byte > fl * M.NEAR_FLOOR then return end
  set_c(self, self.c + 1 / max(1, floor(self.c)), "rtt near floor")
end

local function moved(now_v, before)
  if now_v > before * M.SHIFT then return 1 end
  if before > now_v * M.SHIFT then return -1 end
  return 0
end

-- Whether this epoch measured the cluster changing rather than the last step.
local function cluster_shifted(self)
  local n = self.epoch_timed
  local rtt, pb = n > 0 and self.epoch_rtt / n, n > 0 and self.epoch_per_byte / n
  local prev_rtt, prev_pb = self.last_rtt, self.last_per_byte
  if rtt then self.last_rtt, self.last_per_byte = rtt, pb end
  self.epoch_rtt, self.epoch_per_byte, self.epoch_timed = 0, 0, 0
  local cut_seen = self.epoch_cut
  self.epoch_cut = false
  if cut_seen then return true end
  if not (rtt and prev_rtt) then return false end
  local dir = moved(rtt, prev_rtt)
  return dir ~= 0 and dir == moved(pb, prev_pb)
end

-- The climb's direction after an epoch that measured `rate` against the
-- one before (prev): on while docs/s rose, back when it fell. A cluster
-- shift, or an epoch before that took no step (the climb stood at a bound
-- and turned there), says nothing about the batch size: the direction
-- stays, so from a bound the climb steps away on the next epoch.
local function next_direction(self, rate, prev, shifted)
  if prev and rate < prev and self.stepped and not shifted then return -self.direction end
  return self.direction
end

-- One step of the batch-size hill climb per epoch.
local function adapt_batch(self, r, per_byte, t)
  self.epoch_docs = self.epoch_docs + max(0, (r.docs or 0) - (r.rejected_items or 0))
  self.epoch_responses = self.epoch_responses + 1
  if per_byte then
    self.epoch_rtt, self.epoch_per_byte = self.epoch_rtt + r.rtt, self.epoch_per_byte + per_byte
    self.epoch_timed = self.epoch_timed + 1
  end
  local elapsed = t - self.epoch_start
  if elapsed < M.EPOCH_SECONDS or self.epoch_responses < M.EPOCH_RESPONSES then return end
  local rate = self.epoch_docs / elapsed
  self.rate = rate
  local shifted = cluster_shifted(self)
  if not self.fixed_b then
    local from_bound = self.last_rate ~= nil and not self.stepped
    self.direction = next_direction(self, rate, self.last_rate, shifted)
    local before = floor(self.b)
    local up = self.direction > 0
    local step = up and M.BATCH_STEP or 1 / M.BATCH_STEP
    local reason = from_bound and (up and "climb: up from the minimum" or "climb: down from the cap")
      or (up and "climb: docs/s rose" or "climb: docs/s fell")
    set_b(self, self.b * step, reason)
    self.stepped = floor(self.b) ~= before
    -- at a bound the climb turns around instead of standing still
    if not self.stepped then self.direction = -self.direction end
  end
  self.last_rate = rate
  self.epoch_start, self.epoch_docs, self.epoch_responses = t, 0, 0
end

-- on_response{ rtt = seconds, docs = items sent, bytes = body bytes,
--              rejected_items = 429 items, status = HTTP status }
function Ctl:on_response(r)
  if type(r) ~= "table" then error("espipe.client.adaptive: on_response needs a table", 2) end
  local t = self.now()
  self.responses = self.responses + 1
  self.since_cut = self.since_cut + 1
  self.rejected = self.rejected + (r.rejected_items or 0)
  if r.status == 413 then
    if not self.fixed_b and r.bytes and r.bytes > 0 then
      self:limit_bytes(max(1, floor(r.bytes * 0.75)), "413: body too large")
    end
    return
  end
  local per_byte = r.rtt and r.bytes and r.bytes > 0 and r.rtt / r.bytes or nil
  adapt_concurrency(self, r, per_byte, t)
  adapt_batch(self, r, per_byte, t)
end

-- For the bulk indexer: one completed request of `docs` items and `bytes`,
-- sent `rtt` seconds ago, with its HTTP status (0: no answer) and the
-- failed items of its response (each with .status). Returns the concurrency
-- and the batch size to use from now on.
function Ctl:observe(docs, bytes, rtt, status, failures)
  local rejected = 0
  for _, f in ipairs(failures or {}) do
    if f.status == 429 then rejected = rejected + 1 end
  end
  if status ~= 0 then
    self:on_response { rtt = rtt, docs = docs, bytes = bytes, rejected_items = rejected, status = status }
  end
  return self:concurrency(), self:batch_bytes()
end

local function size_label(b)
  if b >= MB then return string.format("%.0fMB", b / MB) end
  return string.format("%.0fkB", b / 1024)
end

-- "c=6 b=8MB", for the progress line
function Ctl:label()
  return "c=" .. self:concurrency() .. " b=" .. size_label(self:batch_bytes())
end

function Ctl:state()
  return {
    concurrency = self:concurrency(), batch_bytes = self:batch_bytes(),
    concurrency_mode = self.fixed_c and "fixed" or "auto", batch_mode = self.fixed_b and "fixed" or "auto",
    concurrency_reason = self.reason_c, batch_reason = self.reason_b,
    max_concurrency = self.max_c, max_batch_bytes = self.cap,
    docs_per_s = self.rate, responses = self.responses, rejected_items = self.rejected,
  }
end

return M
