-- Scan: every hit of a query, page by page, each slice's next page already
-- requested while Lua works on the current one. The one scan of espipe: the
-- client's iterator and every pipeline (reindex, export) use it.
--
--   for hit in client:scan(index, query, opts) do ... end           -- hits
--   for page in client:scan(index, query, opts):pages() do ... end  -- pages
--   local s = client:scan(...)
--   local page, err = s:next_page()    -- nil, err on failure; nil at the end
--   local hit, err = s:next_hit()
--   s:positions(), s.pit_id, s.restarted, s:close()
--
-- opts: method = "pit" (default: point in time + search_after on
--   _shard_doc) | "scroll"; size = hits per page and slice (1000); slices = N
--   (sliced, fetched concurrently); keep_alive = "1m" (renewed by every
--   request); sort (PIT only; default { "_shard_doc" }); _source; timeout
--   (per request); retry = a policy from espipe.client.retry, or retry_for =
--   seconds (default 600) for one: how long a page is asked for again after
--   retryable failures (capped exponential backoff with jitter);
--   raw_source = true: each hit's _source is the JSON text the server sent
--     (never decoded), for pipelines passing documents through;
--   raw_pages = true: pages carry the response bytes (page.body, an
--     espipe.response_body on the curl transport, else a string) and
--     page.n instead of hits. page.body is valid only until the next page is
--     asked for (or the scan is closed): its bytes are released then;
--   advance = true (with raw_pages): each page is parsed once, by the
--     consumer: the page comes out with slice and body only, and the
--     consumer hands back the position its reader found,
--     s:advance(page, pos) (pos as parquet write_page returns it; nil: the
--     scan reads it itself), which fills n, search_after, last and only then
--     requests that slice's next page. A page not advanced by the next
--     next_page() is advanced then;
--   resume = s:positions() of an earlier scan, pit_id = its s.pit_id: go on
--     where it stopped (see below); keep_pit = true: a scan that did not
--     reach its end leaves its PIT open (for a resume), freed otherwise.
--
-- A page: { slice = 0-based id, number = the slice's page count (1 first),
--   hits = { ... } | body =, n =, search_after = sort values of its last hit,
--   last = true on a slice's last page, pit_id = }.
-- s:positions() -> { ["0"] = { search_after =, done = }, ... }: where each
--   slice stands after the pages handed out so far; a scan given
--   resume = positions repeats none of them (PIT only: a scroll has no
--   position).
--
-- What holds:
-- * PIT pages are idempotent: a page whose request failed in a retryable way
--   (connection failure or reset, timeout, 429, 5xx: espipe.client.retry)
--   is asked for again from the same sort values, for up to retry_for.
--   Systemic failures (401/403, TLS, unknown host) fail at once.
-- * A scroll cannot be resumed. A continuation (POST /_search/scroll) is
--   retried only when the server cannot have seen it (connection refused,
--   unknown host) or refused it (429); any other lost response fails the
--   scan with an error naming the slice and page, since the server may
--   already have advanced the scroll and a re-send would skip that page.
-- * method defaults to "pit" and falls back to scroll only when the cluster
--   has no point-in-time API (_pit answers 400/404/405 other than
--   index_not_found), and never for a scan given pit_id or resume positions
--   (slices only marked done do not count: a worker's share of a job).
-- * A resume reuses the saved PIT while it lives (each request extends its
--   keep_alive). When it is gone (404), a new PIT is opened and the
--   unfinished slices start from their beginning (s.restarted = the list of
--   slice ids): _shard_doc positions belong to one PIT. A PIT that expires in
--   the middle of a scan fails it.
--
-- Pages are read by the C core (espipe.core.search_response): integers stay
-- integers, [] stays marked, big integer sort values stay exact.
--
-- The PIT / scroll contexts are released at the end, on error, when a 5.4
-- generic for is left early (the scan is the to-be-closed value), on
-- :close(), and failing all that when the scan is garbage collected.
--
-- Failures: next_page/next_hit return nil, err (an espipe.client.errors table,
-- after releasing the contexts); the for-loop iterators (the scan itself,
-- :pages()) cannot return an error, so they raise it (error(err, 0)): wrap
-- the loop in pcall. Wrong arguments raise at the call.
local json = require("espipe.json")
local core = require("espipe.core")
local errors = require("espipe.client.errors")
local http_error = require("espipe.client.dispatch").http_error
local options = require("espipe.client.options")
local url = require("espipe.client.url")
local retry_mod = require("espipe.client.retry")
local version = require("espipe.client.version")
local wire = require("espipe.client.wire")

local type, ipairs, pairs, tostring, error, setmetatable = type, ipairs, pairs, tostring, error, setmetatable
local min, remove = math.min, table.remove
local search_response = core.search_response

local M = {}
local Scan = {}

local KNOWN = { "method", "size", "slices", "keep_alive", "sort", "_source", "retry", "retry_for", "raw_source",
                "timeout", "raw_pages", "advance", "resume", "pit_id", "keep_pit" }

local HEADERS = { ["Content-Type"] = "application/json" }




local function release_on_gc(self)
  -- Lua 5.1/LuaJIT run __gc only for userdata: a sentinel carries it.
  if newproxy then
    local p = newproxy(true)
    getmetatable(p).__gc = function() self:_release(true) end
    self._gc_sentinel = p
  end
end

-- level: as error() counts it from here (new passes its own + 1).
local function check_args(index, query, opts, level)
  if type(index) ~= "string" and type(index) ~= "table" then
    error("scan: index must be a string or a list of names", level)
  end
  if query ~= nil and type(query) ~= "table" then
    error("scan: query must be a table (the query clause) or nil", level)
  end
  options.check(opts, KNOWN, "scan", level)
  local method = opts.method or "pit"
  if method ~= "pit" and method ~= "scroll" then error("scan: method must be \"pit\" or \"scroll\"", level) end
  local slices = opts.slices or 1
  if type(slices) ~= "number" or slices < 1 or slices % 1 ~= 0 then
    error("scan: slices must be a positive integer", level)
  end
  for _, k in ipairs{ "raw_source", "raw_pages", "advance", "keep_pit" } do
    if opts[k] ~= nil and type(opts[k]) ~= "boolean" then error("scan: " .. k .. " must be a boolean", level) end
  end
  if opts.resume ~= nil and type(opts.resume) ~= "table" then
    error("scan: resume must be a table of positions (as s:positions() returns)", level)
  end
  if opts.pit_id ~= nil and type(opts.pit_id) ~= "string" then error("scan: pit_id must be a string", level) end
  if (opts.resume or opts.pit_id) and method == "scroll" then
    error("scan: resume and pit_id need method \"pit\" (a scroll has no position)", level)
  end
  -- what goes into every page request is checked now, not as a raise deep
  -- inside paging where the caller expects nil, err
  local ok, err = pcall(json.encode, { query = query, sort = opts.sort, _source = opts._source, resume = opts.resume })
  if not ok then
    error("scan: query, sort, _source or resume cannot be sent as JSON: "
      .. tostring(err):gsub("^[^:]*:%d+: ", ""), level)
  end
  return method, slices
end

-- Whether resume holds a position in some PIT: slices only marked done (a
-- worker's share of a job leaves the others' done) let a scroll take over.
function M.has_position(resume)
  for _, p in pairs(resume or {}) do
    if p.search_after ~= nil then return true end
  end
  return false
end

function M.new(client, index, query, opts, level)
  level = level or 2
  opts = opts or {}
  if type(opts) ~= "table" then error("scan: opts must be a table", level) end
  local method, slices = check_args(index, query, opts, level + 1)
  local raw_pages = opts.raw_pages == true
  local self = setmetatable({
    client = client, owner = { inbox = {} },
    index = url.segment(index, "index", level),
    query = query, method = method,
    -- never fall back to a scroll when asked for a PIT or resuming one
    may_fall_back = opts.method == nil and opts.pit_id == nil and not M.has_position(opts.resume),
    size = opts.size or 1000, nslices = slices,
    keep_alive = opts.keep_alive or "1m", sort = opts.sort, source = opts._source,
    retry = opts.retry or retry_mod.new({ retry_for = opts.retry_for }, level + 1),
    timeout = opts.timeout, raw_source = opts.raw_source == true,
    raw_pages = raw_pages, advance_mode = raw_pages and opts.advance == true,
    keep_pit = opts.keep_pit == true,
    pit_id = opts.pit_id, saved_pit = opts.pit_id ~= nil, restarted = nil,
    wire = version.known(client), -- nil: read before the first request (Scan:_pick_method)
    ready = {}, slice = {}, pending = {}, n_pending = 0, delayed = {},
    started = false, closed = false, pos = 0, handed_pos = {},
  }, Scan)
  if raw_pages then self.page_position = require("espipe.parquet").page_position end
  local resume = opts.resume or {}
  for i = 0, slices - 1 do
    local saved = resume[tostring(i)] or {}
    self.slice[i] = { id = i, after = saved.search_after, done = saved.done == true, number = 0 }
    if saved.search_after ~= nil or saved.done then
      self.handed_pos[i] = { search_after = saved.search_after, done = saved.done == true or nil }
    end
  end
  release_on_gc(self)
  return self, nil, nil, self
end

----------------------------------------------------------------------------
-- Requests

function Scan:_search_body(sl)
  local b = { size = self.size, track_total_hits = false }
  if self.query then b.query = self.query end
  if self.source ~= nil then b._source = self.source end
  if self.nslices > 1 then b.slice = { id = sl.id, max = self.nslices } end
  if self.method == "pit" then
    b.pit = { id = self.pit_id, keep_alive = self.keep_alive }
    b.sort = self.sort or wire.pit_sort(self.wire)
    if sl.after then b.search_after = sl.after end
  else
    b.sort = { "_doc" }
  end
  return b
end

function Scan:_request_for(sl)
  local req
  if self.method == "scroll" and sl.scroll_id then
    req = { method = "POST", path = "/_search/scroll",
            body = json.encode{ scroll = self.keep_alive, scroll_id = sl.scroll_id } }
  else
    local path, query = "/_search", nil
    if self.method == "scroll" then
      path, query = "/" .. self.index .. "/_search", "scroll=" .. self.keep_alive
    end
    req = { method = "POST", path = path, query = query, body = json.encode(self:_search_body(sl)) }
  end
  req.headers, req.timeout, req.body_buffer = HEADERS, self.timeout, self.raw_pages or nil
  return req
end

function Scan:_submit(sl)
  local req = self:_request_for(sl)
  local id, err = self.client:_submit(self.owner, req)
  if not id then return nil, errors.transport_error(err, req) end
  sl.req = req
  self.pending[id] = sl
  self.n_pending = self.n_pending + 1
  return true
end

local function page_name(self, sl)
  local s = (self.method == "scroll" and "scroll" or "PIT") .. " page " .. (sl.number + 1)
  if self.nslices > 1 then s = s .. " of slice " .. sl.id end
  return s
end

-- "retry" when this failed request can be sent again without losing or
-- repeating hits, else "systemic" or "permanent" (espipe.client.retry).
function Scan:_classify(sl, res)
  local class = self.retry:classify(res, sl.req)
  if class == "retry" and self.method == "scroll" and sl.scroll_id then
    -- the server may have advanced the scroll unless it never saw the request
    local refused = res.err and res.err.code == "connect"
    if not (refused or res.status == 429) then return "lost" end
  end
  return class
end

function Scan:_page_error(sl, res, class)
  local err = res.err and errors.transport_error(res.err, sl.req) or http_error(res, sl.req)
  err.page, err.slice = sl.number + 1, sl.id
  local what = page_name(self, sl)
  if class == "lost" then
    err.reason = what .. " lost (" .. tostring(err.reason or err.message or err.kind) .. "): the server may"
      .. " have advanced the scroll, so it cannot be asked for again without skipping hits; rerun the scan"
      .. " (a PIT scan retries its pages)"
  else
    err.reason = what .. ": " .. tostring(err.reason or err.message or err.kind)
  end
  if sl.retrying then err.attempts = sl.retrying.attempts + 1 end
  if class == "systemic" then errors.systemic(err) end
  return err
end

-- Schedules the page again after the policy's backoff; false once retry_for is spent.
function Scan:_retry_later(sl)
  local now = self.client:now()
  sl.retrying = sl.retrying or self.retry:start(now)
  local delay = sl.retrying:next_delay(now)
  if not delay then return false end
  self.delayed[#self.delayed + 1] = { sl = sl, due = now + delay }
  return true
end

-- Requests whose backoff is over go out; returns seconds to the next one.
function Scan:_send_due()
  local now, wait = self.client:now(), nil
  local i = 1
  while i <= #self.delayed do
    local d = self.delayed[i]
    if d.due <= now then
      remove(self.delayed, i)
      local ok, err = self:_submit(d.sl)
      if not ok then return nil, err end
    else
      wait = min(wait or 1, d.due - now)
      i = i + 1
    end
  end
  return true, wait
end

local function bad_page(sl, reason, offset)
  return errors.new{ kind = "http", status = 200, type = "bad_response", offset = offset,
    reason = "search response is not a page of hits: " .. tostring(reason),
    request = { method = sl.req.method, path = sl.req.path } }
end

-- One completed page request: queue its page and request the next one.
function Scan:_complete(res)
  local sl = self.pending[res.id]
  if not sl then return true end
  self.pending[res.id] = nil
  self.n_pending = self.n_pending - 1
  if not res.err and res.status == 404 and self.method == "pit" and self.saved_pit then
    self.gone = true -- the saved PIT expired: its slices start again on a new one
    return true
  end
  if res.err or res.status ~= 200 then
    local class = self:_classify(sl, res)
    if class == "retry" and self:_retry_later(sl) then return true end
    return nil, self:_page_error(sl, res, class)
  end
  sl.retrying = nil
  self.saved_pit = false -- the PIT answered: from now on a 404 means it expired mid-scan
  local body = res.body or ""
  if self.raw_pages then return self:_complete_raw(sl, body) end
  local v, derr, offset = search_response(body, self.raw_source)
  if v == nil then return nil, bad_page(sl, "not valid JSON: " .. tostring(derr), offset) end
  if type(v.hits) ~= "table" or type(v.hits.hits) ~= "table" then return nil, bad_page(sl, "no hits") end
  if v._scroll_id then
    sl.scroll_id = v._scroll_id
    self.scroll_ids[v._scroll_id] = true
  end
  local hits = v.hits.hits
  local n = #hits
  local page = { slice = sl.id, hits = hits }
  self.ready[#self.ready + 1] = page
  return self:_settle(sl, page, { hits = n, search_after = n > 0 and hits[n].sort or nil, pit_id = v.pit_id })
end

function Scan:_complete_raw(sl, body)
  local page = { slice = sl.id, body = body }
  self.ready[#self.ready + 1] = page
  if self.advance_mode then
    page.waiting = true
    return true
  end
  local pos, derr, offset = self.page_position(body)
  if pos == nil then return nil, bad_page(sl, derr, offset) end
  return self:_settle(sl, page, pos)
end

-- A raw scroll page's _scroll_id (the page readers return positions, which a
-- scroll does not have): the first field of the answer, else a full decode.
local function raw_scroll_id(body)
  local text = tostring(body)
  local id = text:match('^%s*{%s*"_scroll_id"%s*:%s*"([^"\\]*)"')
  if id then return id end
  local v = search_response(text)
  return type(v) == "table" and v._scroll_id or nil
end

-- The slice moves past page: its position recorded, its next page requested.
function Scan:_settle(sl, page, pos)
  local n = pos.hits
  if self.method == "scroll" and self.raw_pages then
    -- without it the next request would start the scroll again: the same hits forever
    local id = raw_scroll_id(page.body)
    if not id then return nil, bad_page(sl, "a scroll page without _scroll_id") end
    sl.scroll_id, self.scroll_ids[id] = id, true
  end
  if n > 0 and pos.search_after == nil and self.method == "pit" then
    return nil, bad_page(sl, "hits without sort values")
  end
  if pos.pit_id then self.pit_id = pos.pit_id end
  sl.number = sl.number + 1
  if n > 0 then sl.after = pos.search_after end
  -- PIT pages hold `size` hits until the last; a scroll ends on an empty page
  if n == 0 or (self.method == "pit" and n < self.size) then sl.done = true end
  page.waiting = nil
  page.number, page.n, page.search_after, page.pit_id, page.last = sl.number, n, sl.after, self.pit_id, sl.done
  if sl.done or self.closed then return true end
  return self:_submit(sl) -- prefetch: in flight while Lua works on this page
end

-- pos: what the consumer's reader (parquet write_page) returned; nil reads it here.
function Scan:advance(page, pos)
  if type(page) ~= "table" or page.body == nil or self.slice[page.slice] == nil then
    error("advance: page must be a page of this scan", 2)
  end
  if pos ~= nil and (type(pos) ~= "table" or type(pos.hits) ~= "number" or pos.hits < 0 or pos.hits % 1 ~= 0) then
    error("advance: position must be a table with an integer hits count, as write_page returns", 2)
  end
  if not page.waiting then return page end -- already advanced
  local sl = self.slice[page.slice]
  if pos == nil then
    local derr, offset
    pos, derr, offset = self.page_position(page.body)
    if pos == nil then return nil, bad_page(sl, derr, offset) end
  end
  local ok, err = self:_settle(sl, page, pos)
  if not ok then return nil, err end
  self:_handed(page)
  return page
end

-- A page the consumer has: its slice's position moves (PIT only: a scroll
-- cannot be resumed, so it has no positions).
function Scan:_handed(page)
  if self.method == "pit" then
    self.handed_pos[page.slice] = { search_after = page.search_after, done = page.last or nil }
  end
end

----------------------------------------------------------------------------
-- Contexts

-- No point in time here: a scroll when the scan may fall back, else the error.
function Scan:_without_pit(err)
  if self.may_fall_back then
    self.method = "scroll"
    return true
  end
  -- (the cluster's own refusal, when there was one, keeps its status and type)
  return nil, errors.new { kind = "config", status = err and err.status, type = err and err.type, cause = err,
    message = "scan: " .. version.describe(self.wire) .. " has no point-in-time API; use method = \"scroll\"" }
end

function Scan:_open_pit()
  local req = wire.pit_open(self.wire, self.index, self.keep_alive)
  if not req then return self:_without_pit() end
  local r, err = self.client:json_request_retrying(req, self.retry)
  if r then
    self.pit_id = wire.pit_id(self.wire, r)
    return true
  end
  local no_pit_api = err.kind == "http" and (err.status == 400 or err.status == 404 or err.status == 405)
    and err.type ~= "index_not_found_exception"
  if not no_pit_api then return nil, err end
  if self.wire == nil then
    -- the Elasticsearch PIT is missing: which cluster is this, and has it another?
    local v = version.of(self.client)
    if v and v.pit ~= "elasticsearch" then
      self.wire = v
      if v.pit then return self:_open_pit() end
    end
  end
  if self.wire == nil and not self.may_fall_back then
    return nil, err -- (the cluster did not say what it is: its refusal as it came)
  end
  return self:_without_pit(err)
end

-- A new point in time: which release is this (GET /, once per client), and
-- can its PIT be sliced? Elasticsearch 7.10-7.14 opens one but takes no
-- slice in it: a sliced scan reads by sliced scrolls there, unless a PIT
-- was asked for.
function Scan:_pick_method()
  if not self.wire then
    local v, err = version.of(self.client, self.retry)
    if not v then return nil, err end
    self.wire = v
  end
  if self.nslices == 1 or self.wire.pit_slices or not self.wire.pit then return true end
  if self.may_fall_back then
    self.method = "scroll"
    return true
  end
  return nil, errors.new { kind = "config", message = "scan: " .. version.describe(self.wire)
    .. " cannot slice a point in time (Elasticsearch 7.15+); use method = \"scroll\" or slices = 1" }
end

function Scan:_open()
  self.started = true
  self.scroll_ids = {}
  if self.method == "pit" and not self.pit_id then
    local ok, err = self:_pick_method()
    if ok and self.method == "pit" then ok, err = self:_open_pit() end
    if not ok then return nil, err end
  end
  return self:_request_unfinished(false)
end

-- The first request of every slice not done; from_start: from its first
-- page again (the PIT it was reading is gone).
function Scan:_request_unfinished(from_start)
  for i = 0, self.nslices - 1 do
    local sl = self.slice[i]
    if from_start and not sl.done then
      self.restarted[#self.restarted + 1] = i
      sl.after, sl.number, sl.retrying = nil, 0, nil
      self.handed_pos[i] = nil
    end
    local ok, err = true, nil -- a finished slice asks for nothing
    if not sl.done then ok, err = self:_submit(sl) end
    if not ok then return nil, err end
  end
  return true
end

-- The saved PIT is gone: a new one, and the unfinished slices from their start.
function Scan:_restart()
  self.gone, self.saved_pit, self.pit_id = false, false, nil
  self.delayed = {} -- retries meant for the old PIT: every unfinished slice is asked for below
  local ok, err = self:_open_pit()
  if not ok then return nil, err end
  self.restarted = {}
  return self:_request_unfinished(true)
end

local function release_body(page)
  if page and type(page.body) == "userdata" then page.body:release() end
end

-- Wait for the page requests still in flight, so their contexts are the ones freed.
function Scan:_drain()
  while self.n_pending > 0 do
    for _, res in ipairs(self.client:_wait(self.owner, 1)) do
      local sl = self.pending[res.id]
      if sl then
        self.pending[res.id] = nil
        self.n_pending = self.n_pending - 1
        local v = res.status == 200 and self.method == "scroll" and json.decode(tostring(res.body or ""))
        if type(v) == "table" and v._scroll_id then self.scroll_ids[v._scroll_id] = true end
        release_body(res)
      end
    end
    if self.client:inflight() == 0 then break end
  end
end

function Scan:_finished()
  for i = 0, self.nslices - 1 do
    if not self.slice[i].done then return false end
  end
  return true
end

-- Release the PIT / scroll contexts. From __gc: fire and forget.
function Scan:_release(from_gc)
  if self.released or not self.started then return true end
  self.released = true
  if not from_gc then self:_drain() end
  local req
  if self.method == "pit" and self.pit_id then
    if self.keep_pit and not self:_finished() then return true end
    req = wire.pit_close(self.wire, self.pit_id)
  elseif self.scroll_ids and next(self.scroll_ids) then
    local ids = {}
    for id in pairs(self.scroll_ids) do ids[#ids + 1] = id end
    req = { method = "DELETE", path = "/_search/scroll", body = json.encode{ scroll_id = ids } }
  end
  if not req then return true end
  req.headers = HEADERS
  if from_gc then
    self.client:_submit_detached(req)
    return true
  end
  local res, err = self.client:perform(req)
  -- 404: already gone (expired or freed), which is what we wanted
  if not res then return nil, err end
  if res.status ~= 200 and res.status ~= 404 then return nil, http_error(res, req) end
  return true
end

function Scan:close()
  if self.closed then return true end
  self.closed = true
  release_body(self.handed)
  self.handed = nil
  for _, page in ipairs(self.ready) do release_body(page) end
  self.ready = {}
  return self:_release(false)
end
Scan.__close = function(self) self:close() end
Scan.__gc = function(self) if not self.closed then self:_release(true) end end

function Scan:_fail(err)
  self:close()
  self.error = err
  return nil, err
end

----------------------------------------------------------------------------
-- Iteration

-- Handles completions until a page is ready; false at the end.
function Scan:_fill()
  while #self.ready == 0 do
    local ok, wait = self:_send_due()
    if not ok then return nil, wait end
    if self.n_pending == 0 then
      if self.gone then
        ok, wait = self:_restart()
        if not ok then return nil, wait end
      elseif #self.delayed == 0 then
        return false
      else
        self.client:sleep(wait)
      end
    end
    for _, res in ipairs(self.client:_wait(self.owner, wait or 1)) do
      local cok, err = self:_complete(res)
      if not cok then return nil, err end
    end
  end
  return true
end

-- The next page, nil at the end, or nil, err.
function Scan:next_page()
  if self.closed then return nil, self.error end
  if not self.started then
    local ok, err = self:_open()
    if not ok then return self:_fail(err) end
  end
  local handed = self.handed
  if handed then
    self.handed = nil
    if handed.waiting then
      local ok, err = self:advance(handed)
      if not ok then return self:_fail(err) end
    end
    release_body(handed)
  end
  local ok, err = self:_fill()
  if ok == nil then return self:_fail(err) end
  if not ok then
    local cok, cerr = self:close()
    if not cok then return self:_fail(cerr) end
    return nil
  end
  local page = remove(self.ready, 1)
  if page.body then self.handed = page end
  if not page.waiting then self:_handed(page) end
  return page
end

-- Where each slice stands after the pages handed out (for resume =).
function Scan:positions()
  local out = {}
  for i, p in pairs(self.handed_pos) do out[tostring(i)] = { search_after = p.search_after, done = p.done } end
  return out
end

local function raising(self, fn)
  return function()
    local v, err = fn(self)
    if v == nil and err ~= nil then error(err, 0) end
    return v
  end
end

function Scan:pages()
  return raising(self, Scan.next_page), nil, nil, self
end

-- The next hit, nil at the end, or nil, err.
function Scan:next_hit()
  if self.raw_pages then error("scan: raw_pages scans have no hits; use pages()", 2) end
  local page = self.page
  while not page or self.pos >= #page.hits do
    local err
    page, err = self:next_page()
    if not page then return nil, err end
    self.page, self.pos = page, 0
  end
  self.pos = self.pos + 1
  return page.hits[self.pos]
end

function Scan:err() return self.error end

Scan.__call = function(self)
  local hit, err = self:next_hit()
  if hit == nil and err ~= nil then error(err, 0) end
  return hit
end
Scan.__index = Scan

return M
