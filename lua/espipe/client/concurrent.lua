-- Many requests on one client at once: a transform's lookups must not wait
-- for each other. At most `concurrency` are in flight (the transport may
-- hold fewer: its max_inflight); what the retry policy calls retryable (a
-- timeout, a reset connection, 429, 5xx) is sent again, at most `retries`
-- times, after a jittered backoff; the results come back in the order of
-- the requests. Nothing is raised for a failed request: it is an err.
--
--   concurrent.run(client, reqs, { concurrency = 16, timeout = 10, retries = 2 })
--     -> results, errs
--   reqs[i]: a transport request ({ method =, path =, query =, headers =, body =, host = })
--   results[i]: the completion ({ status =, headers =, body = }) of a 2xx answer, else nil
--   errs[i]: nil, or the failure (an espipe error: kind "http" with status, or
--            "transport" with code "timeout", "connect", ...), with err.attempts
--   both tables carry n = #reqs (they may hold holes)
-- Lua drives the loop (client:_submit / client:_wait): completions of the
-- client's other work (a bulk indexer's batches) go to their owners meanwhile.
local errors = require("espipe.client.errors")
local dispatch = require("espipe.client.dispatch")
local retry = require("espipe.client.retry")
local options = require("espipe.client.options")

local M = {}

local DEFAULTS = { concurrency = 16, timeout = 10, retries = 2 }
-- short waits: a lookup retried after seconds would hold the whole batch
local BACKOFF = retry.new { retry_for = 30, base = 0.05, max = 1 }

-- The options, checked; wrong ones raise at the caller's level.
function M.options(opts, what, level)
  opts = opts or {}
  options.check(opts, { "concurrency", "timeout", "retries" }, what, level + 1)
  local out = {}
  for k, default in pairs(DEFAULTS) do
    local v = opts[k]
    if v == nil then v = default end
    local min = k == "retries" and 0 or (k == "timeout" and 1e-3 or 1)
    if type(v) ~= "number" or v ~= v or v < min or v == math.huge or (k ~= "timeout" and v % 1 ~= 0) then
      error(what .. ": " .. k .. " must be a " .. (k == "timeout" and "positive number (seconds)"
        or ("whole number >= " .. min)) .. ", got " .. tostring(v), level + 1)
    end
    out[k] = v
  end
  return out
end

local function failure_of(res, req)
  if res.err then return errors.transport_error(res.err, req) end
  if res.status < 200 or res.status >= 300 then return dispatch.http_error(res, req) end
  return nil
end

local Run = {}
Run.__index = Run

function Run:submit(i)
  local req = self.reqs[i]
  local id, err = self.client:_submit(self.owner, req)
  self.attempts[i] = (self.attempts[i] or 0) + 1
  if not id then
    self:settle(i, nil, errors.transport_error(err, req))
    return
  end
  self.by_id[id] = i
  self.inflight = self.inflight + 1
end

function Run:settle(i, res, err)
  if err then err.attempts = self.attempts[i] end
  self.results[i], self.errs[i] = res, err
  self.left = self.left - 1
end

-- A failed attempt: again after a backoff while retries remain and it may succeed.
function Run:failed(i, err, now)
  local state = self.states[i] or BACKOFF:start(now)
  self.states[i] = state
  local delay = self.attempts[i] <= self.retries and BACKOFF:classify(err, self.reqs[i]) == "retry"
    and state:next_delay(now)
  if not delay then return self:settle(i, nil, err) end
  self.later[#self.later + 1] = { i = i, at = now + delay }
end

function Run:completed(res, now)
  local i = self.by_id[res.id]
  if not i then return end
  self.by_id[res.id] = nil
  self.inflight = self.inflight - 1
  local err = failure_of(res, self.reqs[i])
  if err then return self:failed(i, err, now) end
  self:settle(i, res, nil)
end

-- Submits what is due (retries first, then new requests) up to the limit;
-- returns the seconds until the next retry is due, or nil.
function Run:fill(now)
  local next_at
  if #self.later > 0 then
    local kept = {}
    for _, r in ipairs(self.later) do
      if r.at <= now and self.inflight < self.limit then self:submit(r.i)
      else
        kept[#kept + 1] = r
        next_at = next_at and math.min(next_at, r.at) or r.at
      end
    end
    self.later = kept
  end
  while self.inflight < self.limit and self.next <= #self.reqs do
    self.next = self.next + 1
    self:submit(self.next - 1)
  end
  return next_at and math.max(next_at - now, 0) or nil
end

function Run:loop()
  local client = self.client
  while self.left > 0 do
    local wait = self:fill(client:now())
    if self.left == 0 then return end
    if self.inflight == 0 then
      client:sleep(wait or 0) -- only retries wait: their backoff
    else
      for _, res in ipairs(client:_wait(self.owner, wait or self.timeout)) do
        self:completed(res, client:now())
      end
    end
  end
end

function M.run(client, reqs, opts)
  if type(reqs) ~= "table" then error("concurrent.run: expected a list of requests", 2) end
  local o = M.options(opts, "concurrent.run", 2)
  local n = #reqs
  local self = setmetatable({ client = client, reqs = {}, owner = { inbox = {} }, limit = o.concurrency,
    retries = o.retries, timeout = o.timeout, results = { n = n }, errs = { n = n }, attempts = {},
    states = {}, by_id = {}, later = {}, next = 1, inflight = 0, left = n }, Run)
  for i = 1, n do
    local req = reqs[i]
    if type(req) ~= "table" then error("concurrent.run: request " .. i .. " is not a table", 2) end
    -- each attempt has the lookup's own timeout unless the request sets one
    self.reqs[i] = req.timeout and req or setmetatable({ timeout = o.timeout }, { __index = req })
  end
  self:loop()
  return self.results, self.errs
end

return M
