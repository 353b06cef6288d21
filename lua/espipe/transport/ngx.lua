-- The transport seam (see transport/README.md) on OpenResty cosockets:
-- each submitted request runs in its own ngx.thread, completions are queued
-- and announced through a semaphore, so poll() yields to nginx's event loop
-- instead of blocking the worker. Usable wherever cosockets are (rewrite,
-- access, content, timers); not in log/header/body filters or init phases.
local errors = require "espipe.client.errors"
local host_list = require "espipe.transport.hosts"
local phase = require "espipe.transport.phase"
local semaphore = require "ngx.semaphore"

local ngx = ngx
local tcp = ngx.socket.tcp
local spawn = ngx.thread.spawn
local now = ngx.now
local update_time = ngx.update_time
local concat = table.concat
local tonumber, tostring, type, pairs, ipairs = tonumber, tostring, type, pairs, ipairs
local str_lower, str_format = string.lower, string.format

local M = {}
local mt = { __index = M }

local function parse_host(url, index)
  if type(url) ~= "string" then error("hosts[" .. index .. "] must be a URL string", 3) end
  local scheme, rest = url:match("^(https?)://(.+)$")
  if not scheme then scheme, rest = "http", url end
  local user, pass, hostport = rest:match("^([^:@/]*):([^@/]*)@(.+)$")
  rest = hostport or rest
  local host, port = rest:match("^([^:/]+):?(%d*)/?$")
  if not host then
    error("bad host '" .. (hostport and "<credentials>@" .. rest or url)
      .. "': expected http(s)://host[:port]", 3)
  end
  port = tonumber(port) or (scheme == "https" and 443 or 9200)
  return { url = scheme .. "://" .. host .. ":" .. port, scheme = scheme, host = host, port = port },
         user and { username = ngx.unescape_uri(user), password = ngx.unescape_uri(pass) } or nil
end

local function encode_base64(s) return ngx.encode_base64(s) end

local function auth_header(auth)
  if auth == nil then return nil end
  if type(auth) ~= "table" then error("auth must be a table", 3) end
  if auth.username then
    return "Basic " .. encode_base64(auth.username .. ":" .. (auth.password or ""))
  elseif auth.api_key then
    return "ApiKey " .. auth.api_key
  elseif auth.bearer then
    return "Bearer " .. auth.bearer
  end
  error("auth needs username/password, api_key or bearer", 3)
end

-- ngx.transport.new{ hosts=, auth=, connect_timeout=, timeout=, tls=,
-- max_inflight=, dead_host_retry=, headers=, pool_size=, keepalive_timeout= }
function M.new(opts)
  if type(opts) ~= "table" then error("transport options must be a table", 2) end
  if type(opts.hosts) ~= "table" or #opts.hosts == 0 then
    error("transport needs hosts = { 'http://host:port', ... }", 2)
  end
  if opts.compress then
    error("compress (gzip request bodies) is not available in the ngx transport", 2)
  end
  local hosts, url_auth = {}, nil
  for i, h in ipairs(opts.hosts) do
    local cred
    hosts[i], cred = parse_host(h, i)
    url_auth = url_auth or cred
  end
  local tls = opts.tls or {}
  local extra = {}
  for k, v in pairs(opts.headers or {}) do extra[#extra + 1] = k .. ": " .. v .. "\r\n" end
  local self = {
    hosts = host_list.new(hosts, opts.dead_host_retry or 30),
    authorization = auth_header(opts.auth or url_auth),
    max_response_bytes = opts.max_response_bytes or 256 * 1024 * 1024,
    connect_ms = (opts.connect_timeout or 5) * 1000,
    timeout_ms = (opts.timeout or 60) * 1000,
    verify = not tls.insecure,
    max_inflight = opts.max_inflight or 8,
    pool_size = opts.pool_size or 32,
    keepalive_ms = (opts.keepalive_timeout or 60) * 1000,
    extra_headers = concat(extra),
    seq = 0,
    running = 0,
    done = {},
    ready = semaphore.new(0),
    closed = false,
  }
  if tls.insecure then
    ngx.log(ngx.WARN, "espipe: TLS verification is off (tls.insecure)")
  end
  return setmetatable(self, mt)
end

function M.available()
  return phase.cosockets_available()
end

-- A node found later (shard-aware bulk) -> its host index, for submit{ host = }.
-- It joins no round-robin; a URL already known returns its index.
function M:add_host(url)
  return self.hosts:add((parse_host(url, self.hosts:count() + 1)))
end

function M:host_urls()
  return self.hosts:urls()
end

local function query_string(q)
  local s = host_list.query(q, 3)
  return s and ("?" .. s) or ""
end

local function read_chunked(sock)
  local parts = {}
  while true do
    local line, err = sock:receive("*l")
    if not line then return nil, err end
    local size = tonumber(line:match("^%s*(%x+)"), 16)
    if not size then return nil, "bad chunk size line" end
    if size == 0 then
      repeat
        line, err = sock:receive("*l")
        if not line then return nil, err end
      until line == ""
      return concat(parts)
    end
    local data
    data, err = sock:receive(size)
    if not data then return nil, err end
    parts[#parts + 1] = data
    local crlf
    crlf, err = sock:receive(2)
    if not crlf then return nil, err end
  end
end

-- One HTTP/1.1 exchange. Returns res, or nil, message, code, connect_failed.
local function exchange(self, host, req, query, body)
  local sock = tcp()
  sock:settimeouts(self.connect_ms, req.timeout and req.timeout * 1000 or self.timeout_ms,
                   req.timeout and req.timeout * 1000 or self.timeout_ms)
  local ok, err = sock:connect(host.host, host.port, { pool = host.url, pool_size = self.pool_size })
  if not ok then return nil, err, "connect", true end
  if host.scheme == "https" and sock:getreusedtimes() == 0 then
    -- lua-resty-core 0.1.25 can raise an assertion instead of returning the
    -- error when verification fails: either way the handshake failed.
    local called
    called, ok, err = pcall(sock.sslhandshake, sock, nil, host.host, self.verify)
    if not called then ok, err = nil, "TLS handshake failed: " .. tostring(ok) end
    if not ok then sock:close(); return nil, err, "tls", true end
  end
  local head = {
    req.method or "GET", " ", req.path or "/", query, " HTTP/1.1\r\n",
    "Host: ", host.host, ":", host.port, "\r\n",
    "Content-Length: ", body and #body or 0, "\r\n",
    self.extra_headers,
  }
  if self.authorization then head[#head + 1] = "Authorization: " .. self.authorization .. "\r\n" end
  local has_ct = false
  for k, v in pairs(req.headers or {}) do
    if str_lower(k) == "content-type" then has_ct = true end
    head[#head + 1] = k .. ": " .. v .. "\r\n"
  end
  if body and not has_ct then head[#head + 1] = "Content-Type: application/json\r\n" end
  head[#head + 1] = "\r\n"
  if body then head[#head + 1] = body end
  local sent
  sent, err = sock:send(head)
  if not sent then sock:close(); return nil, err, "send" end

  local line
  line, err = sock:receive("*l")
  if not line then sock:close(); return nil, err, err == "timeout" and "timeout" or "recv" end
  local status = tonumber(line:match("^HTTP/%d%.%d (%d%d%d)"))
  if not status then sock:close(); return nil, "bad status line: " .. line, "protocol" end
  local headers = {}
  while true do
    line, err = sock:receive("*l")
    if not line then sock:close(); return nil, err, "recv" end
    if line == "" then break end
    local k, v = line:match("^([^:]+):%s*(.-)%s*$")
    if k then headers[str_lower(k)] = v end
  end
  local data
  if req.method == "HEAD" or status == 204 or status == 304 then
    data = ""
  elseif headers["transfer-encoding"] and headers["transfer-encoding"]:lower():find("chunked", 1, true) then
    data, err = read_chunked(sock)
  elseif headers["content-length"] then
    local n = tonumber(headers["content-length"])
    if not n or n > self.max_response_bytes then
      sock:close()
      return nil, "response of " .. tostring(headers["content-length"]) .. " bytes is over max_response_bytes", "too_large"
    end
    data, err = n > 0 and sock:receive(n) or "", nil
  else
    data, err = sock:receive("*a")
    headers.connection = "close"
  end
  if not data then sock:close(); return nil, err, err == "timeout" and "timeout" or "recv" end
  if (headers.connection or ""):lower() == "close" then
    sock:close()
  else
    sock:setkeepalive(self.keepalive_ms, self.pool_size)
  end
  return { status = status, headers = headers, body = data }
end

local function run(self, id, index, req, query, body, started)
  local host = self.hosts:get(index)
  local res, msg, code, connect_failed = exchange(self, host, req, query, body)
  update_time()
  if not res then
    local dead = connect_failed or code == "recv" or code == "send"
    if dead then self.hosts:set_aside(index, now()) end
    res = { status = 0, err = errors.new{
      kind = "transport", message = str_format("%s: %s", host.url, tostring(msg)), code = code,
      host = host.url, host_dead = dead or false,
      request = { method = req.method or "GET", path = req.path or "/" } } }
  else
    self.hosts:revive(index)
  end
  res.id, res.host, res.host_index, res.ctx, res.elapsed = id, host.url, index, req.ctx, now() - started
  self.running = self.running - 1
  self.done[#self.done + 1] = res
  self.ready:post(1)
end

-- t:submit{ method=, path=, query=, headers=, body=, timeout=, host=, ctx= } -> id | nil, err
function M:submit(req)
  if type(req) ~= "table" then error("submit expects a request table", 2) end
  if self.closed then error("transport is closed", 2) end
  if self.running >= self.max_inflight then
    return nil, errors.new{ kind = "busy", message = "max_inflight (" .. self.max_inflight .. ") reached" }
  end
  local body = req.body
  if body ~= nil and type(body) ~= "string" then
    if type(body) == "userdata" and body.body then
      body = body:body()
    else
      error("request body must be a string or a bulk buffer", 2)
    end
  end
  if req.host ~= nil and not self.hosts:get(req.host) then error("no host #" .. tostring(req.host), 2) end
  local query = query_string(req.query) -- raises here, not in the light thread
  self.seq = self.seq + 1
  local id = self.seq
  update_time()
  local th, err = spawn(run, self, id, req.host or self.hosts:pick(now()), req, query, body, now())
  if not th then
    return nil, errors.new{ kind = "transport", message = "cannot start a light thread: " .. tostring(err) }
  end
  self.running = self.running + 1
  return id
end

-- t:poll(timeout) -> array of completions (empty when none came in time)
function M:poll(timeout)
  if #self.done == 0 and self.running > 0 then
    self.ready:wait(timeout or 0)
  end
  local out = self.done
  self.done = {}
  -- every completion posted once; the ones returned now are consumed
  while self.ready:count() > 0 do self.ready:wait(0) end
  return out
end

function M:inflight()
  return self.running
end

function M:request(req)
  local id, err = self:submit(req)
  if not id then return nil, err end
  local others = {}
  while true do
    for _, res in ipairs(self:poll(self.timeout_ms / 1000)) do
      if res.id == id then
        -- completions of other requests stay for the caller's next poll
        for i = #others, 1, -1 do table.insert(self.done, 1, others[i]) end
        if res.err then return nil, res.err end
        return res
      end
      others[#others + 1] = res
    end
  end
end

function M.now(_)
  update_time()
  return now()
end

-- Under 1 ms, ngx.sleep rounds to 0, which Debian's nginx (without the
-- "delayed events" patch) answers with a warning per call: sleep 1 ms.
function M.sleep(_, seconds)
  ngx.sleep(seconds > 0.001 and seconds or 0.001)
end

function M:close()
  self.closed = true
end

return M
