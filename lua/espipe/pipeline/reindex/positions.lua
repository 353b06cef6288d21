-- The reindex checkpoint: each slice's position is that of its last page
-- all of whose documents settled (acknowledged or dead-lettered), learnt
-- from the indexer's on_batch, so the copy never waits for the indexer to
-- drain. The file is written at most every checkpoint_interval seconds.
--
--   local pos = positions.new(job)   -- nil without opts.checkpoint
--   pos.acks (espipe.pipeline.checkpoint's), pos.scan = the scan (for its PIT id)
--   pos:maybe_save()  pos:save(done)   a failure to write goes to job:fail
local checkpoint = require "espipe.pipeline.checkpoint"

local M = {}
-- job.store (from prepare): the checkpoint file, or the store the caller gave
local Positions = {}
Positions.__index = Positions

function M.new(job)
  if not job.opts.checkpoint then return nil end
  return setmetatable({ job = job, acks = checkpoint.acks(job.state.slices),
    interval = job.opts.checkpoint_interval or 1, last_save = job.src.client:now() }, Positions)
end

function Positions:save(done)
  local job = self.job
  local state = job.state
  state.slices, state.pit_id, state.done = self.acks:positions(), self.scan.pit_id, done or nil
  local ok, serr = job.store.save(state)
  if not ok then job:fail(serr) end
  self.last_save = job.src.client:now()
end

function Positions:maybe_save()
  if self.job.src.client:now() - self.last_save >= self.interval then self:save() end
end

return M
