-- Scan: every hit of a query, page by page, with the next page already
-- requested while Lua works on the current one.
--
--   for hit in client:scan(index, query, opts) do ... end
--   for page in client:scan(index, query, opts):pages() do ... end
--   local s = client:scan(...); local hit = s(); s:close()
--
-- opts: method = "pit" (default: point in time + search_after sorted on
--   _shard_doc; falls back to scroll when the cluster answers 400/404 to
--   _pit) | "scroll"; size = hits per page and slice (1000); slices = N
--   (sliced, the slices fetched concurrently); keep_alive = "1m" (renewed on
--   every request); sort (PIT only; default { "_shard_doc" }); _source;
--   retries = 5 (429/503/transport failures of one page, with backoff);
--   raw_source = true: each hit's _source is the JSON text of the document
--   exactly as the server sent it (a string, never decoded and re-encoded),
--   for pipelines that pass documents through unchanged.
--
-- Pages are read in one pass by the C core (espipe.core.search_response):
-- hits decode as espipe.json decodes (integers stay integers, [] stays
-- marked), and integer sort values too big for a Lua number stay exact as
-- their decimal text.
--
-- Contexts (the PIT or the scroll ids) are released at the end, on error,
-- when a 5.4 generic for is left early (the scan is the to-be-closed value),
-- on :close(), and, failing all that, when the scan is garbage collected.
--
-- Runtime failures raise: the iterator raises the espipe.errors object
-- (error(err, 0), tostring gives one line), after releasing the contexts;
-- wrap the loop in pcall to handle it. Wrong arguments raise at the call.
local json = require("espipe.json")
local core = require("espipe.core")
local errors = require("espipe.errors")
local url = require("espipe.client.url")

local type, ipairs, pairs, tostring, error, setmetatable = type, ipairs, pairs, tostring, error, setmetatable
local min, random = math.min, math.random
local search_response = core.search_response

local M = {}
local Scan = {}

local KNOWN = { method = true, size = true, slices = true, keep_alive = true, sort = true,
                _source = true, retries = true, raw_source = true, timeout = true }

local function client_mod() return require("espipe.client") end

local function release_on_gc(self)
  -- Lua 5.1/LuaJIT run __gc only for userdata: a sentinel carries it.
  if newproxy then
    local p = newproxy(true)
    getmetatable(p).__gc = function() self:_release(true) end
    self._gc_sentinel = p
  end
end

function M.new(client, index, query, opts, level)
  level = level or 2
  if type(index) ~= "string" and type(index) ~= "table" then
    error("scan: index must be a string or a list of names", level)
  end
  if query ~= nil and type(query) ~= "table" then
    error("scan: query must be a table (the query clause) or nil", level)
  end
  opts = opts or {}
  if type(opts) ~= "table" then error("scan: opts must be a table", level) end
  for k in pairs(opts) do
    if not KNOWN[k] then error("scan: unknown option '" .. tostring(k) .. "'", level) end
  end
  local method = opts.method or "pit"
  if method ~= "pit" and method ~= "scroll" then error("scan: method must be \"pit\" or \"scroll\"", level) end
  local slices = opts.slices or 1
  if type(slices) ~= "number" or slices < 1 or slices % 1 ~= 0 then
    error("scan: slices must be a positive integer", level)
  end
  if opts.raw_source ~= nil and type(opts.raw_source) ~= "boolean" then
    error("scan: raw_source must be a boolean", level)
  end
  local self = setmetatable({
    client = client, owner = { inbox = {} },
    index = url.segment(index, "index", level + 1),
    query = query, method = method, explicit = opts.method ~= nil,
    size = opts.size or 1000, slices = slices,
    keep_alive = opts.keep_alive or "1m", sort = opts.sort, source = opts._source,
    retries = opts.retries or 5, timeout = opts.timeout, raw_source = opts.raw_source == true,
    pages_ready = {}, slice = {}, pending = {}, n_pending = 0,
    started = false, finished = false, closed = false,
    pos = 0,
  }, Scan)
  release_on_gc(self)
  return self, nil, nil, self
end

----------------------------------------------------------------------------
-- Requests

function Scan:_search_body(sl)
  local b = { size = self.size, track_total_hits = false }
  if self.query then b.query = self.query end
  if self.source ~= nil then b._source = self.source end
  if self.slices > 1 then b.slice = { id = sl.id, max = self.slices } end
  if self.method == "pit" then
    b.pit = { id = self.pit_id, keep_alive = self.keep_alive }
    b.sort = self.sort or { "_shard_doc" }
    if sl.after then b.search_after = sl.after end
  else
    b.sort = { "_doc" }
  end
  return b
end

function Scan:_request_for(sl)
  if self.method == "scroll" and sl.scroll_id then
    return { method = "POST", path = "/_search/scroll",
             body = json.encode{ scroll = self.keep_alive, scroll_id = sl.scroll_id } }
  end
  local path, query = "/_search", nil
  if self.method == "scroll" then
    path, query = "/" .. self.index .. "/_search", "scroll=" .. self.keep_alive
  end
  return { method = "POST", path = path, query = query, body = json.encode(self:_search_body(sl)) }
end

function Scan:_submit(sl)
  local req = self:_request_for(sl)
  req.headers = { ["Content-Type"] = "application/json" }
  req.timeout = self.timeout
  local id, err = self.client:_submit(self.owner, req)
  if not id then return nil, client_mod().transport_error(err, req) end
  sl.req = req
  self.pending[id] = sl
  self.n_pending = self.n_pending + 1
  return true
end

local function retryable(res)
  if res.err then return true end
  return res.status == 429 or res.status == 502 or res.status == 503 or res.status == 504
end

-- One completed page request: queue its hits and request the next page.
function Scan:_complete(res)
  local sl = self.pending[res.id]
  if not sl then return true end
  self.pending[res.id] = nil
  self.n_pending = self.n_pending - 1
  local req = sl.req
  if retryable(res) and sl.attempts < self.retries then
    sl.attempts = sl.attempts + 1
    self.client:sleep(min(5, 0.1 * 2 ^ (sl.attempts - 1)) * (0.5 + 0.5 * random()))
    return self:_submit(sl)
  end
  if res.err then return nil, client_mod().transport_error(res.err, req) end
  if res.status ~= 200 then return nil, client_mod().http_error(res, req) end
  local v, derr, offset = search_response(res.body or "", self.raw_source)
  if v == nil then
    return nil, errors.new{ kind = "http", status = 200, type = "bad_response",
      reason = "search response is not valid JSON: " .. derr,
      offset = offset, request = { method = req.method, path = req.path } }
  end
  if type(v.hits) ~= "table" or type(v.hits.hits) ~= "table" then
    return nil, errors.new{ kind = "http", status = 200, type = "bad_response",
      reason = "search response without hits",
      request = { method = req.method, path = req.path } }
  end
  sl.attempts = 0
  if v.pit_id then self.pit_id = v.pit_id end
  if v._scroll_id then
    sl.scroll_id = v._scroll_id
    self.scroll_ids[v._scroll_id] = true
  end
  local hits = v.hits.hits
  local n = #hits
  if n > 0 then
    self.pages_ready[#self.pages_ready + 1] = hits
    sl.after = hits[n].sort
  end
  -- PIT pages hold `size` hits until the last; a scroll ends on an empty page
  local last = (n == 0) or (self.method == "pit" and n < self.size)
  if last then
    sl.done = true
    self.live = self.live - 1
    return true
  end
  return self:_submit(sl) -- prefetch: in flight while Lua works on this page
end

----------------------------------------------------------------------------
-- Contexts

function Scan:_open()
  self.started = true
  self.scroll_ids = {}
  if self.method == "pit" then
    local r, err = self.client:json_request{ method = "POST", path = "/" .. self.index .. "/_pit",
                                              query = "keep_alive=" .. self.keep_alive }
    if not r then
      if not self.explicit and err.kind == "http" and (err.status == 400 or err.status == 404)
        and err.type ~= "index_not_found_exception" then
        self.method = "scroll"
      else
        return nil, err
      end
    else
      self.pit_id = r.id
    end
  end
  self.live = self.slices
  for i = 1, self.slices do
    local sl = { id = i - 1, attempts = 0 }
    self.slice[i] = sl
    local ok, err = self:_submit(sl)
    if not ok then return nil, err end
  end
  return true
end

-- Release the PIT / scroll contexts. From __gc: fire and forget.
function Scan:_release(from_gc)
  if self.released or not self.started then return end
  self.released = true
  local req
  if self.pit_id then
    req = { method = "DELETE", path = "/_pit", body = json.encode{ id = self.pit_id } }
  elseif self.scroll_ids and next(self.scroll_ids) then
    local ids = {}
    for id in pairs(self.scroll_ids) do ids[#ids + 1] = id end
    req = { method = "DELETE", path = "/_search/scroll", body = json.encode{ scroll_id = ids } }
  end
  if not req then return end
  req.headers = { ["Content-Type"] = "application/json" }
  if from_gc then
    pcall(self.client.transport.submit, self.client.transport, req)
    return
  end
  -- let in-flight page requests finish so their contexts are the ones freed
  while self.n_pending > 0 do
    for _, res in ipairs(self.client:_wait(self.owner, 1)) do
      if self.pending[res.id] then
        self.pending[res.id] = nil
        self.n_pending = self.n_pending - 1
        local v = res.status == 200 and json.decode(res.body or "")
        if type(v) == "table" and v._scroll_id then self.scroll_ids[v._scroll_id] = true end
      end
    end
    if self.client.transport:inflight() == 0 then break end
  end
  if self.pit_id == nil and req.path == "/_search/scroll" then
    local ids = {}
    for id in pairs(self.scroll_ids) do ids[#ids + 1] = id end
    req.body = json.encode{ scroll_id = ids }
  end
  local res, err = self.client:perform(req)
  -- 404: already gone (expired or freed), which is what we wanted
  if not res then return nil, err end
  if res.status ~= 200 and res.status ~= 404 then return nil, client_mod().http_error(res, req) end
  return true
end

function Scan:close()
  if self.closed then return true end
  self.closed = true
  self.finished = true
  self.pages_ready = {}
  return self:_release(false)
end
Scan.__close = function(self) self:close() end
Scan.__gc = function(self) if not self.closed then self:_release(true) end end

function Scan:_fail(err)
  self:close()
  self.error = err
  error(err, 0)
end

----------------------------------------------------------------------------
-- Iteration

-- The next page (array of hits), or nil at the end.
function Scan:next_page()
  if self.closed then return nil end
  if not self.started then
    local ok, err = self:_open()
    if not ok then return self:_fail(err) end
  end
  while #self.pages_ready == 0 do
    if self.live == 0 and self.n_pending == 0 then
      self:close()
      return nil
    end
    for _, res in ipairs(self.client:_wait(self.owner, 1)) do
      local ok, err = self:_complete(res)
      if not ok then return self:_fail(err) end
    end
  end
  return table.remove(self.pages_ready, 1)
end

function Scan:pages()
  return function() return self:next_page() end, nil, nil, self
end

-- The next hit, or nil at the end.
function Scan:next()
  local page = self.page
  if not page or self.pos >= #page then
    page = self:next_page()
    if not page then return nil end
    self.page, self.pos = page, 0
  end
  self.pos = self.pos + 1
  return page[self.pos]
end

function Scan:err() return self.error end

Scan.__call = Scan.next
Scan.__index = Scan

return M
