-- A job's checkpoint kept in Elasticsearch itself (--checkpoint es:INDEX/JOB),
-- so a part restarted on another machine resumes exactly, with no shared
-- file system: one document per slice (its position) and one per part (its
-- counts and point-in-time ids). Every write names the _seq_no and
-- _primary_term it read (if_seq_no / if_primary_term): two copies of the
-- same part cannot both advance it; the second one's write is refused (409)
-- and it stops, naming the copy that owns the checkpoint.
--
--   es_checkpoint.parse("es:INDEX/JOB") -> INDEX, JOB | nil (not an es: checkpoint) | nil, message
--   es_checkpoint.store{ client =, policy =, index =, job =, part = I, parts = N, slices = { own ids } }
--     -> { name =, load = fn() -> state | nil | nil, err, save = fn(state) -> true | nil, err }
--     (the shape of espipe.pipeline.checkpoint's file_store; state as a reindex keeps it:
--      slices = { ["s"] = { search_after =, done = } }, pit_id, pits, workers, counts, done)
--   es_checkpoint.status(client, policy, index, job) -> { parts = N, [i] = part document | false } | nil, err
--   store.status() -> the same for the store's job (every part's progress, for the progress line)
--
-- Document ids: "JOB.part-I" and "JOB.slice-S". A write whose response was
-- lost is retried with the same if_seq_no; its 409 is then our own write:
-- the document is read back and accepted when it carries this copy's owner
-- and serial.
local json = require "espipe.json"
local errors = require "espipe.client.errors"
local segment = require("espipe.client.url").segment

local M = {}

local HEADERS = { ["Content-Type"] = "application/json" }

function M.parse(spec)
  if type(spec) ~= "string" or spec:sub(1, 3) ~= "es:" then return nil end
  local index, job = spec:match("^es:([^/]+)/(.+)$")
  if not index then return nil, "--checkpoint es:INDEX/JOB names an index and a job, got " .. spec end
  return index, job
end

local function part_id(job, i) return job .. ".part-" .. i end
local function slice_id(job, s) return job .. ".slice-" .. s end

local function checkpoint_error(msg) return errors.new { kind = "checkpoint", message = msg } end

local Store = {}
Store.__index = Store

-- Who writes: host, pid, start time and which store of this process.
local stores = 0
local function owner()
  local host = io.open("/proc/sys/kernel/hostname")
  local name = host and host:read("*l") or "?"
  if host then host:close() end
  stores = stores + 1
  return name .. ":" .. require("espipe.core").process_id() .. ":" .. os.time() .. ":" .. stores
end

function M.store(o)
  local self = setmetatable({ client = o.client, policy = o.policy, index = o.index, job = o.job, part = o.part,
    parts = o.parts, own = o.slices, seen = {}, written = {}, owner = owner(), serial = 0,
    name = "es:" .. o.index .. "/" .. o.job }, Store)
  return { name = self.name, load = function() return self:load() end, save = function(state) return self:save(state) end,
    status = function() return M.status(self.client, self.policy, self.index, self.job) end }
end

function Store:_send(method, path, body)
  return self.client:json_request_retrying({ method = method, path = path, headers = HEADERS,
    body = body and json.encode(body) or nil }, self.policy)
end

-- The documents by id (realtime: _mget reads what was written, refreshed or not).
local function mget(s, ids)
  local resp, err = s:_send("POST", "/" .. segment(s.index, "index", 4) .. "/_mget", { ids = ids })
  if not resp then
    if err.status == 404 then return {} end -- no index yet: a fresh job
    return nil, err
  end
  local out = {}
  for _, d in ipairs(resp.docs or {}) do
    if d.found then out[d._id] = d end
  end
  return out
end
M._mget = mget

function Store:load()
  local ids = { part_id(self.job, self.part) }
  for _, s in ipairs(self.own) do ids[#ids + 1] = slice_id(self.job, s) end
  local docs, err = mget(self, ids)
  if not docs then return nil, err end
  for id, d in pairs(docs) do self.seen[id] = { seq = d._seq_no, term = d._primary_term } end
  local part = docs[ids[1]]
  if not part then return nil end
  local p = part._source
  if p.parts ~= self.parts then
    return nil, checkpoint_error(self.name .. " was written by a job of " .. tostring(p.parts) .. " parts, not " .. self.parts)
  end
  local state = { pit_id = p.pit_id, pits = p.pits, workers = p.workers, counts = p.counts or {}, done = p.done, slices = {} }
  for _, s in ipairs(self.own) do
    local d = docs[slice_id(self.job, s)]
    if d then state.slices[tostring(s)] = { search_after = d._source.search_after, done = d._source.done } end
  end
  return state
end

-- Our own write, whose response was lost, when the document holds our serial.
function Store:_ours(id, serial)
  local docs = mget(self, { id })
  local d = docs and docs[id]
  if d and d._source.owner == self.owner and d._source.serial == serial then
    self.seen[id] = { seq = d._seq_no, term = d._primary_term }
    return true
  end
  return false, d and d._source.owner
end

function Store:_write(id, body)
  local text = json.encode(body)
  if self.written[id] == text then return true end -- unchanged since the last write
  self.serial = self.serial + 1
  body.owner, body.serial, body.updated = self.owner, self.serial, os.time()
  local seen = self.seen[id]
  local q = seen and ("?if_seq_no=" .. seen.seq .. "&if_primary_term=" .. seen.term) or "?op_type=create"
  local path = "/" .. segment(self.index, "index", 4) .. "/_doc/" .. segment(id, "id", 4) .. q
  local resp, err = self:_send("PUT", path, body)
  if not resp then
    if err.status ~= 409 then return nil, err end
    local ours, who = self:_ours(id, self.serial)
    if not ours then
      return nil, checkpoint_error(self.name .. ": " .. id .. " was advanced by another copy of part " .. self.part
        .. " (" .. tostring(who) .. "); two copies of one part cannot both run")
    end
  else
    self.seen[id] = { seq = resp._seq_no, term = resp._primary_term }
  end
  self.written[id] = text
  return true
end

function Store:save(state)
  for _, s in ipairs(self.own) do
    local pos = (state.slices or {})[tostring(s)]
    if pos then
      local ok, err = self:_write(slice_id(self.job, s), { job = self.job, slice = s, part = self.part,
        search_after = pos.search_after, done = pos.done or false })
      if not ok then return nil, err end
    end
  end
  return self:_write(part_id(self.job, self.part), { job = self.job, part = self.part, parts = self.parts,
    slices = self.own, workers = state.workers, pit_id = state.pit_id, pits = state.pits,
    counts = state.counts, live = state.live, done = state.done or false })
end

-- Every part's document: part 1's says how many parts there are.
function M.status(client, policy, index, job)
  local s = setmetatable({ client = client, policy = policy, index = index }, Store)
  local first, err = mget(s, { part_id(job, 1) })
  if not first then return nil, err end
  local one = first[part_id(job, 1)]
  if not one then return nil, checkpoint_error("no job " .. job .. " in " .. index) end
  local n = one._source.parts
  local ids = {}
  for i = 1, n do ids[i] = part_id(job, i) end
  local docs, derr = mget(s, ids)
  if not docs then return nil, derr end
  local out = { parts = n }
  for i = 1, n do
    local d = docs[part_id(job, i)]
    out[i] = d and d._source or false
  end
  return out
end

return M
