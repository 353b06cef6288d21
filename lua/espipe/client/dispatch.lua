-- Request dispatch for the client: submit on behalf of a helper (a bulk
-- indexer, a scan, one request), route each completion to the helper that
-- submitted it, and wait on the transport's clock. Several helpers may share
-- one transport: none of them steals another's responses.
--
-- These are methods of the client (espipe.client mixes them in):
--   client:_submit(owner, req) -> id | nil, err   owner = { inbox = {} }
--   client:_wait(owner, timeout) -> { completion, ... }
--   client:perform(req) -> res (any status) | nil, transport err
--   client:json_request(req), client:request_retrying(req, policy),
--   client:json_request_retrying(req, policy)
--   client:now(), client:sleep(seconds)   (the transport's clock)
-- and dispatch.http_error(res, req): the error of a response with status
-- >= 400 (or a 2xx body that is not JSON).
local errors = require("espipe.client.errors")
local json = require("espipe.json")

local type, ipairs, tostring, error = type, ipairs, tostring, error
local transport_error, request_of = errors.transport_error, errors.request_of

local M = {}
local Client = {}
M.methods = Client

-- type/reason from an Elasticsearch error envelope (or a not-found answer).
local function read_envelope(e, v)
  local env = v.error
  if type(env) == "table" then
    e.type, e.reason = env.type, env.reason
    local cause = type(env.root_cause) == "table" and env.root_cause[1]
    if type(cause) == "table" and e.reason == nil then e.type, e.reason = cause.type, cause.reason end
  elseif type(env) == "string" then
    e.reason = env
  elseif v.found == false then
    e.type, e.reason = "not_found", "document not found"
  end
end

-- The error for a response with status >= 400 (or a 2xx body that is not JSON).
function M.http_error(res, req)
  local e = { kind = "http", status = res.status, request = request_of(req), host = res.host }
  local body = res.body
  if body and body ~= "" then
    local v = json.decode(body)
    if type(v) == "table" then
      e.body = v
      read_envelope(e, v)
    else
      e.reason = (#body > 200) and (body:sub(1, 200) .. "...") or body
    end
  end
  e.reason = e.reason or ("HTTP " .. tostring(res.status))
  return errors.new(e)
end

local http_error = M.http_error


function Client:now()
  return self.transport:now()
end

-- A transport error after the cluster has answered this client says so
-- (err.cluster_reached): a refused connection then means a node restarting
-- or gone, not a wrong URL.
local function note_answer(self, res)
  if res.status and res.status > 0 then
    self.reached = true
  elseif self.reached and type(res.err) == "table" then
    res.err.cluster_reached = true
  end
end

local function distribute(self, done)
  for _, res in ipairs(done) do
    note_answer(self, res)
    local owner = self.owners[res.id]
    if owner then
      self.owners[res.id] = nil
      owner.inbox[#owner.inbox + 1] = res
    end
  end
end

-- Drive the transport once: wait at most timeout for any completion.
function Client:_pump(timeout)
  distribute(self, self.transport:poll(timeout or 0))
end

-- Submit on behalf of owner ({ inbox = {} }). When the transport is at its
-- max_inflight, completions are collected (for whoever owns them) until a
-- slot frees.
function Client:_submit(owner, req)
  while true do
    local id, err = self.transport:submit(req)
    if id then
      self.owners[id] = owner
      return id
    end
    if type(err) ~= "table" or err.kind ~= "busy" then
      return nil, err
    end
    self:_pump(0.05)
  end
end

-- A request nobody waits for (a scan's context freed from __gc): its
-- completion is dropped, a refusal ignored.
function Client:_submit_detached(req)
  return pcall(self.transport.submit, self.transport, req)
end

-- Forget a request whose owner gave up on it: its completion is dropped.
function Client:_disown(id)
  self.owners[id] = nil
end

-- Completions of owner, waiting at most timeout seconds for the first one.
function Client:_wait(owner, timeout)
  if #owner.inbox == 0 then
    local t = self.transport
    local deadline = t:now() + (timeout or 0)
    repeat
      local left = deadline - t:now()
      self:_pump(left > 0 and left or 0)
    until #owner.inbox > 0 or t:now() >= deadline or t:inflight() == 0
  end
  local out = owner.inbox
  owner.inbox = {}
  return out
end

-- Completions that arrive while the transport sleeps are kept for their owners.
function Client:sleep(seconds)
  return self.transport:sleep(seconds)
end

-- One request, waited for. Returns res (any status) or nil, transport err.
function Client:perform(req)
  local owner = { inbox = {} }
  local id, err = self:_submit(owner, req)
  if not id then return nil, transport_error(err, req) end
  while true do
    local done = self:_wait(owner, self.timeout)
    local res = done[1]
    if res then
      if res.err then return nil, transport_error(res.err, req) end
      return res
    end
    if self.transport:inflight() == 0 and #owner.inbox == 0 and self.owners[id] then
      self.owners[id] = nil
      return nil, errors.new{ kind = "transport", message = "request lost by the transport",
                              request = request_of(req) }
    end
  end
end

-- The failure of a finished request, or nil when it succeeded (2xx).
local function failure_of(res, err, req)
  if not res then return err end
  if res.status >= 400 or res.status < 200 then return http_error(res, req) end
  return nil
end

-- client:request_retrying(req, policy) -> res (2xx) | nil, err
-- Like perform, but what policy:classify calls retryable is sent again
-- (waiting on the client's clock) until it succeeds or policy.retry_for is
-- spent. err: the last failure, with err.attempts and err.elapsed; its kind
-- is "systemic" when the cluster cannot be used at all (err.cause: the
-- original kind), so a job stops instead of retrying or dead-lettering.
function Client:request_retrying(req, policy)
  if type(req) ~= "table" then error("client:request_retrying expects a request table", 2) end
  if type(policy) ~= "table" or type(policy.classify) ~= "function" then
    error("client:request_retrying expects a policy from espipe.client.retry", 2)
  end
  local state, attempts = nil, 0
  while true do
    local res, terr = self:perform(req)
    attempts = attempts + 1
    local err = failure_of(res, terr, req)
    if not err then return res end
    local class = policy:classify(err, req)
    local now = self:now()
    state = state or policy:start(now)
    local delay = class == "retry" and state:next_delay(now)
    if not delay then
      err.attempts, err.elapsed = attempts, now - state.started
      if class == "systemic" then errors.systemic(err) end
      return nil, err
    end
    if delay > 0 then self:sleep(delay) end
  end
end

-- A 2xx response's body decoded, or nil, err.
local function decoded(res, req)
  local v, derr = json.decode(res.body or "")
  if v == nil then
    return nil, errors.new{ kind = "json", status = res.status,
      message = "cannot parse the response: " .. tostring(derr), request = request_of(req) }
  end
  return v
end

-- client:json_request_retrying(req, policy) -> decoded body | nil, err
function Client:json_request_retrying(req, policy)
  local res, err = self:request_retrying(req, policy)
  if not res then return nil, err end
  return decoded(res, req)
end

-- Send and decode: the decoded body, or nil, err.
function Client:json_request(req)
  local res, err = self:perform(req)
  local failure = failure_of(res, err, req)
  if failure then return nil, failure end
  return decoded(res, req)
end

return M
