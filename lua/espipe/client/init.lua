-- The Elasticsearch client: document, search and index APIs over the
-- transport seam (curl multi outside nginx, cosockets inside), plus the bulk
-- indexer and scan helpers. Every API takes one table of named parameters
-- and returns the decoded response, or nil, err (an espipe.client.errors
-- table whose tostring is one line: "404 index_not_found_exception: no such
-- index [x] (GET /x/_doc/1)"). Wrong arguments raise.
--
-- The parts: espipe.client.api (the named-parameter APIs), .dispatch
-- (submit/wait, routing completions to the helper that submitted them),
-- .indices, .scan, .bulk_indexer (+ .bulk_router, .shard_map for
-- shard-aware sending). The transport is reached only through its seam
-- (lua/espipe/transport/README.md).
local api = require("espipe.client.api")
local bulk_indexer = require("espipe.client.bulk_indexer")
local bulk_router = require("espipe.client.bulk_router")
local dispatch = require("espipe.client.dispatch")
local errors = require("espipe.client.errors")
local indices = require("espipe.client.indices")
local options = require("espipe.client.options")
local scan = require("espipe.client.scan")
local transport = require("espipe.transport")

local type, pairs, ipairs, setmetatable, error = type, pairs, ipairs, setmetatable, error

local M = { _VERSION = require("espipe")._VERSION:match("[%d.]+$") } -- one version: espipe/init.lua
local Client = {}
Client.__index = Client
M.Client = Client
for name, fn in pairs(api.methods) do Client[name] = fn end
for name, fn in pairs(dispatch.methods) do Client[name] = fn end

-- The error constructors, where callers of the client have always found them.
M.http_error, M.transport_error, M.systemic = dispatch.http_error, errors.transport_error, errors.systemic

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
  return transport.new(topts)
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
      error("transport must be an object with submit/poll/inflight/now/sleep/close", 2)
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
  self.indices = indices.bind(self)
  return self
end

----------------------------------------------------------------------------
-- The transport, as far as the client's users need it

-- Requests submitted and not yet collected.
function Client:inflight()
  return self.transport:inflight()
end

-- The URLs of the transport's hosts (no credentials), by host index.
function Client:hosts()
  return self.transport:host_urls()
end

-- A node found later -> its host index, for requests pinned with host =.
function Client:add_host(node_url)
  return self.transport:add_host(node_url)
end

function Client:close()
  if self.transport.close then self.transport:close() end
end

----------------------------------------------------------------------------
-- Helpers

-- client:bulk_indexer{ ... } -> indexer | nil, err (a dead-letter file that
-- cannot be opened; see espipe.client.bulk_indexer); shard_aware sends
-- through an espipe.client.bulk_router.
-- (Neither is a tail call: wrong arguments are reported at the caller's line
-- on every Lua version.)
function Client:bulk_indexer(opts)
  local router = type(opts) == "table" and opts.shard_aware and bulk_router.new(self, opts, 3) or nil
  local ix, err = bulk_indexer.new(self, opts, 3, router)
  return ix, err
end

-- client:scan(index, query, opts) (see espipe.client.scan)
function Client:scan(index, query, opts)
  local s = scan.new(self, index, query, opts, 3)
  return s
end

return M
