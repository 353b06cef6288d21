-- The bulk indexer's dead letter in a reindex: with op = "create" a 409
-- means the document is already there (a page re-sent after a resume),
-- which is done, not failed; any other item is appended to opts.dead_letter
-- (when set) until the job has failed.
--
--   local dead = dead_letter.new(job); indexer{ dead_letter = dead:sink() }
--   dead.count, dead.conflicts_done; dead:close()
local deadletter = require "espipe.pipeline.deadletter"

local M = {}
local Dead = {}
Dead.__index = Dead

function M.new(job)
  local path = job.opts.dead_letter
  return setmetatable({ job = job, count = 0, conflicts_done = 0,
    file = path and deadletter.new(path) or nil }, Dead)
end

function Dead:add(item)
  if self.job.op == "create" and item.status == 409 then
    self.conflicts_done = self.conflicts_done + 1
    return
  end
  self.count = self.count + 1
  if self.file and not self.job.failure then
    local ok, err = self.file:append(item.record)
    if not ok then self.job:fail(err) end
  end
end

-- The indexer's dead_letter callback.
function Dead:sink()
  return function(item) self:add(item) end
end

function Dead:close()
  if self.file then self.file:close() end
end

return M
