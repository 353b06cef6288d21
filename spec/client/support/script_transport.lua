-- A transport implementing the seam in memory, for client specs that check
-- what the client sends and how it reads answers without a server: every
-- submitted request is recorded; answers come from a responder function
-- (req, n) -> { status =, body = } | { err = errors{...} }. With latency = k
-- a response is ready only after k further polls, so requests overlap.
local errors = require("espipe.client.errors")

local M = {}
M.__index = M

function M.new(responder, max_inflight, latency)
  return setmetatable({ responder = responder, sent = {}, queue = {}, next_id = 0,
                        max_inflight = max_inflight or 64, clock = 0, polls = 0,
                        latency = latency or 0 }, M)
end

-- GET / (the version a client reads once): the responder's answer when it
-- has one with a version, else Elasticsearch 8.15's, unrecorded, so scripts
-- written for an 8.x cluster need not know the question.
local ROOT = '{"version":{"number":"8.15.0"},"tagline":"You Know, for Search"}'
local function root_answer(self, req)
  local answered, res = pcall(self.responder, req, #self.sent + 1)
  local ok, v = pcall(require("espipe.json").decode, answered and type(res) == "table" and res.body or "")
  if ok and type(v) == "table" and v.version then
    self.sent[#self.sent + 1] = req
    return res
  end
  return { status = 200, body = ROOT }
end

function M:submit(req)
  if #self.queue >= self.max_inflight then
    return nil, errors.new{ kind = "busy", message = "busy" }
  end
  self.next_id = self.next_id + 1
  local body = req.body
  local rec = { method = req.method, path = req.path, query = req.query, headers = req.headers, body = body }
  local res
  if req.method == "GET" and req.path == "/" then
    res = root_answer(self, rec)
  else
    self.sent[#self.sent + 1] = rec
    res = self.responder(rec, #self.sent)
  end
  res.id, res.ctx = self.next_id, req.ctx
  res.headers = res.headers or {}
  res.ready_at = self.polls + self.latency
  self.queue[#self.queue + 1] = res
  return self.next_id
end

function M:poll()
  self.polls = self.polls + 1
  local out, keep = {}, {}
  for _, res in ipairs(self.queue) do
    if res.ready_at < self.polls then out[#out + 1] = res else keep[#keep + 1] = res end
  end
  self.queue = keep
  return out
end

function M:inflight() return #self.queue end

-- Hosts as the seam lists them: one configured, nodes added after it.
function M:host_urls()
  local out = { "http://127.0.0.1:9200" }
  for i, u in ipairs(self.added or {}) do out[i + 1] = u end
  return out
end

function M:add_host(u)
  local urls = self:host_urls()
  for i, known in ipairs(urls) do if known == u then return i end end
  self.added = self.added or {}
  self.added[#self.added + 1] = u
  return #urls + 1
end
function M:now() return self.clock end
function M:sleep(s) self.clock = self.clock + s end
function M.close() end

return M
