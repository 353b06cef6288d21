-- Counts of a resumed job: this run's and the whole job's. The reindex
-- checkpoint carries its scan counts (scanned, sent, dropped, ...) across
-- runs; the indexer's (ok, created, failed, ...) start at zero in each run,
-- so the whole job's are kept beside the checkpoint, in CHECKPOINT.totals.
--
--   local prior = resume.before(checkpoint_path)  -> nil (a fresh job) | prior
--   local this, whole = resume.after(checkpoint_path, prior, summary)  (whole: nil unless resumed)
local checkpoint = require "espipe.pipeline.checkpoint"

local M = {}

-- carried by the checkpoint: the summary holds the whole job's
local SCAN = { "scanned", "sent", "dropped", "fanned_out", "transform_errors" }
-- counted by this run's indexer
local INDEXER = { "ok", "created", "updated", "deleted", "noop", "failed", "retried", "bytes", "requests",
  "conflicts_done" }

local function totals_path(path) return path .. ".totals" end

function M.before(path)
  if not path then return nil end
  local saved = checkpoint.load(path)
  if not saved or saved.done then return nil end
  return { counts = saved.counts or {}, totals = checkpoint.load(totals_path(path)) or {} }
end

-- A first run (prior nil) starts CHECKPOINT.totals; a resumed one adds to it.
function M.after(path, prior, summary)
  if not path then return summary, nil end
  prior = prior or { counts = {}, totals = {} }
  local this, whole = {}, {}
  for k, v in pairs(summary) do this[k], whole[k] = v, v end
  for _, k in ipairs(SCAN) do
    if type(summary[k]) == "number" then this[k] = summary[k] - (tonumber(prior.counts[k]) or 0) end
  end
  for _, k in ipairs(INDEXER) do
    if type(summary[k]) == "number" then whole[k] = summary[k] + (tonumber(prior.totals[k]) or 0) end
  end
  local keep = {}
  for _, k in ipairs(INDEXER) do keep[k] = whole[k] end
  if checkpoint.load(path) then
    checkpoint.save(totals_path(path), keep) -- best effort: a lost file only loses the whole-job column
  else
    os.remove(totals_path(path)) -- the job finished and its checkpoint went
  end
  return this, summary.resumed and whole or nil
end

return M
