-- What a transform gets as ctx: lookups that run concurrently on the
-- transport (libcurl multi outside nginx), so that a batch of documents
-- waits for its slowest lookup, not for the sum of them.
--
--   local ctx = transform_ctx.new{ client = <the job's client>, concurrency = 16, timeout = 10,
--                                  retries = 2, cache = nil | entries }
--   ctx:mget(index, ids [, { url = }]) -> found | nil, err
--       found[id] = the document's _source for each id found (ids as strings);
--       an id not found is absent. index "http://host:9200/name" (or url =)
--       reads another cluster. Ids are asked once each, 1000 per request, the
--       requests in flight together; with ctx.cache, ids seen before are not asked again.
--   ctx:search(index, body [, { url = }]) -> the decoded response | nil, err
--   ctx:http{ url =, method = "GET", body =, headers =, timeout = } -> res | nil, err
--       res = { status =, headers =, body = } (2xx only; another status is an err with err.status)
--   ctx:all{ req, req, ... } -> results, errs   (requests as for ctx:http, all in flight
--       together up to concurrency; results[i] or errs[i] for each, in order; n = #reqs)
--   ctx.cache   an LRU cache (espipe.pipeline.lru) with `cache = N`, else nil
--   ctx:close() closes the connections the lookups opened
-- Failures are returned (nil, err), never raised: a transform decides; one
-- that raises dead-letters its documents. Requests to the job's cluster share
-- the job's transport; HTTP lookups go on a transport of their own without
-- the cluster's credentials (send them in headers when a service needs some).
-- Retried: timeouts, reset connections, 429 and 5xx, up to `retries` times.
local concurrent = require("espipe.client.concurrent")
local errors = require("espipe.client.errors")
local url_mod = require("espipe.client.url")
local json = require("espipe.json")
local lru = require("espipe.pipeline.lru")
local options = require("espipe.client.options")

local M = {}
local Ctx = {}
Ctx.__index = Ctx

local MGET_CHUNK = 1000

function M.new(opts)
  local limits = concurrent.options({ concurrency = opts.concurrency, timeout = opts.timeout,
    retries = opts.retries }, "transform ctx", 2)
  return setmetatable({ client = opts.client, limits = limits, clusters = {}, hosts = {},
    cache = opts.cache and lru.new(opts.cache) or nil }, Ctx)
end

-- "http://host:9200/name" -> "http://host:9200", "name"
local function split_url(s)
  local origin, rest = s:match("^(https?://[^/]+)(.*)$")
  return origin, rest
end

local function new_client(self, origin)
  return require("espipe.client").new { hosts = { origin }, max_inflight = self.limits.concurrency,
    timeout = self.limits.timeout }
end

-- The client and index name an index argument means.
function Ctx:cluster(index, o, what)
  if type(index) ~= "string" or index == "" then error(what .. ": index must be a non-empty string", 3) end
  if o ~= nil and type(o) ~= "table" then error(what .. ": options must be a table", 3) end
  local url = o and o.url
  if o then options.check(o, { "url" }, what, 3) end
  if not url and index:find("^https?://") then
    local origin, rest = split_url(index)
    url, index = origin, rest:match("^/([^/]+)/?$")
    if not index then error(what .. ": expected http://host:port/index, got a URL with another path", 3) end
  end
  if not url then return self.client, index end
  local c = self.clusters[url]
  if not c then
    c = new_client(self, url)
    self.clusters[url] = c
  end
  return c, index
end

-- The ids not in the cache (each once); those in it are put into found.
local function ids_to_ask(self, key_prefix, ids, found)
  local ask, seen, cache = {}, {}, self.cache
  for i = 1, #ids do
    local id = ids[i]
    if type(id) ~= "string" and type(id) ~= "number" then
      error("ctx:mget: ids[" .. i .. "] must be a string or a number, got " .. type(id), 3)
    end
    id = tostring(id)
    if not seen[id] then
      seen[id] = true
      local cached = cache and cache:get(key_prefix .. id)
      if cached then found[id] = cached elseif cached == nil then ask[#ask + 1] = id end
    end
  end
  return ask
end

local function mget_requests(name, ask)
  local path, reqs = "/" .. url_mod.segment(name, "index", 3) .. "/_mget", {}
  for first = 1, #ask, MGET_CHUNK do
    local chunk = {}
    for i = first, math.min(first + MGET_CHUNK - 1, #ask) do chunk[#chunk + 1] = ask[i] end
    reqs[#reqs + 1] = { method = "POST", path = path, body = json.encode { ids = json.array(chunk) } }
  end
  return reqs
end

-- One _mget answer into found (and the cache); nil, err when a document
-- could not be read (a missing index is that, not "not found").
local function read_mget(self, key_prefix, res, found)
  local v, derr = json.decode(res.body or "")
  if type(v) ~= "table" or type(v.docs) ~= "table" then
    return nil, errors.new { kind = "json", message = "ctx:mget: cannot parse the answer: " .. tostring(derr) }
  end
  for _, d in ipairs(v.docs) do
    if d.error then
      local e = type(d.error) == "table" and d.error or { reason = tostring(d.error) }
      return nil, errors.new { kind = "lookup", type = e.type, reason = e.reason,
        message = "ctx:mget: " .. tostring(d._index) .. "/" .. tostring(d._id) .. ": " .. tostring(e.reason) }
    end
    -- (found without a _source, the mapping disabling it: found all the same)
    local source = d.found and (d._source or {}) or false
    if source then found[d._id] = source end
    if self.cache then self.cache:set(key_prefix .. d._id, source) end
  end
  return true
end

function Ctx:mget(index, ids, o)
  local client, name = self:cluster(index, o, "ctx:mget")
  if type(ids) ~= "table" then error("ctx:mget: ids must be a list", 2) end
  local key_prefix = (o and o.url or "") .. "\0" .. index .. "\0"
  local found = {}
  local ask = ids_to_ask(self, key_prefix, ids, found)
  if #ask == 0 then return found end
  local results, errs = concurrent.run(client, mget_requests(name, ask), self.limits)
  for i = 1, results.n do
    if errs[i] then return nil, errs[i] end
    local ok, err = read_mget(self, key_prefix, results[i], found)
    if not ok then return nil, err end
  end
  return found
end

function Ctx:search(index, body, o)
  local client, name = self:cluster(index, o, "ctx:search")
  if body ~= nil and type(body) ~= "table" then error("ctx:search: body must be a table", 2) end
  local results, errs = concurrent.run(client, { { method = "POST",
    path = "/" .. url_mod.segment(name, "index", 2) .. "/_search", body = json.encode(body or {}) } }, self.limits)
  if errs[1] then return nil, errs[1] end
  local v, derr = json.decode(results[1].body or "")
  if type(v) ~= "table" then
    return nil, errors.new { kind = "json", message = "ctx:search: cannot parse the answer: " .. tostring(derr) }
  end
  return v
end

local HTTP_KEYS = { url = true, method = true, body = true, headers = true, timeout = true }

local function request_error(i, msg)
  error((i and ("ctx:all: request " .. i) or "ctx:http") .. msg, 4)
end

-- A request of ctx:http / ctx:all as the transport takes it, pinned to its
-- host. (Runs for every lookup: the message is only built for an error.)
function Ctx:transport_request(r, i)
  if type(r) ~= "table" then request_error(i, " must be a table") end
  for k in pairs(r) do
    if not HTTP_KEYS[k] then
      options.check(r, HTTP_KEYS, i and ("ctx:all: request " .. i) or "ctx:http", 3)
    end
  end
  local origin, rest
  if type(r.url) == "string" then origin, rest = split_url(r.url) end
  if not origin then request_error(i, ": url must be an http:// or https:// URL") end
  if r.body ~= nil and type(r.body) ~= "string" then request_error(i, ": body must be a string") end
  local host = self.hosts[origin]
  if not host then
    if origin:find("@", 1, true) then
      request_error(i, ": credentials in the URL are not sent; give an authorization header")
    end
    if not self.http_client then self.http_client = new_client(self, origin) end
    host = self.http_client:add_host(origin)
    self.hosts[origin] = host
  end
  return { method = r.method or "GET", path = rest ~= "" and rest or "/", body = r.body, headers = r.headers,
    timeout = r.timeout or self.limits.timeout, host = host }
end

function Ctx:all(reqs)
  if type(reqs) ~= "table" then error("ctx:all: expected a list of requests", 2) end
  local treqs = {}
  for i = 1, #reqs do treqs[i] = self:transport_request(reqs[i], i) end
  if #treqs == 0 then return { n = 0 }, { n = 0 } end
  return concurrent.run(self.http_client, treqs, self.limits)
end

function Ctx:http(r)
  local treq = self:transport_request(r)
  local results, errs = concurrent.run(self.http_client, { treq }, self.limits)
  return results[1], errs[1]
end

function Ctx:close()
  if self.http_client then self.http_client:close() end
  for _, c in pairs(self.clusters) do c:close() end
  self.http_client, self.clusters, self.hosts = nil, {}, {}
end

return M
