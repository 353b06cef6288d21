-- The Elasticsearch client: document, search and index APIs over the
-- transport seam (curl multi outside nginx, cosockets inside), plus the bulk
-- indexer and scan helpers. Every API takes one table of named parameters
-- and returns the decoded response, or nil, err (an espipe.errors table whose
-- tostring is one line: "404 index_not_found_exception: no such index [x]
-- (GET /x/_doc/1)"). Wrong arguments raise.
--
-- Several helpers (a bulk indexer, scans, single requests) may share one
-- transport: completions are routed to the helper that submitted them, so
-- none of them steals another's responses.
local errors = require("espipe.errors")
local options = require("espipe.options")
local url = require("espipe.client.url")

local type, pairs, ipairs, tostring, setmetatable, error = type, pairs, ipairs, tostring, setmetatable, error
local segment, encode_query = url.segment, url.query

local json -- loaded on first use: espipe.json (exact integers, [] kept)
local function codec()
  json = json or require("espipe.json")
  return json
end

local M = { _VERSION = require("espipe")._VERSION:match("[%d.]+$") } -- one version: espipe/init.lua
local Client = {}
Client.__index = Client
M.Client = Client

local TRANSPORT_OPTIONS = {
  "hosts", "auth", "connect_timeout", "timeout", "tls", "compress", "max_inflight",
  "dead_host_retry", "headers", "pool_size", "keepalive_timeout", "max_response_bytes",
}

-- A typo'd key (`hots`) must not fall back to the default host.
local CLIENT_OPTIONS = { transport = true }
for _, k in ipairs(TRANSPORT_OPTIONS) do CLIENT_OPTIONS[k] = true end

local function default_transport(opts)
  local topts = {}
  for _, k in ipairs(TRANSPORT_OPTIONS) do topts[k] = opts[k] end
  if type(topts.hosts) == "string" then topts.hosts = { topts.hosts } end
  topts.hosts = topts.hosts or { "http://127.0.0.1:9200" }
  return require("espipe.transport").new(topts)
end

-- espipe.client{ hosts =, auth =, transport =, timeout =, ... } -> client
function M.new(opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("espipe.client expects an options table, got " .. type(opts), 2)
  end
  opts = opts or {}
  options.check(opts, CLIENT_OPTIONS, "espipe.client", 2)
  local t = opts.transport
  if t ~= nil then
    if type(t) ~= "table" and type(t) ~= "userdata" then
      error("transport must be an object with submit/poll/inflight/close", 2)
    end
  else
    t = default_transport(opts)
  end
  local self = setmetatable({
    transport = t,
    owners = {},          -- request id -> the helper waiting for it
    reached = false,      -- true once any host has answered (see espipe.client.retry)
    timeout = opts.timeout or 60,
  }, Client)
  self.indices = require("espipe.client.indices").bind(self)
  return self
end

----------------------------------------------------------------------------
-- Request routing over the seam

local function clock_now(self)
  local t = self.transport
  if t.now then return t:now() end
  local ngx = rawget(_G, "ngx")
  if ngx and ngx.now then ngx.update_time(); return ngx.now() end
  local ok, cm = pcall(require, "espipe.curl_multi")
  if ok and cm.now then return cm.now() end
  return os.time()
end
Client.now = clock_now

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
    if not (errors.is(err) or type(err) == "table") or err.kind ~= "busy" then
      return nil, err
    end
    self:_pump(0.05)
  end
end

-- Completions of owner, waiting at most timeout seconds for the first one.
function Client:_wait(owner, timeout)
  if #owner.inbox == 0 then
    local deadline = clock_now(self) + (timeout or 0)
    repeat
      local left = deadline - clock_now(self)
      self:_pump(left > 0 and left or 0)
    until #owner.inbox > 0 or clock_now(self) >= deadline or self.transport:inflight() == 0
  end
  local out = owner.inbox
  owner.inbox = {}
  return out
end

function Client:sleep(seconds)
  local t = self.transport
  if t.sleep then return t:sleep(seconds) end
  local ngx = rawget(_G, "ngx")
  if ngx and ngx.sleep then return ngx.sleep(seconds) end
  -- Outside nginx without a transport sleep: wait on the transport when it
  -- has work, else spin on the clock (short backoffs only).
  local deadline = clock_now(self) + seconds
  while clock_now(self) < deadline do
    if t:inflight() > 0 then self:_pump(deadline - clock_now(self)) end
  end
end

----------------------------------------------------------------------------
-- Responses and errors

local function describe_request(req)
  return { method = req.method, path = req.path }
end

-- The error for a response with status >= 400 (or a 2xx body that is not JSON).
function M.http_error(res, req)
  local e = { kind = "http", status = res.status, request = describe_request(req), host = res.host }
  local body = res.body
  if body and body ~= "" then
    local v = codec().decode(body)
    if type(v) == "table" then
      e.body = v
      local env = v.error
      if type(env) == "table" then
        e.type, e.reason = env.type, env.reason
        if type(env.root_cause) == "table" and type(env.root_cause[1]) == "table"
          and e.reason == nil then
          e.type, e.reason = env.root_cause[1].type, env.root_cause[1].reason
        end
      elseif type(env) == "string" then
        e.reason = env
      elseif v.found == false then
        e.type, e.reason = "not_found", "document not found"
      end
    else
      e.reason = (#body > 200) and (body:sub(1, 200) .. "...") or body
    end
  end
  e.reason = e.reason or ("HTTP " .. tostring(res.status))
  return errors.new(e)
end

-- Attach the request to a transport error (it never carries credentials).
function M.transport_error(err, req)
  if type(err) ~= "table" then
    err = { kind = "transport", message = tostring(err) }
  end
  if not err.request then err.request = describe_request(req) end
  if not errors.is(err) then err = errors.new(err) end
  return err
end

-- One request, waited for. Returns res (any status) or nil, transport err.
function Client:perform(req)
  local owner = { inbox = {} }
  local id, err = self:_submit(owner, req)
  if not id then return nil, M.transport_error(err, req) end
  while true do
    local done = self:_wait(owner, self.timeout)
    local res = done[1]
    if res then
      if res.err then return nil, M.transport_error(res.err, req) end
      return res
    end
    if self.transport:inflight() == 0 and #owner.inbox == 0 and self.owners[id] then
      self.owners[id] = nil
      return nil, errors.new{ kind = "transport", message = "request lost by the transport",
                              request = describe_request(req) }
    end
  end
end

-- The failure of a finished request, or nil when it succeeded (2xx).
local function failure_of(res, err, req)
  if not res then return err end
  if res.status >= 400 or res.status < 200 then return M.http_error(res, req) end
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
    local now = clock_now(self)
    state = state or policy:start(now)
    local delay = class == "retry" and state:next_delay(now)
    if not delay then
      err.attempts, err.elapsed = attempts, now - state.started
      if class == "systemic" then M.systemic(err) end
      return nil, err
    end
    if delay > 0 then self:sleep(delay) end
  end
end

-- A 2xx response's body decoded, or nil, err.
local function decoded(res, req)
  local v, derr = codec().decode(res.body or "")
  if v == nil then
    return nil, errors.new{ kind = "json", status = res.status,
      message = "cannot parse the response: " .. tostring(derr), request = describe_request(req) }
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

-- Mark err as systemic (the job must stop): kind becomes "systemic", the
-- original kind is kept in err.cause.
function M.systemic(err)
  if err.kind ~= "systemic" then err.cause, err.kind = err.kind, "systemic" end
  return err
end


----------------------------------------------------------------------------
-- Named-parameter API definitions

local COMMON = { filter_path = true, error_trace = true, human = true }
local CONTROL = { headers = true, request_timeout = true }

local function set_of(list)
  local s = {}
  for _, k in ipairs(list) do s[k] = true end
  return s
end
M.set_of = set_of

-- Build the query from p: every key that is not a path/body/control key must
-- be an allowed query parameter of the API, else it is a typo and raises.
local function build_query(name, p, taken, allowed, level)
  local q, any = {}, false
  for k, v in pairs(p) do
    if not taken[k] and not CONTROL[k] then
      if allowed[k] or COMMON[k] then
        q[k] = v
        any = true
      else
        error("client:" .. name .. ": unknown parameter '" .. tostring(k) .. "'", level + 1)
      end
    end
  end
  return any and encode_query(q) or nil
end

local function encode_body(body, name, level)
  local t = type(body)
  if t == "string" then return body end
  if t == "table" then
    local s, err = codec().encode(body)
    if not s then error("client:" .. name .. ": body cannot be encoded: " .. tostring(err), level + 1) end
    return s
  end
  error("client:" .. name .. ": body must be a table or a JSON string, got " .. t, level + 1)
end
M.encode_body = encode_body

-- Define client:name{...} from a spec:
--   method (or method(p)), path(p) -> path, taken = { keys consumed by path/body },
--   query = { allowed query params }, body(p) -> table|string|nil
function M.define(target, name, spec)
  local allowed = set_of(spec.query or {})
  local taken = set_of(spec.taken or {})
  target[name] = function(self, p)
    if type(p) ~= "table" then
      error("client:" .. name .. " expects a table of named parameters", 2)
    end
    local client = self.client or self
    local path = spec.path(p)
    local method = spec.method
    if type(method) == "function" then method = method(p) end
    local req = {
      method = method, path = path,
      query = build_query(name, p, taken, allowed, 2),
      timeout = p.request_timeout,
    }
    local body = spec.body and spec.body(p)
    local headers = {}
    if p.headers then
      if type(p.headers) ~= "table" then error("client:" .. name .. ": headers must be a table", 2) end
      for k, v in pairs(p.headers) do headers[k] = v end
    end
    if body ~= nil then
      req.body = encode_body(body, name, 2)
      headers["Content-Type"] = headers["Content-Type"] or "application/json"
    end
    req.headers = headers
    if spec.exists then
      local res, err = client:perform(req)
      if not res then return nil, err end
      if res.status == 200 then return true end
      if res.status == 404 then return false end
      return nil, M.http_error(res, req)
    end
    return client:json_request(req)
  end
end

local function need(p, key, name)
  local v = p[key]
  if v == nil then error("client:" .. name .. ": '" .. key .. "' is required", 4) end
  return v
end
M.need = need

local function index_path(p, name, optional)
  if optional and p.index == nil then return "" end
  return "/" .. segment(need(p, "index", name), "index", 4)
end
M.index_path = index_path

local function doc_path(p, name, kind)
  return index_path(p, name) .. "/" .. kind .. "/" .. segment(need(p, "id", name), "id", 4)
end

local WRITE = { "routing", "refresh", "timeout", "wait_for_active_shards", "pipeline",
  "require_alias", "version", "version_type", "if_seq_no", "if_primary_term" }
local function plus(list, more)
  local out = {}
  for _, k in ipairs(list) do out[#out + 1] = k end
  for _, k in ipairs(more) do out[#out + 1] = k end
  return out
end
local READ = { "routing", "preference", "realtime", "refresh", "_source", "_source_includes",
  "_source_excludes", "stored_fields", "version", "version_type" }

local function required_body(name)
  return function(p)
    if p.body == nil then error("client:" .. name .. ": 'body' is required", 4) end
    return p.body
  end
end

-- client:index{ index=, id=, body=, routing=, refresh=, if_seq_no=, op_type=, ... }
M.define(Client, "index", {
  method = function(p) return p.id == nil and "POST" or "PUT" end, taken = { "index", "id", "body" }, query = plus(WRITE, { "op_type" }),
  path = function(p)
    if p.id == nil then return index_path(p, "index") .. "/_doc" end
    return doc_path(p, "index", "_doc")
  end,
  body = required_body("index"),
})
M.define(Client, "create", {
  method = "PUT", taken = { "index", "id", "body" }, query = WRITE,
  path = function(p) return doc_path(p, "create", "_create") end,
  body = required_body("create"),
})

M.define(Client, "get", {
  method = "GET", taken = { "index", "id" }, query = READ,
  path = function(p) return doc_path(p, "get", "_doc") end,
})

M.define(Client, "get_source", {
  method = "GET", taken = { "index", "id" }, query = READ,
  path = function(p) return doc_path(p, "get_source", "_source") end,
})

M.define(Client, "exists", {
  method = "HEAD", taken = { "index", "id" }, query = READ, exists = true,
  path = function(p) return doc_path(p, "exists", "_doc") end,
})

local UPDATE_BODY = { "doc", "upsert", "doc_as_upsert", "script", "scripted_upsert", "detect_noop" }
-- client:update{ index=, id=, doc= | script=, upsert=, doc_as_upsert=, retry_on_conflict=, ... }
M.define(Client, "update", {
  method = "POST", taken = plus({ "index", "id", "body" }, UPDATE_BODY),
  query = { "routing", "refresh", "timeout", "wait_for_active_shards", "retry_on_conflict",
    "if_seq_no", "if_primary_term", "_source", "_source_includes", "_source_excludes", "lang",
    "require_alias" },
  path = function(p) return doc_path(p, "update", "_update") end,
  body = function(p)
    if p.body ~= nil then return p.body end
    local b, any = {}, false
    for _, k in ipairs(UPDATE_BODY) do
      if p[k] ~= nil then b[k] = p[k]; any = true end
    end
    if not any then error("client:update needs doc, script, upsert or body", 4) end
    if p.doc == nil and p.script == nil and p.body == nil then
      error("client:update needs doc or script (upsert alone only applies with them)", 4)
    end
    return b
  end,
})

M.define(Client, "delete", {
  method = "DELETE", taken = { "index", "id" }, query = WRITE,
  path = function(p) return doc_path(p, "delete", "_doc") end,
})

-- client:mget{ index=?, docs = { {_index=, _id=}, ... } | ids = { ... } | body = }
M.define(Client, "mget", {
  method = "POST", taken = { "index", "docs", "ids", "body" }, query = plus(READ, {}),
  path = function(p) return index_path(p, "mget", true) .. "/_mget" end,
  body = function(p)
    if p.body ~= nil then return p.body end
    if p.docs ~= nil then return { docs = p.docs } end
    if p.ids ~= nil then
      if p.index == nil then error("client:mget: ids needs index (or use docs)", 4) end
      return { ids = p.ids }
    end
    error("client:mget needs docs, ids or body", 4)
  end,
})

local SEARCH = { "q", "size", "from", "sort", "scroll", "routing", "preference", "track_total_hits",
  "rest_total_hits_as_int", "_source", "_source_includes", "_source_excludes", "search_type",
  "request_cache", "allow_no_indices", "ignore_unavailable", "expand_wildcards", "timeout",
  "terminate_after", "typed_keys", "seq_no_primary_term", "version", "allow_partial_search_results",
  "stored_fields", "df", "default_operator", "analyzer", "lenient" }
M.define(Client, "search", {
  method = "POST", taken = { "index", "body" }, query = SEARCH,
  path = function(p) return index_path(p, "search", true) .. "/_search" end,
  body = function(p) return p.body end,
})

M.define(Client, "count", {
  method = "POST", taken = { "index", "body" },
  query = { "q", "routing", "preference", "allow_no_indices", "ignore_unavailable",
    "expand_wildcards", "terminate_after", "df", "default_operator", "analyzer", "lenient" },
  path = function(p) return index_path(p, "count", true) .. "/_count" end,
  body = function(p) return p.body end,
})

M.define(Client, "refresh", {
  method = "POST", taken = { "index" },
  query = { "allow_no_indices", "ignore_unavailable", "expand_wildcards" },
  path = function(p) return index_path(p, "refresh", true) .. "/_refresh" end,
})

M.define(Client, "info", {
  method = "GET", taken = {}, query = {},
  path = function() return "/" end,
})

----------------------------------------------------------------------------
-- Helpers

-- client:bulk_indexer{ ... } (see espipe.bulk_indexer)
function Client:bulk_indexer(opts)
  return require("espipe.bulk_indexer").new(self, opts, 2)
end

-- client:scan(index, query, opts) (see espipe.client.scan)
function Client:scan(index, query, opts)
  return require("espipe.client.scan").new(self, index, query, opts, 2)
end

function Client:close()
  if self.transport.close then self.transport:close() end
end

return M
