-- Export: scan an index (sliced PIT) into NDJSON, CSV or Parquet files,
-- rotated by size, each renamed into place when complete, plus manifest.json.
--
--   export.run{ client =, index =, query =, slices =, size =, to = DIR | FILE | "-",
--               format = "ndjson"|"csv"|"parquet", file_bytes =, fields = {..},
--               compress = nil|"gzip"|"zstd", source_url =, progress = p,
--               parquet_codec = "snappy"|"zstd"|"gzip"|"none", infer_docs = 1000,
--               checkpoint = PATH, overwrite = false, rate = docs/s, keep_alive = "5m",
--               retry_for = 600, parquet_flatten = false, parquet_rename = { [field] = column },
--               row_group_bytes = 128 MiB, partition_by = "dt={@timestamp:%Y-%m-%d}",
--               max_open_partitions = 16, trap_signals = false,
--               transform = fn | { batch = fn, size = } (espipe.pipeline.transform),
--               dead_letter = PATH (its ".transform" file), max_errors = (the transform's budget),
--               own_slices = { ids } (this run's slices of slices only; a worker's),
--               workers = N (worker processes: export.api_workers; they need source_url,
--                 and take worker_args = more `espipe export` flags) or the CLI's
--                 { count =, job = } (export.on_workers) }
--     -> manifest | nil, err [, partial summary]
-- Unknown keys raise, naming the nearest valid one.
--
-- A directory target must be empty (files of a checkpointed run excepted);
-- overwrite = true first removes the files an export writes there (part
-- files, files in progress, manifest.json), and still refuses a directory
-- holding anything else. With checkpoint = PATH, each completed part file is
-- recorded (with the scan's positions and PIT id) as soon as it is renamed
-- into place; a rerun of the same job keeps those files, removes the
-- partial one and any part file the checkpoint does not list, and goes on
-- from the recorded positions on the same PIT: no row is written twice.
-- When the saved PIT is gone, the files of the earlier run are removed and
-- the export starts again from the beginning (manifest.restarted = true):
-- part files mix the slices' rows, so no slice can be taken up alone.
-- A single-file target (FILE or -) cannot be resumed: checkpoint needs a DIR.
-- With trap_signals, SIGINT/SIGTERM stop the scan after the current page:
-- the file in progress is finished and renamed into place, the checkpoint
-- records it, no manifest is written; run returns nil, err (kind
-- "interrupted"), { rows =, bytes =, files =, interrupted = "SIGINT" }.
-- A second signal stops the process at once.
-- With a transform, sources are decoded and each page's hits go through it
-- (export/transform_hits) before the sink; manifest.transform counts what it
-- dropped, fanned out and failed on (those in dead_letter .. ".transform").
--
-- The formats are sinks, one module each (ndjson_sink, csv_sink,
-- parquet_sink: what their rows hold is described there), behind one
-- interface:
--   sink = <format>_sink.new(ctx) -> sink | nil, err   ctx = { opts =, dir =, client =, policy = }
--   sink.scan                     what it asks of client:scan (raw_source, raw_pages)
--   sink:start(w, saved)          the writer, and the checkpoint of an earlier run (or nil)
--   sink.header                   when set, sink:header() starts each file (CSV)
--   sink:page(page, scan) -> rows | nil, err     one page of the scan
--   sink:flush() -> true | nil, err   every page taken is in files, the last one finished
--   sink:busy()                   true while rows handed out are not all in files yet
--   sink:checkpoint(state), sink:manifest(extra)   its fields of either
--   sink:abort()                  removes what is in progress
-- A file is finished when it reaches file_bytes (default 64 MiB; Parquet:
-- its bytes plus the row group still buffered, scaled by the compression
-- ratio seen so far). Parquet values that do not fit their column are
-- written as null and counted per column (manifest.invalid, and per file);
-- values converted the way Elasticsearch coerces them are counted in
-- manifest.coerced.
local writer_mod = require "espipe.pipeline.writer"
local options = require "espipe.client.options"
local interrupt = require "espipe.pipeline.interrupt"
local target = require "espipe.pipeline.export.target"

local M = {}

-- required when used: an export loads only its own format's modules
local SINKS = {
  ndjson = "espipe.pipeline.export.ndjson_sink",
  csv = "espipe.pipeline.export.csv_sink",
  parquet = "espipe.pipeline.export.parquet_sink",
}

local KNOWN = { "client", "index", "query", "slices", "size", "keep_alive", "to", "format", "file_bytes",
  "fields", "compress", "source_url", "progress", "parquet_codec", "infer_docs", "checkpoint", "overwrite",
  "rate", "retry_for", "parquet_flatten", "parquet_rename", "row_group_bytes", "partition_by",
  "max_open_partitions", "trap_signals", "transform", "dead_letter", "max_errors", "own_slices", "workers",
  "worker_args" }
local CODECS = { none = true, snappy = true, zstd = true, gzip = true }

local function check_opts(opts)
  if type(opts) ~= "table" or not opts.client or not opts.index or not opts.to then
    error("export.run: client, index and to are required", 3)
  end
  options.check(opts, KNOWN, "espipe.export", 3)
  local format = opts.format or "ndjson"
  if not SINKS[format] then
    error("export.run: format must be ndjson, csv or parquet, got " .. tostring(format), 3)
  end
  if opts.parquet_codec ~= nil and not CODECS[opts.parquet_codec] then
    error("export.run: parquet_codec must be none, snappy, zstd or gzip, got " .. tostring(opts.parquet_codec), 3)
  end
  if opts.infer_docs ~= nil and (type(opts.infer_docs) ~= "number" or opts.infer_docs < 1) then
    error("export.run: infer_docs must be a positive number", 3)
  end
  if opts.transform ~= nil then require("espipe.pipeline.transform").new(opts.transform, 4) end
  if opts.max_errors ~= nil then require("espipe.pipeline.error_budget").new({ max_errors = opts.max_errors }, 4) end
  return format
end

local Export = {}
Export.__index = Export

function Export:open_scan(resume, pit_id)
  local opts, wants = self.opts, self.sink.scan
  if opts.own_slices then resume = require("espipe.pipeline.slices").only(resume, opts.own_slices, opts.slices or 1) end
  return self.client:scan(opts.index, opts.query,
    { slices = opts.slices or 1, size = opts.size or 1000, keep_alive = opts.keep_alive or "5m",
      resume = resume, pit_id = pit_id, keep_pit = opts.checkpoint and true or nil, retry = self.policy,
      -- a transform reads decoded documents
      raw_source = wants.raw_source and not self.xform, raw_pages = wants.raw_pages and not self.xform,
      -- a raw page is parsed once, by the writer, which reports its position
      advance = true })
end

-- The scan and its first page, from the saved positions if any. When the
-- saved PIT is gone, part files mix the slices: everything again.
function Export:start_scan()
  local saved = self.saved
  self.scan = self:open_scan(saved and saved.positions or nil, saved and saved.pit_id or nil)
  local first, ferr = self.scan:next_page()
  if first == nil and ferr then return nil, ferr end
  if saved and self.scan.restarted then
    self.scan:close()
    for _, f in ipairs(saved.files or {}) do os.remove(self.dir .. "/" .. f.name) end
    self.saved, self.restarted = false, true
    self.scan = self:open_scan()
    first, ferr = self.scan:next_page()
    if first == nil and ferr then return nil, ferr end
  end
  self.first = first
  return true
end

function Export:start_writer()
  local opts, sink, saved = self.opts, self.sink, self.saved
  self.w = writer_mod.new { dir = self.dir, file = not self.dir and opts.to or nil, format = self.format,
    ext = self.format, file_bytes = opts.file_bytes, compress = opts.compress,
    header = sink.header and function() return sink:header() end or nil,
    on_file = opts.checkpoint and function() return self:save_checkpoint() end or nil,
    resume = saved and { files = saved.files, index = saved.index } or nil }
  sink:start(self.w, saved or nil)
end

-- Each completed file, with the positions of the pages it holds.
function Export:save_checkpoint(done)
  if self.sink:busy() then return true end
  local w, state = self.w, self.ck_state
  state.files, state.rows, state.bytes, state.index = w.files, w.rows, w.bytes, w.index
  self.sink:checkpoint(state)
  state.positions, state.pit_id, state.done = self.scan:positions(), self.scan.pit_id, done or nil
  local ok, err = require("espipe.pipeline.checkpoint").save(self.opts.checkpoint, state)
  if not ok then self.ck_failure = self.ck_failure or err end
  return true
end

function Export:page(page)
  if self.xform then
    local hits, terr = self.xform:hits(page.hits)
    if not hits then self.failure = terr return false end
    page.hits = hits
  end
  local n, err = self.sink:page(page, self.scan)
  if not n then self.failure = err return false end
  self.done = self.done + n
  if self.opts.progress then self.opts.progress:update { done = self.done, bytes = self.w:bytes_so_far() } end
  return true
end

-- --rate; a failed checkpoint stops the export.
function Export:paced()
  if self.ck_failure then self.failure = self.ck_failure return false end
  local rate = self.opts.rate
  if rate and rate > 0 then
    local ahead = self.done / rate - (self.client:now() - self.started)
    if ahead > 0 then interrupt.sleep(self.client, ahead) end
  end
  return true
end

function Export:pages()
  local page, err = self.first, nil
  while page do
    if not (self:page(page) and self:paced()) then return end
    -- Ctrl-C / SIGTERM: no more pages; the file in progress is finished after
    self.interrupted = interrupt.received()
    if self.interrupted then return end
    page, err = self.scan:next_page()
  end
  self.failure = self.failure or err
end

-- Every page taken is written: the file in progress is finished and renamed
-- like any other, and checkpointed; no manifest (not complete).
function Export:stop_interrupted()
  local w = self.w
  local ok, err = self.sink:flush()
  if ok then ok, err = w:close_current() end
  if ok and self.opts.checkpoint then self:save_checkpoint() end
  if ok and self.ck_failure then ok, err = nil, self.ck_failure end
  local partial = { interrupted = self.interrupted, rows = w.rows, bytes = w.bytes, files = #w.files }
  if ok then return nil, target.interrupted_error(self.interrupted, self.done, self.dir, self.opts), partial end
  return self:abort(err, partial)
end

function Export:abort(err, partial)
  self.w:abort()
  self.sink:abort()
  return nil, err, partial
end

function Export:finish()
  local ok, err = self.sink:flush()
  if not ok then return self:abort(err) end
  local opts = self.opts
  local extra = { source = require("espipe.client.url").redact(opts.source_url) or opts.index, index = opts.index,
    query = opts.query or require("espipe.json").null, total = self.w.rows }
  self.sink:manifest(extra)
  if self.restarted then extra.restarted = true end
  if self.xform then
    local x = self.xform
    extra.transform = { dropped = x.dropped, fanned_out = x.fanned_out, failed = x.failed,
      dead_letter = x:close() }
  end
  local manifest, merr = self.w:close(extra)
  if manifest and opts.checkpoint then
    self:save_checkpoint(true)
    if self.ck_failure then return nil, self.ck_failure end
  end
  if not manifest then return nil, merr end
  return manifest
end

local function run_job(opts, format, policy)
  -- the source's release first: its mapping (6.x: under a type) and its scan depend on it
  local known, verr = require("espipe.pipeline.versions").read(policy, opts.client)
  if not known then return nil, verr end
  if opts.workers then return require("espipe.pipeline.export.on_workers").run(opts, policy) end
  local job = setmetatable({ opts = opts, format = format, client = opts.client, policy = policy,
    dir = target.dir(opts), done = 0, ck_state = { files = {}, rows = 0, bytes = 0, positions = {} } }, Export)
  local sink, serr = require(SINKS[format]).new(job)
  if not sink then return nil, serr end
  job.sink = sink
  if opts.transform then
    job.xform = require("espipe.pipeline.export.transform_hits").new { transform = opts.transform,
      client = job.client, dead_letter = (opts.dead_letter or "espipe-deadletter.ndjson") .. ".transform",
      max_errors = opts.max_errors }
  end
  local saved, perr = target.prepare(job.dir, opts)
  if saved == nil then return nil, perr end
  if saved and saved.done then
    return { already_done = true, rows = saved.rows, bytes = saved.bytes, files = saved.files or {} }
  end
  job.saved = saved
  local total, cerr = require("espipe.pipeline.setup").new(job.client, policy):count(opts.index, opts.query)
  if not total then return nil, cerr end
  if opts.progress then opts.progress.total = total end
  local ok, err = job:start_scan()
  if not ok then return nil, err end
  job:start_writer()
  job.started = job.client:now()
  local pok, perr2 = pcall(job.pages, job)
  if not pok then job.failure = job.failure or perr2 end
  job.scan:close()
  if job.xform and (job.failure or job.interrupted) then job.xform:close() end
  if job.failure then return job:abort(job.failure, job.interrupted and { interrupted = job.interrupted } or nil) end
  if job.interrupted then return job:stop_interrupted() end
  return job:finish()
end

function M.run(opts)
  local format = check_opts(opts)
  if type(opts.workers) == "number" then
    local api = {}
    for k, v in pairs(opts) do api[k] = v end
    api.workers = opts.workers > 1 and require("espipe.pipeline.export.api_workers").option(opts, 2) or nil
    api.worker_args = nil
    opts = api
  end
  local policy = require("espipe.client.retry").new({ retry_for = opts.retry_for }, 2)
  -- the options are checked: run with SIGINT/SIGTERM trapped (unless a caller already does)
  return interrupt.run(opts.trap_signals and not interrupt.active(), run_job, opts, format, policy)
end

return M
