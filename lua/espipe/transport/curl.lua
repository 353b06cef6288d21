-- The libcurl-multi transport: bytes over HTTP, many requests in flight, no
-- retries and no Elasticsearch semantics. Lua drives the loop: submit()
-- hands a request to C and returns at once, poll() collects completions.
-- The seam is documented in lua/espipe/transport/README.md; the OpenResty
-- transport implements the same one.
local cm = require "espipe.curl_multi"
local errors = require "espipe.client.errors"
local host_list = require "espipe.transport.hosts"

local M = { _VERSION = require("espipe")._VERSION:match("[%d.]+$") } -- one version: espipe/init.lua

local Transport = {}
Transport.__index = Transport

local DEFAULTS = {
  connect_timeout = 5,
  timeout = 60,
  max_inflight = 8,
  dead_host_retry = 30,
}
-- Fast compression: bulk bodies are large and the point is throughput.
local DEFAULT_GZIP_LEVEL = 1

local insecure_warned = false

local function fail_arg(level, fmt, ...)
  error(string.format(fmt, ...), level + 1)
end

local function percent_decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- Header names and values must not smuggle a line break into the request.
local function check_header_text(s, what, level)
  if type(s) ~= "string" then
    fail_arg(level, "%s must be a string, got %s", what, type(s))
  end
  if s:find("[\r\n%z]") then
    fail_arg(level, "%s contains a line break or NUL byte", what)
  end
end

-- "https://user:pass@host:9200/" -> "https://host:9200", "user", "pass".
-- Messages never quote the URL: it may carry credentials.
local function parse_host(h, i, level)
  if type(h) ~= "string" then
    fail_arg(level, "hosts[%d] must be a string URL, got %s", i, type(h))
  end
  local scheme, rest = h:match("^(%a[%w+.-]*)://(.*)$")
  if scheme ~= "http" and scheme ~= "https" then
    fail_arg(level, "hosts[%d] must be an http:// or https:// URL", i)
  end
  local userinfo, hostpart = rest:match("^([^@/]*)@(.*)$")
  hostpart = hostpart or rest
  hostpart = hostpart:gsub("/+$", "")
  if hostpart == "" or hostpart:find("[%s%c]") then
    fail_arg(level, "hosts[%d] has no valid host part", i)
  end
  local user, pass
  if userinfo then
    user, pass = userinfo:match("^([^:]*):?(.*)$")
    user, pass = percent_decode(user), percent_decode(pass)
  end
  return scheme .. "://" .. hostpart, user, pass
end

local function check_number(v, what, level, min)
  if v ~= nil and (type(v) ~= "number" or v ~= v or v < (min or 0)) then
    fail_arg(level, "%s must be a number >= %s", what, tostring(min or 0))
  end
end

local function gzip_level(v, what, level)
  if v == nil or v == false then return 0 end
  if v == true then return DEFAULT_GZIP_LEVEL end
  if type(v) == "number" and v >= 1 and v <= 9 and v % 1 == 0 then return v end
  fail_arg(level, "%s must be a boolean or a gzip level 1..9", what)
end

local function native_options(opts, level)
  local native = {
    max_inflight = opts.max_inflight or DEFAULTS.max_inflight,
    connect_timeout = opts.connect_timeout or DEFAULTS.connect_timeout,
    max_response_bytes = opts.max_response_bytes,
  }
  local tls = opts.tls
  if tls ~= nil then
    if type(tls) ~= "table" then fail_arg(level, "tls must be a table") end
    for _, k in ipairs { "ca_file", "ca_dir", "cert", "key" } do
      if tls[k] ~= nil and type(tls[k]) ~= "string" then
        fail_arg(level, "tls.%s must be a string (a file or directory path)", k)
      end
      native[k] = tls[k]
    end
    native.insecure = tls.insecure == true
  end
  -- libcurl itself reads none of these; the curl command does, in this order
  if not (native.ca_file or native.ca_dir or native.insecure) then
    local bundle, dir, file = os.getenv("CURL_CA_BUNDLE"), os.getenv("SSL_CERT_DIR"), os.getenv("SSL_CERT_FILE")
    if bundle and bundle ~= "" then native.ca_file = bundle
    elseif dir and dir ~= "" then native.ca_dir = dir
    elseif file and file ~= "" then native.ca_file = file end
  end
  local auth = opts.auth
  if auth ~= nil then
    if type(auth) ~= "table" then fail_arg(level, "auth must be a table") end
    if auth.api_key ~= nil then
      check_header_text(auth.api_key, "auth.api_key", level + 1)
      native.auth_header = "Authorization: ApiKey " .. auth.api_key
    elseif auth.bearer ~= nil then
      check_header_text(auth.bearer, "auth.bearer", level + 1)
      native.auth_header = "Authorization: Bearer " .. auth.bearer
    elseif auth.username ~= nil then
      check_header_text(auth.username, "auth.username", level + 1)
      check_header_text(auth.password or "", "auth.password", level + 1)
      native.username, native.password = auth.username, auth.password or ""
    else
      fail_arg(level, "auth must have username/password, api_key or bearer")
    end
  end
  return native
end

local function construct(opts, level)
  if type(opts) ~= "table" then
    fail_arg(level, "transport options must be a table, got %s", type(opts))
  end
  if type(opts.hosts) ~= "table" or #opts.hosts == 0 then
    fail_arg(level, "hosts must be a non-empty array of URLs")
  end
  check_number(opts.connect_timeout, "connect_timeout", level)
  check_number(opts.timeout, "timeout", level)
  check_number(opts.dead_host_retry, "dead_host_retry", level)
  check_number(opts.max_response_bytes, "max_response_bytes", level, 1)
  local mi = opts.max_inflight
  if mi ~= nil and (type(mi) ~= "number" or mi % 1 ~= 0 or mi < 1 or mi > 4096) then
    fail_arg(level, "max_inflight must be an integer in 1..4096")
  end

  local hosts, url_user, url_pass = {}, nil, nil
  for i, h in ipairs(opts.hosts) do
    local url, user, pass = parse_host(h, i, level + 1)
    if user then
      if url_user and (url_user ~= user or url_pass ~= pass) then
        fail_arg(level, "hosts carry different credentials; give one auth = {...} instead")
      end
      url_user, url_pass = user, pass
    end
    hosts[i] = { url = url }
  end
  if url_user and opts.auth == nil then
    opts = setmetatable({ auth = { username = url_user, password = url_pass } }, { __index = opts })
  end

  local headers = { ["user-agent"] = "espipe/" .. M._VERSION }
  if opts.headers ~= nil then
    if type(opts.headers) ~= "table" then fail_arg(level, "headers must be a table") end
    for k, v in pairs(opts.headers) do
      check_header_text(k, "a header name", level + 1)
      check_header_text(v, "header " .. k, level + 1)
      headers[k:lower()] = v
    end
  end

  local native = native_options(opts, level + 1)
  if native.insecure and not insecure_warned then
    insecure_warned = true
    io.stderr:write("espipe: warning: TLS certificate verification is disabled (tls.insecure = true)\n")
  end

  local self = setmetatable({
    hosts = host_list.new(hosts, opts.dead_host_retry or DEFAULTS.dead_host_retry),
    headers = headers,
    own_lines = {}, -- header lines of requests without headers of their own, with and without a body
    timeout = opts.timeout or DEFAULTS.timeout,
    max_inflight = native.max_inflight,
    gzip = gzip_level(opts.compress, "compress", level + 1),
    multi = cm.new(native),
    next_id = 1,
    pending = {},   -- id -> { host =, method =, path =, ctx = }
    ready = {},     -- completions collected by request() for the next poll()
  }, Transport)
  return self
end

-- Not a tail call: error levels count this frame on every Lua version.
function M.new(opts)
  local t = construct(opts, 3)
  return t
end

-- For espipe.transport: errors then name its caller.
M._construct = construct

-- The monotonic clock the transport's now() reads, without a transport.
M.clock = cm.now

-- A node found later (shard-aware bulk) -> its host index, for submit{ host = }.
-- It joins no round-robin; a URL already known returns its index.
function Transport:add_host(h)
  local url = parse_host(h, self.hosts:count() + 1, 2)
  return self.hosts:add{ url = url }
end

function Transport:host_urls()
  return self.hosts:urls()
end

local function header_lines(defaults, extra, has_body, level)
  local merged = {}
  for k, v in pairs(defaults) do merged[k] = v end
  if extra ~= nil then
    if type(extra) ~= "table" then fail_arg(level, "request headers must be a table") end
    for k, v in pairs(extra) do
      check_header_text(k, "a header name", level + 1)
      check_header_text(v, "header " .. k, level + 1)
      merged[k:lower()] = v
    end
  end
  -- curl would label a body x-www-form-urlencoded, which Elasticsearch refuses.
  if has_body and not merged["content-type"] then merged["content-type"] = "application/json" end
  local lines = {}
  for k, v in pairs(merged) do lines[#lines + 1] = k .. ": " .. v end
  return lines
end

local function request_of(p)
  return { method = p.method, path = p.path }
end

function Transport:submit(req)
  if type(req) ~= "table" then fail_arg(2, "request must be a table, got %s", type(req)) end
  if not self.multi then fail_arg(2, "submit on a closed transport") end
  local method = req.method or "GET"
  if type(method) ~= "string" or not method:match("^%u+$") then
    fail_arg(2, "request method must be an upper-case word")
  end
  local path = req.path
  if type(path) ~= "string" or path:sub(1, 1) ~= "/" or path:find("[%s%c]") then
    fail_arg(2, "request path must be a string starting with '/' and without spaces")
  end
  local body = req.body
  if body ~= nil and type(body) ~= "string" and type(body) ~= "userdata" then
    fail_arg(2, "request body must be a string or an espipe.bulk buffer, got %s", type(body))
  end
  check_number(req.timeout, "request timeout", 2)
  local host = req.host
  if host ~= nil and (type(host) ~= "number" or not self.hosts:get(host)) then
    fail_arg(2, "request host must be an index into hosts (1..%d)", self.hosts:count())
  end
  local query = host_list.query(req.query, 2)
  local lines
  if req.headers == nil then
    -- the transport's own headers alone (lookups, pages): built once
    local key = body ~= nil and "body" or "none"
    lines = self.own_lines[key]
    if not lines then
      lines = header_lines(self.headers, nil, body ~= nil, 2)
      self.own_lines[key] = lines
    end
  else
    lines = header_lines(self.headers, req.headers, body ~= nil, 2)
  end
  local level = req.compress == nil and self.gzip or gzip_level(req.compress, "request compress", 2)

  if self.multi:inflight() >= self.max_inflight then
    return nil, errors.new {
      kind = "busy", request = { method = method, path = path },
      message = "max_inflight (" .. self.max_inflight .. ") requests already in flight",
    }
  end
  host = host or self.hosts:pick(cm.now())
  local id = self.next_id
  self.next_id = id + 1
  local url = self.hosts:get(host).url .. path .. (query and ("?" .. query) or "")
  -- body_buffer: a 2xx body comes back as an espipe.response_body (the
  -- received bytes, no Lua string copy) for consumers that read it in C.
  local ok, message, code = self.multi:add(id, url, method, lines, body,
    req.timeout or self.timeout, level, req.body_buffer == true)
  if not ok then
    return nil, errors.new {
      kind = code == "busy" and "busy" or "transport", code = code, message = message,
      request = { method = method, path = path },
    }
  end
  self.pending[id] = { host = host, method = method, path = path, ctx = req.ctx }
  return id
end

-- Failures that say the host itself is unreachable, not that one request went wrong.
local function host_unreachable(c)
  local code = c.code
  if code == "connect" or code == "resolve" then return true end
  if code == "timeout" then return not c.sent end
  if code == "recv" or code == "send" or code == "empty_reply" then return c.status == 0 end
  return false
end

function Transport:complete(c, now)
  local p = self.pending[c.id]
  self.pending[c.id] = nil
  local h = self.hosts:get(p.host)
  local res = {
    id = c.id, status = c.status, headers = c.headers, body = c.body,
    host = h.url, host_index = p.host, elapsed = c.elapsed, ctx = p.ctx,
  }
  if c.code then
    local dead = host_unreachable(c)
    res.err = errors.new {
      kind = "transport", code = c.code, message = c.message,
      request = request_of(p), host = h.url, host_dead = dead,
    }
    if dead then self.hosts:set_aside(p.host, now) end
  elseif c.status > 0 then
    self.hosts:revive(p.host)
  end
  return res
end

function Transport:poll(timeout)
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout or timeout < 0) then
    fail_arg(2, "poll timeout must be a number >= 0")
  end
  if not self.multi then return {} end
  local done = self.ready
  if #done > 0 then
    -- Completions already collected by request(): report them without waiting.
    self.ready = {}
    timeout = 0
  else
    done = {}
  end
  local raw = self.multi:poll(timeout or 0)
  local now = cm.now()
  for i = 1, #raw do
    done[#done + 1] = self:complete(raw[i], now)
  end
  return done
end

function Transport:inflight()
  if not self.multi then return 0 end
  return self.multi:inflight() + #self.ready
end

-- Blocking convenience: completions of other requests that arrive meanwhile
-- are kept for the next poll().
function Transport:request(req)
  if not self.multi then fail_arg(2, "request on a closed transport") end
  while self.multi:inflight() >= self.max_inflight do
    local done = self:poll(1)
    for i = 1, #done do self.ready[#self.ready + 1] = done[i] end
  end
  local id, err = self:submit(req)
  if not id then return nil, err end
  while true do
    local raw = self.multi:poll(1)
    local now = cm.now()
    local mine
    for i = 1, #raw do
      local res = self:complete(raw[i], now)
      if res.id == id then mine = res else self.ready[#self.ready + 1] = res end
    end
    if mine then
      if mine.err then return nil, mine.err end
      return mine
    end
  end
end

-- Clock and backoff wait for the client: while requests are in flight the
-- wait is a poll whose completions are kept for the next poll().
function Transport.now(_)
  return cm.now()
end

function Transport:sleep(seconds)
  local deadline = cm.now() + seconds
  while true do
    local left = deadline - cm.now()
    if left <= 0 then return end
    if not self.multi or self.multi:inflight() == 0 then return cm.sleep(left) end
    local raw = self.multi:poll(left)
    local now = cm.now()
    for i = 1, #raw do self.ready[#self.ready + 1] = self:complete(raw[i], now) end
  end
end

function Transport:close()
  if self.multi then
    self.multi:close()
    self.multi = nil
    self.pending = {}
    self.ready = {}
  end
end

Transport.__gc = Transport.close
Transport.__close = Transport.close

function Transport:__tostring()
  return string.format("espipe.transport.curl (%d hosts, %d in flight)", self.hosts:count(), self:inflight())
end

return M
