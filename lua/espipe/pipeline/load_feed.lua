-- The parent's side of a load whose input is handed to workers in chunks
-- (load --workers with compressed input or stdin): the input is read here
-- once, in chunks of whole lines (espipe.pipeline.line_chunks) given to
-- the workers in turn, each worker's queue held under QUEUED bytes
-- (memory). A line over max_line_bytes is never held: it is dead-lettered
-- here (line 0: lines are not counted here). With a checkpoint (a file
-- input), the parts of the input done are kept (espipe.pipeline.chunk_positions,
-- from the positions the workers report) and saved at most once a second:
-- a rerun skips them and sends only the rest.
--
--   local feed, err = load_feed.new(opts)   (load_workers.run's opts; nil, err)
--   feed.count, feed.share(i), feed.feed(pool), feed.on_record(i, rec), feed.every()
--   feed:finish(ok) -> true | nil, err   the last save (done when ok: every worker ended well,
--                                         and the input was read to its end)
--   feed.bad, feed.failure, feed.reader, feed.prior (the counts of the job before this run), feed.already_done
local QUEUED = 1024 * 1024
local SAVE_EVERY = 1

local core = require "espipe.core"
local checkpoint = require "espipe.pipeline.checkpoint"
local load_checkpoint = require "espipe.pipeline.load_checkpoint"
local deadletter = require "espipe.pipeline.deadletter"

local Feed = {}
Feed.__index = Feed

-- The next worker in turn whose queue has room, or nil.
function Feed:_next_worker(pool)
  for k = 1, self.count do
    local i = (self.turn + k - 1) % self.count + 1
    if not self.gone[i] and pool:pending(i) < QUEUED then
      self.turn = i
      return i
    end
  end
end

function Feed:_bad(err)
  self.bad = self.bad + 1
  self.bad_dl = self.bad_dl or deadletter.new(self.bad_path)
  local ok, derr = self.bad_dl:add(deadletter.bad_line(0, err.offset, err.message, nil, err.bytes))
  if not ok or not self.skip then self.failure = derr or err return nil end
  if self.pos then self.pos:done(err.offset, self.reader.offset) end
  return true
end

-- One chunk to a worker: true, false (every queue is full) or nil (the end).
function Feed:_one(pool)
  local i = self:_next_worker(pool)
  if not i then return false end
  local r, stop = self.reader, nil
  if self.pos then
    local at
    at, stop = self.pos:next_todo(r.offset)
    if at > r.offset then
      local ok, err = r:skip_to(at, 0)
      if not ok then self.failure = err return nil end
    end
  end
  local from = r.offset
  local text, err = self.chunks:next(stop)
  if text == false then return self:_bad(err) end
  if not text then return nil end
  if not pool:write(i, text) then
    self.gone[i] = true -- it died: its exit says so, and what it had is not marked done
  elseif self.pos then
    self.pos:sent(i, #text, from)
  end
  return true
end

function Feed:feed(pool)
  if self.ended then return end
  local go = not core.signals_received() or nil -- (a signal stops the input: the workers flush)
  while go do go = self:_one(pool) end
  if go == nil then
    self.ended = true
    for i = 1, self.count do pool:close_input(i) end
  end
end

function Feed:_state(done)
  local st = self.pos:state()
  local counts = {}
  for _, k in ipairs(load_checkpoint.COUNTS) do counts[k] = (self.prior[k] or 0) + (st.counts[k] or 0) end
  counts.bad_lines = counts.bad_lines + self.bad
  counts.ok = counts.read - counts.failed
  return { job = self.identity, input = self.fingerprint, offset = st.offset, ranges = st.ranges,
           counts = counts, done = done or nil }
end

function Feed:every()
  if not self.pos or self.clock() - self.last_save < SAVE_EVERY then return end
  self.last_save = self.clock()
  local ok, err = checkpoint.save(self.path, self:_state())
  if not ok then self.failure = self.failure or err end
end

function Feed:finish(ok)
  self.reader:close()
  if self.bad_dl then self.bad_dl:close() end
  if not self.pos then return true end
  local complete = ok and self.ended and not self.reader.stopped and not self.reader.error and not self.failure
  return checkpoint.save(self.path, self:_state(complete))
end

-- The saved state of a checkpointed job: the parts done and the counts then.
local function resume_state(self, opts)
  local saved, fingerprint = load_checkpoint.load_for(opts.checkpoint, opts.identity, opts.input)
  if saved == nil then return nil, fingerprint end
  self.path, self.identity, self.fingerprint = opts.checkpoint, opts.identity, fingerprint
  self.pos = require("espipe.pipeline.chunk_positions").new(saved or nil)
  self.prior = saved and load_checkpoint.counts_of(saved) or {}
  self.resumed, self.already_done = saved ~= false, saved and saved.done == true
  self.clock = require("espipe.transport").clock()
  self.last_save = self.clock()
  return true
end

local M = {}

function M.new(opts)
  local self = setmetatable({ count = opts.count, gone = {}, bad = 0, turn = 0, prior = {},
    skip = opts.on_bad_line == "skip", bad_path = opts.dead_letter .. ".input" }, Feed)
  if opts.checkpoint then
    local ok, err = resume_state(self, opts)
    if not ok then return nil, err end
    if self.already_done then return self end
  end
  local reader, rerr = require("espipe.pipeline.lines").open(opts.input, { max_line = opts.max_line_bytes,
                                                                         stop = core.signals_received })
  if not reader then return nil, rerr end
  core.signals_watch(reader.f)
  self.reader, self.chunks = reader, require("espipe.pipeline.line_chunks").new(reader)
  local reports = self.pos ~= nil
  self.share = function() return { stdin = true, report_positions = reports or nil } end
  self.on_record = function(i, rec)
    if self.pos and rec.type == "checkpoint" then self.pos:acked(i, tonumber(rec.offset) or 0, rec.counts or {}) end
  end
  return self
end

return M
