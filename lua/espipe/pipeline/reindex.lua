-- Reindex with Lua enrichment: scan a source index (sliced, PIT), optionally
-- transform each document in Lua, bulk it into a destination index, possibly
-- on another cluster.
--
--   reindex.run{
--     source = { client =, index =, query = <query table>, slices = 1, size = 1000, keep_alive = "5m",
--                refresh = true (refresh the source before the scan, so nothing acknowledged is missed) },
--     dest   = { client =, index =, op = "index"|"create" },
--     transform = function(doc, hit) ... end,   -- optional
--     presort = false, presort_window = shards x batch_docs, checkpoint_every = docs,
--     tune_dest = false, swap_alias = nil, checkpoint = nil,
--     rate = nil (docs/s), progress = nil, dead_letter = PATH,
--     batch_docs =, batch_bytes =, concurrency =, retries =,
--   } -> summary | nil, err, summary
--
-- The transform returns the document (changed or not), nil to drop it, or
-- reindex.many{ doc, doc, ... } to fan it out. A document may carry _id,
-- _index and _routing: they set the bulk metadata and are removed from the
-- source (a document without _id keeps the hit's _id, so documents fanned
-- out into the same index need their own _id). If the
-- transform raises, the hit goes to the dead letter (dead_letter .. ".transform")
-- with the error, and the job goes on. Without a transform the _source bytes
-- pass through untouched: they are never decoded.
--
-- Checkpoints: with checkpoint = PATH the per-slice scan position of the
-- last page whose documents were all acknowledged (or dead-lettered) is saved
-- atomically after each batch. Rerunning the same job resumes from there.
-- Pages after the saved position may be sent twice: with ids preserved and
-- op = "index" that rewrites the same documents; with op = "create" the 409s
-- of already-written documents count as done (summary.conflicts_done).
local checkpoint = require "espipe.pipeline.checkpoint"
local presort_mod = require "espipe.pipeline.presort"
local deadletter = require "espipe.pipeline.deadletter"
local tune = require "espipe.pipeline.tune"
local pit_pages = require "espipe.pipeline.pit_pages"
local errors = require "espipe.errors"

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

local function count_source(src)
  local body = src.query and { query = src.query } or nil
  local resp = src.client:count { index = src.index, body = body }
  return resp and tonumber(resp.count)
end

local function now(client) return client:now() end

function M.run(opts)
  if type(opts) ~= "table" then error("reindex.run: expected an options table", 2) end
  local src, dst = opts.source, opts.dest
  if type(src) ~= "table" or not src.client or not src.index then error("reindex.run: source.client and source.index are required", 2) end
  if type(dst) ~= "table" or not dst.client or not dst.index then error("reindex.run: dest.client and dest.index are required", 2) end
  if opts.transform ~= nil and type(opts.transform) ~= "function" then error("reindex.run: transform must be a function", 2) end
  local op = dst.op or "index"
  if op ~= "index" and op ~= "create" then error("reindex.run: dest.op must be index or create", 2) end
  local slices = src.slices or 1
  local batch_docs = opts.batch_docs or 1000

  local summary = { scanned = 0, sent = 0, dropped = 0, fanned_out = 0, transform_errors = 0, resumed = false }
  local state = { slices = {}, counts = summary }
  if opts.checkpoint then
    local saved, lerr = checkpoint.load(opts.checkpoint)
    if lerr then return nil, lerr, summary end
    if saved then
      if saved.done then
        for k, v in pairs(saved.counts or {}) do summary[k] = v end
        summary.already_done = true
        return summary
      end
      state.slices = saved.slices or {}
      for k, v in pairs(saved.counts or {}) do if type(v) == "number" then summary[k] = v end end
      summary.resumed = true
    end
  end

  -- Documents acknowledged before the job started must be copied, but a
  -- point in time sees only refreshed ones: refresh the source first
  -- (source.refresh = false to skip; a cluster that refuses, e.g. for lack of
  -- privilege, leaves the scan to what its refresh_interval made visible).
  if src.refresh ~= false and not summary.resumed then
    local rok, rerr = src.client:refresh { index = src.index }
    if not rok then summary.source_refresh_error = tostring(rerr) end
  end

  -- a missing destination is created with dest.shards (default: the source's
  -- shard count), so that tuning and pre-sort have an index to work on
  local exists, eerr = dst.client.indices:exists { index = dst.index }
  if exists == nil then return nil, eerr, summary end
  if not exists then
    local shards = dst.shards
    if not shards then
      local sresp = src.client.indices:get_settings { index = src.index }
      local _, entry = next(sresp or {})
      shards = entry and entry.settings and entry.settings.index and tonumber(entry.settings.index.number_of_shards)
    end
    local ok, cerr = dst.client.indices:create { index = dst.index,
      settings = shards and { number_of_shards = shards } or nil }
    if not ok and not (cerr and cerr.type == "resource_already_exists_exception") then return nil, cerr, summary end
  end

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
    local resp, serr = dst.client.indices:get_settings { index = dst.index }
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
  local checkpoint_every = opts.checkpoint_every or window

  local total = count_source(src)
  if opts.progress then opts.progress.total = total end

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
    if opts.dead_letter then
      dl_file = dl_file or assert(require("espipe.private_file").open(opts.dead_letter, "ab"))
      dl_file:write(item.record)
      dl_file:flush()
    end
  end
  local ix = dst.client:bulk_indexer {
    index = dst.index, batch_docs = batch_docs, batch_bytes = opts.batch_bytes,
    concurrency = opts.concurrency, retries = opts.retries, dead_letter = dead,
    retry_for = opts.retry_for, max_errors = opts.max_errors, stall_timeout = opts.stall_timeout,
    error_budget = opts.error_budget, conflict_ok = op == "create",
  }
  local transform_dl = deadletter.new((opts.dead_letter or "espipe-deadletter.ndjson") .. ".transform")

  local scan = pit_pages.new(src.client, src.index, src.query, {
    slices = slices, size = src.size or 1000, keep_alive = src.keep_alive or "5m",
    resume = state.slices, pit_id = state.pit_id,
    raw_source = opts.transform == nil,   -- passthrough: _source bytes never decoded
  })

  local groups, grouped = {}, 0 -- per-slice documents waiting for a presorted hand-over
  local positions = {}          -- slice -> position of its last page handed over
  local since_ck = 0
  local failure
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
      if ok == nil and err then failure = err return false end
      summary.sent = summary.sent + 1
    end
    return true
  end

  local function hand_all()
    for slice, items in pairs(groups) do
      if #items > 0 and not hand(slice, items) then return false end
      groups[slice] = {}
    end
    grouped = 0
    return true
  end

  local function save_checkpoint()
    if not hand_all() then return false end
    local ok, ferr = ix:flush()
    if ok == nil and ferr then failure = ferr return false end
    for slice, pos in pairs(positions) do state.slices[tostring(slice)] = pos end
    state.pit_id = scan.pit_id
    local sok, serr = checkpoint.save(opts.checkpoint, state)
    if not sok then failure = serr return false end
    since_ck = 0
    return true
  end

  local function emit(slice, doc, hit, n)
    local g = groups[slice]
    if not g then g = {}; groups[slice] = g end
    local meta = meta_of(doc, hit, dst.index)
    g[#g + 1] = { doc = doc, meta = meta, id = meta._id, routing = meta.routing }
    grouped = grouped + 1
    if #g >= window then
      groups[slice] = {}
      grouped = grouped - #g
      return hand(slice, g)
    end
    return true
  end

  local function each_page(page)
    local slice = page.slice
    for _, hit in ipairs(page.hits) do
      summary.scanned = summary.scanned + 1
      if opts.transform then
        local ok, out = pcall(opts.transform, hit._source, hit)
        if not ok then
          summary.transform_errors = summary.transform_errors + 1
          transform_dl:write { _index = hit._index, _id = hit._id, error = tostring(out), source = hit._source }
        elseif out == nil then
          summary.dropped = summary.dropped + 1
        elseif M.is_many(out) then
          for n, doc in ipairs(out) do if not emit(slice, doc, hit, n) then return false end end
          summary.fanned_out = summary.fanned_out + #out
        elseif not emit(slice, out, hit) then
          return false
        end
      elseif not emit(slice, hit._source, hit) then
        return false
      end
    end
    positions[slice] = { search_after = page.search_after, done = page.last or nil }
    since_ck = since_ck + #page.hits
    if opts.checkpoint and since_ck >= checkpoint_every then
      if not save_checkpoint() then return false end
    end
    if opts.progress then
      local s = ix:stats_now()
      opts.progress:update { done = summary.scanned, retries = s.retried, failed = s.failed }
    end
    if opts.rate and opts.rate > 0 then
      local ahead = summary.scanned / opts.rate - (now(src.client) - started)
      if ahead > 0 then src.client:sleep(ahead) end
    end
    return true
  end

  local ok, perr = pcall(function()
    for page in scan:pages() do
      if not each_page(page) then break end
    end
  end)
  if not ok then failure = failure or perr end
  summary.restarted_slices = scan.restarted or nil
  if not failure then hand_all() end
  if not failure then scan:close() end
  local stats, ierr = ix:close()
  failure = failure or ierr -- systemic, stalled, error budget spent
  transform_dl:close()
  for k, v in pairs(stats) do if summary[k] == nil or type(v) == "number" then summary[k] = v end end
  if dl_file then dl_file:close() end
  summary.conflicts_done = conflicts_done
  summary.ok = (summary.ok or 0) + conflicts_done
  summary.failed = (summary.failed or 0) - conflicts_done
  if dl_count > 0 then summary.dead_letter = opts.dead_letter end
  if transform_dl.count > 0 then summary.transform_dead_letter = transform_dl.path end

  if not failure and opts.checkpoint then
    state.done = true
    for slice, pos in pairs(positions) do state.slices[tostring(slice)] = pos end
    checkpoint.save(opts.checkpoint, state)
  end
  if tune_path then
    local ok, rerr = tune.restore(dst.client, tune_path)
    if not ok and not failure then failure = rerr end
  end
  if not failure and opts.swap_alias then
    local cur = dst.client.indices:get_alias { name = opts.swap_alias }
    local actions = {}
    for index in pairs(cur or {}) do
      if index ~= dst.index then actions[#actions + 1] = { remove = { index = index, alias = opts.swap_alias } } end
    end
    actions[#actions + 1] = { add = { index = dst.index, alias = opts.swap_alias } }
    local ok, aerr = dst.client.indices:update_aliases { actions = actions }
    if not ok then failure = aerr end
  end
  if failure then return nil, failure, summary end
  return summary
end

return M
