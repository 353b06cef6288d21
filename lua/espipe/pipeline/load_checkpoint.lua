-- A file load's checkpoint: the position in the input (byte of the
-- decompressed input and line number) before which every line is indexed,
-- dead-lettered or a skipped bad line, with the job's counts at exactly that
-- position, so a rerun resumes there and its whole-job counts add up. The
-- position is learnt from the indexer's on_batch (the load never waits for
-- the indexer to drain) and written at most every `interval` seconds, and
-- atomically (espipe.pipeline.checkpoint).
--
--   local ck, err = load_checkpoint.open(path, job, input, now, interval)
--     job: what the command does (format, index, ...; compared on resume),
--     input: the input file's path (its size and first bytes are compared)
--     ck.start: { offset =, line =, counts = } where the run before stopped (nil: a fresh job)
--     ck.done:  the job had finished
--   ck.page                   the token of the documents handed to the indexer now
--   ck:added(n)               n documents carry ck.page
--   ck:mark(offset, line, summary)  the input may resume here (after a document or a skipped line)
--   ck:seal()                 the open page ends at its last mark (a new one opens)
--   ck:on_batch(b, now) -> true | nil, err   the indexer's on_batch; saves when due
--   ck:save(done) -> true | nil, err
--   ck:whole(summary) -> the whole job's counts (this run's plus the start's)
--   load_checkpoint.reporting(report, now, interval) -> ck whose states go to report(state)
--   load_checkpoint.load_for(path, job, input) -> saved | false (none), fingerprint | nil, err
--     (refused when another job's, or the input changed); load_checkpoint.counts_of(saved)
local checkpoint = require "espipe.pipeline.checkpoint"
local errors = require "espipe.client.errors"
local core = require "espipe.core"

local M = {}
local Ck = {}
Ck.__index = Ck

-- The counts a position carries; ok is read - failed (every document before it settled).
M.COUNTS = { "read", "ok", "failed", "bad_lines", "unreplayable" }
local JOB_KEYS = { "input", "range", "format", "index", "index_pattern", "id_field", "routing_field", "op", "pipeline" }
local PAGE_DOCS = 512
local HEAD_BYTES = 4096

-- Size and a hash of the first bytes of the (raw) input: a resume of
-- another file, or of this one changed, is refused.
local function fingerprint(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, errors.new { kind = "input", message = "cannot open " .. path .. ": " .. tostring(err) } end
  local head = f:read(HEAD_BYTES) or ""
  local size = f:seek("end")
  f:close()
  return { size = size, head = core.routing_hash(core.base64_encode(head)) }
end

local function refused(path, what, was, is)
  return errors.new { kind = "checkpoint", message = "checkpoint " .. path .. " is of another job: its " .. what
    .. " is " .. tostring(was) .. ", this job's " .. tostring(is)
    .. " (pass another --checkpoint, or remove it to start over)" }
end

local function compare(path, saved, job, input)
  local sj = type(saved.job) == "table" and saved.job or {}
  if sj.range ~= job.range then -- (a worker's byte range: the ranges follow from --workers)
    return errors.new { kind = "checkpoint", message = "checkpoint " .. path .. " is of a worker of a load with"
      .. " another --workers (its range " .. tostring(sj.range or "the whole input") .. ", this one "
      .. tostring(job.range or "the whole input") .. "): rerun it with the same --workers" }
  end
  for _, k in ipairs(JOB_KEYS) do
    if sj[k] ~= job[k] then return refused(path, k:gsub("_", " "), sj[k] or "(none)", job[k] or "(none)") end
  end
  local si = type(saved.input) == "table" and saved.input or {}
  if si.size ~= input.size or si.head ~= input.head then
    return errors.new { kind = "checkpoint", message = "checkpoint " .. path .. ": the input " .. job.input
      .. " changed since it was written (" .. tostring(si.size) .. " bytes then, " .. input.size
      .. " now); remove the checkpoint to start over" }
  end
end

local function new_page() return { left = 0, failed = 0, docs = 0 } end

-- What a checkpoint compares of a job: its input and what the command does
-- (opts: espipe.load's, or the command's parsed flags, with input).
function M.identity(opts)
  local what = { format = opts.format or "ndjson",
                 range = opts.range and (opts.range.start .. "-" .. opts.range.stop) or nil }
  for _, k in ipairs(JOB_KEYS) do
    if what[k] == nil then what[k] = opts[k] end
  end
  return what
end

-- The counts a saved state holds (0 for those it does not).
function M.counts_of(saved)
  local counts = {}
  for _, k in ipairs(M.COUNTS) do counts[k] = tonumber(type(saved.counts) == "table" and saved.counts[k]) or 0 end
  return counts
end

-- The saved state of the job at path (nil: none), refused when it is
-- another job's or the input changed; and the input's fingerprint.
function M.load_for(path, job, input_path)
  local input, ierr = fingerprint(input_path)
  if not input then return nil, ierr end
  local saved, lerr = checkpoint.load(path)
  if lerr then return nil, lerr end
  local cerr = saved and compare(path, saved, job, input)
  if cerr then return nil, cerr end
  return saved or false, input
end

local function new(write, now, interval)
  return setmetatable({ write = write, interval = interval or 1, last_save = now,
    queue = { first = 1, last = 0 }, page = new_page() }, Ck)
end

function M.open(path, job, input_path, now, interval)
  local saved, input = M.load_for(path, job, input_path)
  if saved == nil then return nil, input end
  local self = new(function(state) return checkpoint.save(path, state) end, now, interval)
  self.path, self.job, self.input = path, job, input
  if saved and type(saved.ranges) == "table" and #saved.ranges > 0 then
    return nil, errors.new { kind = "checkpoint", message = "checkpoint " .. path .. " was written by a load with"
      .. " --workers that handed the input over in chunks: rerun it with --workers" }
  end
  if saved then
    self.start = { offset = tonumber(saved.offset) or 0, line = tonumber(saved.line) or 0, counts = M.counts_of(saved) }
    self.done = saved.done == true
  end
  return self:_from_start()
end

-- A checkpoint whose states go to report(state) (a worker's, for its
-- parent), of an input read from its start.
function M.reporting(report, now, interval)
  return new(report, now, interval):_from_start()
end

function Ck:_from_start()
  local s = self.start or { offset = 0, line = 0, counts = { read = 0, ok = 0, failed = 0, bad_lines = 0,
                                                            unreplayable = 0 } }
  -- the acknowledged position, and the failures settled before it (whole job)
  self.at = { offset = s.offset, line = s.line, read = s.counts.read, bad_lines = s.counts.bad_lines,
              unreplayable = s.counts.unreplayable }
  self.failed = s.counts.failed
  self.base = s.counts
  return self
end

function Ck:added(n)
  local p = self.page
  p.left, p.docs = p.left + n, p.docs + n
end

function Ck:mark(offset, line, summary)
  local p, base = self.page, self.base
  p.offset, p.line = offset, line
  p.read, p.bad_lines = base.read + summary.read, base.bad_lines + summary.bad_lines
  p.unreplayable = base.unreplayable + summary.unreplayable
  if p.docs >= PAGE_DOCS then self:seal() end
end

-- The position moves over every leading page all of whose documents settled.
function Ck:_advance()
  local q = self.queue
  while q.first <= q.last do
    local p = q[q.first]
    if p.left > 0 then break end
    self.at, self.failed = p, self.failed + p.failed
    q[q.first] = nil
    q.first = q.first + 1
  end
end

function Ck:seal()
  local p = self.page
  if not p.offset then return end -- nothing marked since the last seal
  local q = self.queue
  q.last = q.last + 1
  q[q.last] = p
  self.page = new_page()
  self:_advance()
end

-- (tokens come in runs of the same page: counted per run)
function Ck:on_batch(b, now)
  local tokens = b.tokens
  local run, n = tokens[1], 0
  for i = 1, #tokens do
    local t = tokens[i]
    if t ~= run then
      run.left = run.left - n
      run, n = t, 0
    end
    n = n + 1
  end
  if run then run.left = run.left - n end
  for _, t in ipairs(b.failed_tokens or {}) do t.failed = t.failed + 1 end
  self:_advance()
  if now - self.last_save < self.interval then return true end
  self.last_save = now
  return self:save()
end

function Ck:counts()
  local at = self.at
  return { read = at.read, ok = at.read - self.failed, failed = self.failed, bad_lines = at.bad_lines,
           unreplayable = at.unreplayable }
end

function Ck:save(done)
  return self.write { job = self.job, input = self.input, offset = self.at.offset,
    line = self.at.line, counts = self:counts(), done = done or nil }
end

-- This run's counts added to those the job had at its start.
function Ck:whole(summary)
  local out = {}
  for _, k in ipairs(M.COUNTS) do out[k] = (self.base[k] or 0) + (tonumber(summary[k]) or 0) end
  return out
end

return M
