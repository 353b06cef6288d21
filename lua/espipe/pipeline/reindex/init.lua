-- Reindex with Lua enrichment: scan a source index (sliced, PIT), optionally
-- transform each document in Lua, bulk it into a destination index, possibly
-- on another cluster.
--
--   reindex.run{
--     source = { client =, index =, query = <query table>, slices = 1, size = 1000, keep_alive = "5m",
--                refresh = true (refresh the source before the scan, so nothing acknowledged is missed) },
--     dest   = { client =, index =, op = "index"|"create", shards =, url =,
--                refresh = true (refresh what was written, once, at the end) },
--     transform = function(doc, hit) ... end,   -- optional
--     presort = false, presort_window = shards x batch_docs, checkpoint_interval = 1 (seconds),
--     tune_dest = false, tune_state =, on_tuned =, swap_alias = nil, checkpoint = nil,
--     rate = nil (docs/s), progress = nil, dead_letter = PATH, retry_for = 600 (seconds),
--     batch_docs =, batch_bytes =, concurrency =, retries =, backoff = (the bulk indexer's),
--     trap_signals = false,
--     checkpoint_store = { load = fn, save = fn } (espipe.pipeline.checkpoint's file_store
--       shape; default: the file at checkpoint, which then only names it in messages),
--     workers = { count = N, job = function(i) -> what worker i is sent } (the CLI's
--       --workers: reindex.on_workers), source.own_slices = { ... } (this run's slices only),
--   } -> summary | nil, err, summary
-- Unknown keys raise, naming the nearest valid one.
--
-- The transform returns the document (changed or not), nil to drop it, or
-- reindex.many{ doc, doc, ... } to fan it out. A transform that returns no
-- value at all (a forgotten `return doc`) stops the job with an error naming
-- the document; only an explicit `return nil` drops. A document may carry _id,
-- _index and _routing: they set the bulk metadata and are removed from the
-- source (a document without _id keeps the hit's _id, so documents fanned
-- out into the same index need their own _id). If the
-- transform raises, the hit goes to the dead letter (dead_letter .. ".transform")
-- with the error, counts against the indexer's error budget (max_errors), and
-- the job goes on until the budget is spent. Without a transform the _source bytes
-- pass through untouched: they are never decoded. A job whose transform
-- dropped every document says so (summary.warning).
--
-- Checkpoints: with checkpoint = PATH, each slice's position is that of its
-- last page all of whose documents the destination acknowledged (or that
-- were dead-lettered), learnt from the indexer's on_batch as batches settle:
-- the pipeline never waits for the indexer to drain. The file is written at
-- most every checkpoint_interval seconds and at exit, with the PIT id.
-- Rerunning the same job resumes from there on the same PIT (extending its
-- keep_alive); when the PIT is gone the unfinished slices start over
-- (summary.restarted_slices). Documents after the saved positions may be
-- sent twice: with ids preserved and op = "index" that rewrites the same
-- documents; with op = "create" the 409s of already-written documents count
-- as done (summary.conflicts_done).
--
-- With trap_signals, SIGINT/SIGTERM stop the scan after the current page:
-- what was taken is flushed, accounted, refreshed and checkpointed, and run
-- returns nil, err (kind "interrupted"), summary (summary.interrupted names
-- the signal). A second signal stops the process at once.
--
-- The job runs in three stages, one module each: prepare (checkpoint, source
-- refresh, destination, tuning, pre-sort, count), emit (scan -> transform ->
-- windows -> bulk indexer) and finish (accounting, final checkpoint, refresh,
-- tuning restored, alias swap).
local options = require "espipe.client.options"
local interrupt = require "espipe.pipeline.interrupt"
local many = require "espipe.pipeline.reindex.many"
-- the three stages
local prepare, emit, finish = require "espipe.pipeline.reindex.prepare", require "espipe.pipeline.reindex.emit",
  require "espipe.pipeline.reindex.finish"

local M = {}

-- Marks a list of documents as a fan-out result of a transform.
M.many, M.is_many = many.new, many.is

local KNOWN = { "source", "dest", "transform", "presort", "presort_window", "checkpoint_interval",
  "tune_dest", "tune_state", "on_tuned", "swap_alias", "checkpoint", "rate", "progress", "dead_letter",
  "retry_for", "max_errors", "stall_timeout", "error_budget", "batch_docs", "batch_bytes", "concurrency",
  "retries", "backoff", "trap_signals", "max_concurrency", "max_batch_bytes", "workers",
  "checkpoint_store" }
local SOURCE_KEYS = { "client", "index", "query", "slices", "size", "keep_alive", "refresh", "own_slices" }
local DEST_KEYS = { "client", "index", "op", "shards", "url", "refresh" }

local function check_opts(opts)
  if type(opts) ~= "table" then error("reindex.run: expected an options table", 3) end
  options.check(opts, KNOWN, "espipe.reindex", 3)
  local src, dst = opts.source, opts.dest
  if type(src) ~= "table" or not src.client or not src.index then
    error("reindex.run: source.client and source.index are required", 3)
  end
  if type(dst) ~= "table" or not dst.client or not dst.index then
    error("reindex.run: dest.client and dest.index are required", 3)
  end
  options.check(src, SOURCE_KEYS, "espipe.reindex source", 3)
  options.check(dst, DEST_KEYS, "espipe.reindex dest", 3)
  if opts.transform ~= nil and type(opts.transform) ~= "function" then
    error("reindex.run: transform must be a function", 3)
  end
  local op = dst.op or "index"
  if op ~= "index" and op ~= "create" then error("reindex.run: dest.op must be index or create", 3) end
  return src, dst, op
end

local function run_job(opts, src, dst, op)
  if opts.workers then return require("espipe.pipeline.reindex.on_workers").run(opts, src, dst, op) end
  local job, err, summary = prepare.run(opts, src, dst, op)
  if not job then return nil, err, summary end
  if job.already_done then return job.summary end
  local copy = emit.new(job)
  copy:run()
  return finish.run(job, copy)
end

function M.run(opts)
  local src, dst, op = check_opts(opts)
  return interrupt.run(opts.trap_signals, run_job, opts, src, dst, op)
end

return M
