-- Resumable sliced scan for the pipelines: point in time + search_after on
-- _shard_doc, one request in flight per slice (slices fetched concurrently
-- over the client's transport, the next page of a slice requested as soon as
-- its previous page arrives), pages handed out with their position:
--
--   local r = pit_pages.new(client, index, query, { slices =, size =, keep_alive =, raw_source =,
--                                                    raw_pages =, advance =,
--                                                    resume = { ["0"] = { search_after =, done = }, ... },
--                                                    pit_id = saved pit id or nil })
--   for page in r:pages() do
--     page.slice (0-based), page.hits, page.search_after (sort values of the
--     last hit: resuming from it repeats nothing of this page), page.pit_id
--   end  -- errors raise (an espipe.errors table); r:close() frees the PIT
--
-- Pages are read in one pass by the C core (core.search_response); with
-- raw_source each hit's _source is the server's JSON text, never decoded.
-- With raw_pages a page has no hits table but body (the response bytes, for
-- a consumer that reads them itself, e.g. the Parquet writer's write_page)
-- and n (its hit count); its position is read by
-- espipe.parquet_writer.page_position, which builds no table per hit (about
-- 2.4x cheaper than search_response(body, true); bench/README.md, Parquet).
--
-- raw_pages with advance = true parses each page once: the page comes out
-- with only slice and body, the consumer reads it (w:write_page(body) returns
-- the position) and hands the position back with r:advance(page, position),
-- which fills page.n, search_after, pit_id and last and only then requests
-- that slice's next page. Other slices' requests stay in flight meanwhile, so
-- with slices > 1 fetching still overlaps the consumer's work; with one slice
-- the next request waits for the write. r:advance(page) without a position
-- reads it with page_position, and a page not advanced by the next
-- next_page() is advanced that way, so no slice can stall. (The alternative,
-- guessing the last sort values from the end of the body to request early,
-- needs a check against the writer's reading and a re-request on mismatch:
-- more states for a gain only when one slice is used.)
--
-- raw_pages asks the transport for each body as a response body where it
-- can (the curl transport's body_buffer: the received bytes, not a Lua
-- string copy of them; another transport gives strings): page.body stays
-- valid until the next page is asked for or the scan is closed, when its
-- bytes are released. w:write_page and page_position take either.
--
-- A resumed job first tries the saved PIT; if it is gone (404) a new PIT is
-- opened and the unfinished slices start over (r.restarted = true): _shard_doc
-- positions belong to one PIT. With preserved ids that only re-sends documents.
-- (espipe.scan has no positions or resume yet; see the report.)
local json = require "espipe.json"
local errors = require "espipe.errors"
local search_response = require("espipe.core").search_response

local M = {}
local R = {}
R.__index = R

function M.new(client, index, query, opts)
  opts = opts or {}
  local self = setmetatable({
    client = client, index = index, query = query, owner = { inbox = {} },
    size = opts.size or 1000, nslices = opts.slices or 1, keep_alive = opts.keep_alive or "5m",
    pit_id = opts.pit_id, resume = opts.resume or {}, ready = {}, pending = {}, n_pending = 0,
    raw_source = opts.raw_source and true or false, raw_pages = opts.raw_pages and true or false,
    advance_mode = opts.raw_pages and opts.advance and true or false,
  }, R)
  if self.raw_pages then self.page_position = require("espipe.parquet_writer").page_position end
  self.slices = {}
  for i = 0, self.nslices - 1 do
    local saved = self.resume[tostring(i)] or {}
    self.slices[i] = { id = i, after = saved.search_after, done = saved.done, attempts = 0 }
  end
  return self
end

function R:_open_pit()
  local r, err = self.client:json_request { method = "POST", path = "/" .. self.index .. "/_pit",
    query = "keep_alive=" .. self.keep_alive }
  if not r then error(err, 0) end
  self.pit_id = r.id
end

function R:_submit(sl)
  local body = { size = self.size, sort = { "_shard_doc" }, track_total_hits = false,
    pit = { id = self.pit_id, keep_alive = self.keep_alive } }
  if self.query then body.query = self.query end
  if self.nslices > 1 then body.slice = { id = sl.id, max = self.nslices } end
  if sl.after then body.search_after = sl.after end
  local req = { method = "POST", path = "/_search", body = json.encode(body),
    headers = { ["Content-Type"] = "application/json" }, body_buffer = self.raw_pages or nil }
  local id, err = self.client:_submit(self.owner, req)
  if not id then error(require("espipe.client").transport_error(err, req), 0) end
  sl.req = req
  self.pending[id] = sl
  self.n_pending = self.n_pending + 1
end

local function retryable(res)
  return res.err or res.status == 429 or res.status == 502 or res.status == 503 or res.status == 504
end

function R:_complete(res)
  local sl = self.pending[res.id]
  if not sl then return end
  self.pending[res.id] = nil
  self.n_pending = self.n_pending - 1
  if retryable(res) and sl.attempts < 5 then
    sl.attempts = sl.attempts + 1
    self.client:sleep(math.min(5, 0.1 * 2 ^ (sl.attempts - 1)))
    return self:_submit(sl)
  end
  local client_mod = require "espipe.client"
  if res.err then error(client_mod.transport_error(res.err, sl.req), 0) end
  if res.status == 404 and not self.fresh_pit then
    -- the saved PIT expired: start the unfinished slices again on a new one
    self.gone = true
    return
  end
  if res.status ~= 200 then error(client_mod.http_error(res, sl.req), 0) end
  if self.raw_pages then return self:_complete_raw(sl, res.body or "") end
  local v, derr, offset = search_response(res.body or "", self.raw_source)
  if v == nil then
    error(errors.new { kind = "http", status = 200, type = "bad_response", offset = offset,
      reason = "search response is not valid JSON: " .. tostring(derr),
      request = { method = sl.req.method, path = sl.req.path } }, 0)
  end
  if type(v) ~= "table" or type(v.hits) ~= "table" or type(v.hits.hits) ~= "table" then
    error(errors.new { kind = "http", status = 200, type = "bad_response", reason = "search response without hits",
      request = { method = sl.req.method, path = sl.req.path } }, 0)
  end
  sl.attempts = 0
  if v.pit_id then self.pit_id = v.pit_id end
  local hits = v.hits.hits
  local n = #hits
  if n > 0 then sl.after = hits[n].sort end
  if n < self.size then sl.done = true end
  self.ready[#self.ready + 1] = { slice = sl.id, hits = hits, search_after = sl.after,
    pit_id = self.pit_id, last = sl.done }
  if not sl.done then self:_submit(sl) end
end

local function bad_page(sl, derr, offset)
  return errors.new { kind = "http", status = 200, type = "bad_response", offset = offset,
    reason = "search response is not a page of hits: " .. tostring(derr),
    request = { method = sl.req.method, path = sl.req.path } }
end

-- The bytes of a page handed out before, freed now rather than whenever the
-- collector gets to it (it does not see their size).
local function release(page)
  if type(page.body) == "userdata" then page.body:release() end
end

function R:_complete_raw(sl, body)
  sl.attempts = 0
  local page = { slice = sl.id, body = body }
  self.ready[#self.ready + 1] = page
  if self.advance_mode then
    page.waiting = true
    return
  end
  local pos, derr, offset = self.page_position(body)
  if pos == nil then error(bad_page(sl, derr, offset), 0) end
  self:_settle(sl, page, pos)
end

-- The slice moves past page: its position recorded, its next page requested.
function R:_settle(sl, page, pos)
  local n = pos.hits
  if n > 0 and pos.search_after == nil then
    error(bad_page(sl, "hits without sort values"), 0)
  end
  page.waiting = nil
  if pos.pit_id then self.pit_id = pos.pit_id end
  if n > 0 then sl.after = pos.search_after end
  if n < self.size then sl.done = true end
  page.n, page.search_after, page.pit_id, page.last = n, sl.after, self.pit_id, sl.done == true
  if not sl.done and not self.closed then self:_submit(sl) end
end

-- position: what w:write_page(page.body) returned; nil reads it here.
function R:advance(page, pos)
  if type(page) ~= "table" or page.body == nil or self.slices[page.slice] == nil then
    error("advance: page must be a page of this scan", 2)
  end
  if pos ~= nil and (type(pos) ~= "table" or type(pos.hits) ~= "number" or pos.hits < 0 or pos.hits % 1 ~= 0) then
    error("advance: position must be a table with an integer hits count, as write_page returns", 2)
  end
  if not page.waiting then return page end -- already advanced
  local sl = self.slices[page.slice]
  if pos == nil then
    local derr, offset
    pos, derr, offset = self.page_position(page.body)
    if pos == nil then error(bad_page(sl, derr, offset), 0) end
  end
  self:_settle(sl, page, pos)
  return page
end

function R:_start()
  self.started = true
  if not self.pit_id then
    self:_open_pit()
    self.fresh_pit = true
  end
  for i = 0, self.nslices - 1 do
    if not self.slices[i].done then self:_submit(self.slices[i]) end
  end
end

function R:next_page()
  if self.closed then return nil end
  if not self.started then self:_start() end
  local handed = self.handed
  if handed then
    self.handed = nil
    if handed.waiting then self:advance(handed) end
    release(handed)
  end
  while #self.ready == 0 do
    if self.n_pending == 0 then
      if self.gone then
        self.gone, self.restarted = false, true
        self:_open_pit()
        self.fresh_pit = true
        for i = 0, self.nslices - 1 do
          local sl = self.slices[i]
          if not sl.done then sl.after = nil; self:_submit(sl) end
        end
      else
        self:close()
        return nil
      end
    end
    for _, res in ipairs(self.client:_wait(self.owner, 1)) do self:_complete(res) end
  end
  local page = table.remove(self.ready, 1)
  if page.waiting or page.body then self.handed = page end
  return page
end

function R:pages()
  return function() return self:next_page() end
end

function R:close()
  if self.closed then return end
  self.closed = true
  if self.handed then release(self.handed) self.handed = nil end
  for _, page in ipairs(self.ready) do release(page) end
  while self.n_pending > 0 do
    for _, res in ipairs(self.client:_wait(self.owner, 1)) do
      if self.pending[res.id] then self.pending[res.id] = nil; self.n_pending = self.n_pending - 1 end
    end
    if self.client.transport:inflight() == 0 then break end
  end
  if self.pit_id and self.keep_pit ~= true then
    self.client:perform { method = "DELETE", path = "/_pit", body = json.encode { id = self.pit_id },
      headers = { ["Content-Type"] = "application/json" } }
  end
end

return M
