-- One retry policy for every request a job makes (bulk batches, search
-- pages, setup requests): what a failure means, and how long to wait.
--
--   local policy = retry.new{ retry_for = 600, base = 0.1, max = 30 }   -- seconds
--   policy:classify(completion_or_err, req?) -> "retry" | "systemic" | "permanent"
--   policy:classify_item{ status =, type = }  -> "retry" | "permanent"  (a _bulk item)
--   local s = policy:start(now)               -- one operation's retry state
--   s:next_delay(now) -> seconds before the next attempt, or nil when retry_for is spent
--
-- Retryable: 429, 5xx on the whole request, es_rejected_execution_exception,
-- a timeout, a connection reset/closed mid-response, a refused connection
-- once the cluster has answered this client (a node restarting, not a typo:
-- the client sets err.cluster_reached).
-- Systemic (the job cannot succeed; stop it, dead-letter nothing): 401,
-- 403, TLS failure, unknown host, a refused connection before any request
-- to the cluster succeeded, 404 on the cluster root. Permanent: anything else (400, 404,
-- 409, ...): the request, or the document, is wrong as it is.
--
-- Waits are capped exponential with full jitter (a random fraction of
-- min(max, base * 2^n)), so many batches failing together do not come back
-- together; the last wait is cut to end at the budget's deadline.
local options = require("espipe.client.options")

local type, error, setmetatable, tostring = type, error, setmetatable, tostring
local min, random = math.min, math.random

local M = {}
local Policy = {}
Policy.__index = Policy
local State = {}
State.__index = State

local DEFAULTS = { retry_for = 600, base = 0.1, max = 30 }
local KNOWN = { retry_for = true, base = true, max = true }

local function check_number(opts, k, level, allow_zero)
  local v = opts[k]
  if v == nil then return DEFAULTS[k] end
  if type(v) ~= "number" or v ~= v or v < 0 or (v == 0 and not allow_zero) or v == math.huge then
    error("espipe.client.retry: " .. k .. " must be a " .. (allow_zero and "number >= 0" or "positive number")
      .. " (seconds), got " .. tostring(v), level + 1)
  end
  return v
end

-- retry.new{ retry_for =, base =, max = } -> policy (wrong arguments raise)
function M.new(opts, level)
  level = level or 2
  if opts ~= nil and type(opts) ~= "table" then
    error("espipe.client.retry: expects an options table, got " .. type(opts), level)
  end
  opts = opts or {}
  options.check(opts, KNOWN, "espipe.client.retry", level)
  local self = setmetatable({
    retry_for = check_number(opts, "retry_for", level, true),
    base = check_number(opts, "base", level),
    max = check_number(opts, "max", level),
  }, Policy)
  if self.max < self.base then
    error("espipe.client.retry: max (" .. self.max .. ") must be >= base (" .. self.base .. ")", level)
  end
  return self
end

M.DEFAULTS = DEFAULTS

-- Transport error codes (lua/espipe/transport/README.md) by meaning.
local RETRY_CODES = {
  timeout = true, send = true, recv = true, empty_reply = true, partial = true,
  protocol = true, bad_encoding = true,
}
local SYSTEMIC_CODES = { tls = true, resolve = true, bad_url = true }

local function classify_status(status, etype, path)
  if status == 401 or status == 403 then return "systemic" end
  if status == 404 and (path == "/" or path == "") then return "systemic" end
  if status == 429 or status >= 500 then return "retry" end
  if etype == "es_rejected_execution_exception" then return "retry" end
  return "permanent"
end
M.classify_status = classify_status

local function classify_transport(err)
  local code = err.code
  if code == "connect" then
    -- refused: a wrong URL at start, a node restarting or gone later
    return err.cluster_reached and "retry" or "systemic"
  end
  if SYSTEMIC_CODES[code] then return "systemic" end
  if RETRY_CODES[code] or err.kind == "transport" then return "retry" end
  return "permanent"
end

-- c: a completion (status, err) from the transport, or an error from the
-- client (kind "http" with status, or kind "transport" with code).
-- req (optional): { path = } when c does not name its request.
function Policy:classify(c, req) -- luacheck: ignore self
  if type(c) ~= "table" then
    error("policy:classify expects a completion or an error table, got " .. type(c), 2)
  end
  if c.kind == "systemic" then return "systemic" end
  local err = c.err
  if err == nil and c.kind == "transport" then err = c end
  if err ~= nil then return classify_transport(err) end
  local path = (c.request and c.request.path) or (req and req.path)
  local status = c.status
  if type(status) ~= "number" or status == 0 then return "retry" end
  if status < 300 then return "permanent" end -- a 2xx handed here: something about its body
  return classify_status(status, c.type, path)
end

-- One failed _bulk item: { status =, type = }.
function Policy.classify_item(_, f)
  local s = f.status
  if s == 429 or s == 503 or f.type == "es_rejected_execution_exception" then return "retry" end
  return "permanent"
end

-- policy:start(now) -> state for one operation (a batch, a page, a request)
function Policy:start(now)
  if type(now) ~= "number" then error("policy:start expects the current time (seconds)", 2) end
  return setmetatable({ policy = self, started = now, attempts = 0 }, State)
end

-- Seconds to wait before the next attempt, or nil once retry_for is spent.
function State:next_delay(now)
  local p = self.policy
  local left = self.started + p.retry_for - now
  if left <= 0 then return nil end
  local n = self.attempts
  self.attempts = n + 1
  local cap = min(p.max, p.base * 2 ^ n)
  return min(left, cap * random())
end

function State:elapsed(now) return now - self.started end

-- The error a caller returns once retries are over: err itself, with the
-- number of attempts and the seconds spent retrying.
function M.exhausted(err, attempts, elapsed)
  err.attempts, err.elapsed = attempts, elapsed
  return err
end

M.Policy, M.State = Policy, State
return M
