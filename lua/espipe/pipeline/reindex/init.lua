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
local checkpoint = require "espipe.pipeline.checkpoint"
local presort_mod = require "espipe.pipeline.presort"
local deadletter = require "espipe.pipeline.deadletter"
local tune = require "espipe.pipeline.tune"
local setup_mod = require "espipe.pipeline.setup"
local retry = require "espipe.client.retry"
local options = require "espipe.options"
local errors = require "espipe.errors"
local interrupt = require "espipe.pipeline.interrupt"

local M = {}

local many_mt = { __name = "espipe.many" }

-- Marks a list of documents as a fan-out result of a transform.
function M.many(list)
  if type(list) ~= "table" then error("reindex.many expects a table of documents", 2) end
  return setmetatable(list, many_mt)
end

function M.is_many(v) return getmetatable(v) == many_mt end

local function meta_of(doc, hit, dest_index)
  local meta = { _index = dest_index, _id = hit._id, routing = hit._routing }
  if type(doc) == "table" then
    if doc._id ~= nil then meta._id = doc._id; doc._id = nil end
    if doc._index ~= nil then meta._index = doc._index; doc._index = nil end
    if doc._routing ~= nil then meta.routing = doc._routing; doc._routing = nil end
  end
  return meta
end

local KNOWN = { "source", "dest", "transform", "presort", "presort_window", "checkpoint_interval",
  "tune_dest", "tune_state", "on_tuned", "swap_alias", "checkpoint", "rate", "progress", "dead_letter",
  "retry_for", "max_errors", "stall_timeout", "error_budget", "batch_docs", "batch_bytes", "concurrency",
  "retries", "backoff", "trap_signals", "max_concurrency", "max_batch_bytes" }
local SOURCE_KEYS = { "client", "index", "query", "slices", "size", "keep_alive", "refresh" }
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

local function now(client) return client:now() end

-- The transform's result and how many values it returned (0: it forgot to return).
local function called(ok, ...) return ok, select("#", ...), ... end

local function no_value_error(hit)
  return errors.new { kind = "transform", message = "the transform returned no value for document "
    .. tostring(hit._index) .. "/" .. tostring(hit._id)
    .. " (return the document to keep it, or nil explicitly to drop it)" }
end

-- A missing destination is created with dest.shards (default: the source's
-- shard count), so that tuning and pre-sort have an index to work on.
local function ensure_dest(src_setup, dst_setup, src, dst)
  local exists, eerr = dst_setup:exists(dst.index)
  if exists == nil then return nil, eerr end
  if exists then return true end
  local shards = dst.shards
  if not shards then
    local sresp, serr = src_setup:get(src.index, "_settings")
    if not sresp then return nil, serr end
    local _, entry = next(sresp)
    shards = entry and entry.settings and entry.settings.index and tonumber(entry.settings.index.number_of_shards)
  end
  return dst_setup:create(dst.index, shards and { settings = { number_of_shards = shards } } or nil)
end

local function load_state(opts, summary)
  local state = { slices = {}, counts = summary }
  if not opts.checkpoint then return state end
  local saved, lerr = checkpoint.load(opts.checkpoint)
  if lerr then return nil, lerr end
  if not saved then return state end
  for k, v in pairs(saved.counts or {}) do if type(v) == "number" then summary[k] = v end end
  if saved.done then
    summary.already_done = true
    return state, true
  end
  state.slices, state.pit_id = saved.slices or {}, saved.pit_id
  summary.resumed = true
  return state
end

local function list_of(set)
  local out = {}
  for k in pairs(set) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- Stops after which the destination still takes a refresh.
local ENDS_WRITABLE = { interrupted = true, error_budget = true }

local function run_job(opts, src, dst, op)
  local slices = src.slices or 1
  local batch_docs = opts.batch_docs or 1000
  local policy = retry.new({ retry_for = opts.retry_for }, 2)
  local src_setup, dst_setup = setup_mod.new(src.client, policy), setup_mod.new(dst.client, policy)

  local summary = { scanned = 0, sent = 0, dropped = 0, fanned_out = 0, transform_errors = 0, resumed = false }
  local state, finished = load_state(opts, summary)
  if not state then return nil, finished, summary end
  if finished then return summary end

  -- Documents acknowledged before the job started must be copied, but a
  -- point in time sees only refreshed ones: refresh the source first
  -- (source.refresh = false to skip). A refresh that fails for good stops
  -- the job: a copy that may miss documents is not a success.
  if src.refresh ~= false and not summary.resumed then
    local rok, rerr = src_setup:refresh(src.index)
    if not rok then return nil, rerr, summary end
  end
  local dok, derr = ensure_dest(src_setup, dst_setup, src, dst)
  if not dok then return nil, derr, summary end

  -- tuning first, so a failure later still finds the state file to restore from
  local tune_path
  if opts.tune_dest then
    -- os.tmpname() creates the file: it becomes the state file itself
    -- (empty until written), so nothing is left behind once restored
    tune_path = opts.tune_state or (opts.checkpoint and (opts.checkpoint .. ".tune")) or os.tmpname()
    local ok, terr = tune.apply(dst.client, dst.index, tune_path, dst.url)
    if not ok then return nil, terr, summary end
    if opts.on_tuned then opts.on_tuned(tune_path) end
  end

  local sorter
  if opts.presort then
    local resp, serr = dst_setup:get(dst.index, "_settings")
    local params, why = presort_mod.params_from_settings(resp, dst.index)
    if not params then
      return nil, serr or errors.new { kind = "config", message = "presort: " .. tostring(why) }, summary
    end
    sorter = presort_mod.new(params)
  end
  -- Documents are handed to the indexer in windows: with presort a window
  -- holds presort_window documents of one slice (default shards x batch_docs),
  -- sorted by shard, so the indexer cuts it into batches of one or two shards
  -- each. Memory: slices x window documents.
  local window = sorter and (opts.presort_window or sorter.shards * batch_docs) or batch_docs

  local total, cerr = src_setup:count(src.index, src.query)
  if not total then return nil, cerr, summary end
  if opts.progress then opts.progress.total = total end

  local failure
  -- The indexer's dead letter goes through here: with op = "create" a 409
  -- means the document is already there (a page re-sent after a resume),
  -- which is done, not failed.
  local conflicts_done, dl_file, dl_count = 0, nil, 0
  local function dead(item)
    if op == "create" and item.status == 409 then
      conflicts_done = conflicts_done + 1
      return
    end
    dl_count = dl_count + 1
    if opts.dead_letter and not failure then
      if not dl_file then
        local f, ferr = require("espipe.private_file").open(opts.dead_letter, "ab")
        if not f then
          failure = errors.new { kind = "output",
            message = "cannot open the dead letter " .. opts.dead_letter .. ": " .. tostring(ferr) }
          return
        end
        dl_file = f
      end
      dl_file:write(item.record)
      dl_file:flush()
    end
  end

  -- checkpoint: positions move as batches settle; written at most every interval
  local acks = opts.checkpoint and checkpoint.acks(state.slices)
  local scan
  local interval, last_save = opts.checkpoint_interval or 1, now(src.client)
  local function save(done)
    state.slices, state.pit_id, state.done = acks:positions(), scan.pit_id, done or nil
    local ok, serr = checkpoint.save(opts.checkpoint, state)
    if not ok and not failure then failure = serr end
    last_save = now(src.client)
  end
  local function maybe_save()
    if acks and now(src.client) - last_save >= interval then save() end
  end

  local ix = dst.client:bulk_indexer {
    index = dst.index, batch_bytes = opts.batch_bytes,
    -- an auto batch size is bounded by bytes only, unless the caller set batch_docs
    batch_docs = (opts.batch_docs or opts.batch_bytes ~= "auto") and batch_docs or nil,
    concurrency = opts.concurrency, retries = opts.retries, backoff = opts.backoff, dead_letter = dead,
    max_concurrency = opts.max_concurrency, max_batch_bytes = opts.max_batch_bytes,
    on_batch = acks and function(b)
      acks:settled(b.tokens)
      maybe_save() -- also while the scan waits: positions move as batches settle
    end or nil,
    retry_for = opts.retry_for, max_errors = opts.max_errors, stall_timeout = opts.stall_timeout,
    error_budget = opts.error_budget, conflict_ok = op == "create",
  }
  local transform_dl = deadletter.new((opts.dead_letter or "espipe-deadletter.ndjson") .. ".transform")

  scan = src.client:scan(src.index, src.query, {
    slices = slices, size = src.size or 1000, keep_alive = src.keep_alive or "5m",
    resume = state.slices, pit_id = state.pit_id, keep_pit = acks and true or nil, retry = policy,
    raw_source = opts.transform == nil,   -- passthrough: _source bytes never decoded
  })

  local groups = {}         -- per-slice documents waiting for a presorted hand-over
  local written = { [dst.index] = true }
  local started = now(src.client)

  local last_shard -- shard of the indexer's current batch (pre-sort), across windows
  local function hand(slice, items)
    if sorter then items = sorter:order(items, slice) end
    for _, it in ipairs(items) do
      -- pre-sorted: a request ends where the shard changes, so each one
      -- carries a single shard's documents
      if sorter and it.shard ~= last_shard then
        if last_shard ~= nil then ix:ship() end
        last_shard = it.shard
      end
      local ok, err
      if op == "create" then ok, err = ix:create(it.doc, it.meta) else ok, err = ix:index(it.doc, it.meta) end
      if ok == nil and err then failure = failure or err return false end
      summary.sent = summary.sent + 1
    end
    return true
  end

  local function hand_all()
    for slice, items in pairs(groups) do
      if #items > 0 and not hand(slice, items) then return false end
      groups[slice] = {}
    end
    return true
  end

  local function emit(slice, doc, hit, token)
    local g = groups[slice]
    if not g then g = {}; groups[slice] = g end
    local meta = meta_of(doc, hit, dst.index)
    if meta._index ~= dst.index then written[meta._index] = true end
    if token then
      meta.token = token
      acks:add(token)
    end
    g[#g + 1] = { doc = doc, meta = meta, id = meta._id, routing = meta.routing }
    if #g >= window then
      groups[slice] = {}
      return hand(slice, g)
    end
    return true
  end

  local transform = opts.transform
  local function each_hit(slice, hit, token)
    summary.scanned = summary.scanned + 1
    if not transform then return emit(slice, hit._source, hit, token) end
    local ok, nret, out = called(pcall(transform, hit._source, hit))
    if not ok then
      summary.transform_errors = summary.transform_errors + 1
      transform_dl:write { _index = hit._index, _id = hit._id, error = tostring(out), source = hit._source }
      -- a transform that raises on every document spends the job's error budget
      local over = ix.budget:fail { id = hit._id, index = hit._index, reason = "transform: " .. tostring(out) }
      if over then failure = failure or over return false end
      return true
    end
    if nret == 0 then failure = no_value_error(hit) return false end
    if out == nil then
      summary.dropped = summary.dropped + 1
    elseif M.is_many(out) then
      for _, doc in ipairs(out) do if not emit(slice, doc, hit, token) then return false end end
      summary.fanned_out = summary.fanned_out + #out
    else
      return emit(slice, out, hit, token)
    end
    return true
  end

  local interrupted
  local function each_page(page)
    local slice = page.slice
    local token = acks and acks:page(slice, { search_after = page.search_after, done = page.last or nil })
    for _, hit in ipairs(page.hits) do
      if not each_hit(slice, hit, token) then return false end
    end
    if token then acks:sealed(token) end
    maybe_save()
    if opts.progress then
      local s = ix:stats_now()
      opts.progress:update { done = summary.scanned, retries = s.retried, failed = s.failed, tuning = s.tuning }
    end
    if opts.rate and opts.rate > 0 then
      local ahead = summary.scanned / opts.rate - (now(src.client) - started)
      if ahead > 0 then interrupt.sleep(src.client, ahead) end
    end
    -- Ctrl-C / SIGTERM: no more pages; what was taken is flushed below
    interrupted = interrupted or interrupt.received()
    return not failure and not interrupted
  end

  local ok, perr = pcall(function()
    while true do
      local page, serr = scan:next_page()
      if not page then
        if serr then failure = failure or serr end
        return
      end
      if not each_page(page) then return end
    end
  end)
  if not ok then failure = failure or perr end
  if state.pit_id then summary.pit_reused = not scan.restarted end
  if scan.restarted then
    summary.restarted_slices = table.concat(scan.restarted, ",")
    summary.note = "the saved point in time was gone: slice(s) " .. summary.restarted_slices
      .. " started again from their beginning (documents keep their ids)"
  end
  -- what was accepted is sent and accounted on every exit path
  hand_all()
  scan:close()
  local stats, ierr = ix:close()
  failure = failure or ierr -- systemic, stalled, error budget spent
  stats = stats or {}
  transform_dl:close()
  for k, v in pairs(stats) do if summary[k] == nil or type(v) == "number" then summary[k] = v end end
  if dl_file then dl_file:close() end
  summary.conflicts_done = conflicts_done
  summary.ok = (summary.ok or 0) + conflicts_done
  summary.failed = (summary.failed or 0) - conflicts_done
  if dl_count > 0 then summary.dead_letter = opts.dead_letter end
  if transform_dl.count > 0 then summary.transform_dead_letter = transform_dl.path end
  if transform and summary.scanned > 0 and summary.sent == 0 and summary.dropped == summary.scanned then
    summary.warning = "the transform dropped every document: nothing was written"
  end
  if interrupted then summary.interrupted = interrupted end
  if interrupted and not failure then
    failure = interrupt.error(interrupted, summary.ok, "documents", opts.checkpoint
      and ("checkpoint saved to " .. opts.checkpoint .. " (rerun the same command to resume)")
      or "what was copied is flushed; without --checkpoint a rerun starts over")
  end
  if acks then save(not failure) end

  -- what was written is searchable when the job ends (dest.refresh = false
  -- to skip), also when a signal or the error budget stopped it
  if dst.refresh ~= false and (not failure or ENDS_WRITABLE[failure.kind]) then
    local rok, rerr = dst_setup:refresh(list_of(written))
    if not rok then failure = failure or rerr else summary.refreshed = true end
  end
  if tune_path then
    local rok, rerr = tune.restore(dst.client, tune_path)
    if not rok and not failure then failure = rerr end
  end
  if not failure and opts.swap_alias then
    local cur = dst.client.indices:get_alias { name = opts.swap_alias }
    local actions = {}
    for index in pairs(cur or {}) do
      if index ~= dst.index then actions[#actions + 1] = { remove = { index = index, alias = opts.swap_alias } } end
    end
    actions[#actions + 1] = { add = { index = dst.index, alias = opts.swap_alias } }
    local aok, aerr = dst.client.indices:update_aliases { actions = actions }
    if not aok then failure = aerr end
  end
  if failure then return nil, failure, summary end
  return summary
end

function M.run(opts)
  local src, dst, op = check_opts(opts)
  return interrupt.run(opts.trap_signals, run_job, opts, src, dst, op)
end

return M
