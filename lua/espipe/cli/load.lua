-- espipe load: NDJSON, bulk-format or CSV files (or stdin) into an index.
local args = require "espipe.cli.args"
local common = require "espipe.cli.common"
local interrupt = require "espipe.pipeline.interrupt"
local load_workers = require "espipe.pipeline.load_workers"

local usage = [[
usage: espipe load FILE|- --index NAME [options]

  --format F         ndjson (default) | bulk (_bulk action+source lines) | csv (header row)
                     | deadletter (replay the dead letter of an earlier job)
  --index NAME       destination index
  --index-pattern P  index per document from a date field, e.g. 'logs-{@timestamp:%Y.%m}'
  --id-field F       take each document's _id from field F
  --routing-field F  route each document by its field F (a string or an integer)
  --rate N           at most N documents per second
  --pipeline NAME    run every document through the ingest pipeline NAME
  --op OP            index (default) | create
  --checkpoint FILE  save the position every line before which is indexed or dead-lettered, and
                     the counts (at most once a second); rerunning the same command resumes there
                     (compressed input is decompressed and skipped up to it); needs a FILE input
  --presort          hold shards x --batch-docs documents, sorted by destination shard, and send
                     each shard's in requests of their own (needs --id-field, an existing index)
  --shard-aware      send each document to the node holding its primary shard (needs --id-field)
  --workers N        N processes (default 1; NDJSON and dead letters): a plain FILE is cut
                     into one range each at line boundaries; compressed input and stdin are
                     read once and handed to them in chunks of lines; one progress line and
                     summary, dead letters merged;
                     with --checkpoint every range (CHECKPOINT.wI; rerun with the same N) or
                     chunk resumes exactly
  --on-bad-line M    stop (default: flush what was accepted, exit 1) | skip (into DEAD-LETTER.input,
                     raw bytes in base64); a bad line: not a JSON object, invalid UTF-8, no id field, ...
  --max-line-bytes N a longer line is a bad line, skipped to its newline (default 100 MB,
                     Elasticsearch's http.max_content_length)
  --no-refresh       do not refresh the destination at the end (default: refresh, so a search
                     right after the load sees every document)
  --allow-empty      exit 0 also when nothing was indexed (default: exit 1)
  --strict           decode every NDJSON line (default: a cheap object check; ES rejects the rest)
  --csv-types        CSV cells that are JSON numbers/booleans become numbers/booleans
  --batch-docs N     documents per bulk request (default 1000 with a fixed --batch-bytes)
  --retries N        deprecated: caps attempts
  --dead-letter PATH where failed documents go (default espipe-deadletter.ndjson)
  --server-ids       let Elasticsearch pick the _id of documents without one (default: espipe
                     gives each a time-based id before the first send, so retries cannot
                     duplicate; with server ids a retry after a lost response can)
]] .. common.transform_usage .. "\n" .. common.job_usage .. "\n" .. common.index_setup_usage .. [[

  --url URL          cluster (default $ES_URL or http://127.0.0.1:9200)
  --quiet            no progress or summary    --json   summary as JSON on stdout
Input may be gzip or zstd compressed (detected from its first bytes).
Ctrl-C or SIGTERM stops reading; what was read is flushed and counted, and the checkpoint
written (exit 130/143).
A second one stops at once.]]

local spec = {
  index = "string", format = "string", index_pattern = "string", id_field = "string", op = "string",
  routing_field = "string", rate = "number", pipeline = "string",
  checkpoint = "string", presort = "boolean", shard_aware = "boolean", workers = "number",
  on_bad_line = "string", strict = "boolean", csv_types = "boolean", batch_bytes = "number",
  batch_docs = "number", concurrency = "number", retries = "number", dead_letter = "string",
  url = "string", quiet = "boolean", json = "boolean",
  max_line_bytes = "number", refresh = "boolean", allow_empty = "boolean", transform = "string",
}
for k, v in pairs(common.job_flags) do spec[k] = v end
for k, v in pairs(common.index_setup_flags) do spec[k] = v end
spec.server_ids = "boolean"

common.with_tls(spec)
usage = usage .. "\n" .. common.tls_usage

-- The options, checked: opts, input, job options | nil, exit status.
local function checked(argv)
  local opts, rest = args.parse(argv, spec)
  if not opts then return nil, common.usage_error("load", rest, usage) end
  if #rest ~= 1 then return nil, common.usage_error("load", "expected one input file (or -)", usage) end
  if not opts.index and not opts.index_pattern and opts.format ~= "bulk" and opts.format ~= "deadletter" then
    return nil, common.usage_error("load", "--index or --index-pattern is required", usage)
  end
  if opts.on_bad_line and opts.on_bad_line ~= "stop" and opts.on_bad_line ~= "skip" then
    return nil, common.usage_error("load", "--on-bad-line must be stop or skip", usage)
  end
  if opts.op and opts.op ~= "index" and opts.op ~= "create" then
    return nil, common.usage_error("load", "--op must be index or create", usage)
  end
  local w = opts.workers
  if w and (w < 1 or w % 1 ~= 0) then return nil, common.usage_error("load", "--workers must be a positive integer", usage) end
  if w and w > 1 and (opts.format == "csv" or opts.format == "bulk") then
    -- (a share cut at a line could lose the CSV header, or part an action from its source line)
    return nil, common.usage_error("load", "--workers takes NDJSON or a dead letter, not --format " .. opts.format, usage)
  end
  local job, jerr = common.job_options(opts)
  if not job then return nil, common.usage_error("load", jerr, usage) end
  if opts.transform and (opts.format == "bulk" or opts.format == "deadletter") then
    return nil, common.usage_error("load", "--transform is for --format ndjson and csv", usage)
  end
  if opts.transform and opts.checkpoint then
    return nil, common.usage_error("load", "--checkpoint cannot be kept with --transform (yet)", usage)
  end
  return opts, rest[1], job
end

-- A plain regular file (what --workers can cut into ranges).
local function plain_file(path)
  if not common.file_size(path) then return false end
  local f = io.open(path, "rb")
  local head = f and f:read(16) or ""
  if f then f:close() end
  return require("espipe.pipeline.codec").detect(head) == nil
end

-- A chunked load's worker reports its positions; its parent keeps the checkpoint.
local function report_positions(state)
  require("espipe.pipeline.worker_job").report { type = "checkpoint", offset = state.offset, counts = state.counts }
  return true
end

-- What espipe.pipeline.load.run is given; worker: the share a parent sent.
local function pipeline_options(opts, input, job, p, worker, transform)
  local url = opts.url or common.default_url()
  local scale = require "espipe.cli.scale"
  return {
    client = common.client(url, opts), input = worker and worker.stdin and "-" or input, index = opts.index,
    format = opts.format, index_pattern = opts.index_pattern, id_field = opts.id_field, op = opts.op,
    routing_field = opts.routing_field, rate = scale.share(opts.rate, worker), pipeline = opts.pipeline,
    on_bad_line = opts.on_bad_line, strict = opts.strict, csv_types = opts.csv_types,
    batch_bytes = job.batch_bytes, batch_docs = opts.batch_docs, concurrency = job.concurrency,
    max_concurrency = job.max_concurrency, max_batch_bytes = job.max_batch_bytes,
    retries = opts.retries, dead_letter = load_workers.path(opts.dead_letter or "espipe-deadletter.ndjson", worker),
    progress = p, max_line_bytes = opts.max_line_bytes, refresh = opts.refresh,
    allow_empty = opts.allow_empty or worker ~= nil, -- (the parent judges the whole job)
    trap_signals = true, presort = opts.presort,
    checkpoint = not (worker and worker.stdin) and load_workers.path(opts.checkpoint, worker) or nil,
    checkpoint_store = worker and worker.report_positions and report_positions or nil,
    shard_aware = opts.shard_aware, range = worker and worker.range or nil,
    retry_for = job.retry_for, max_errors = scale.share(job.max_errors, worker, true), stall_timeout = job.stall_timeout,
    server_ids = job.server_ids, transform = transform,
  }
end

-- A worker's end: its summary as a record for the parent.
local function report(summary, err)
  require("espipe.pipeline.worker_job").report { type = "summary", summary = summary,
    error = err and tostring(err) or nil, kind = type(err) == "table" and err.kind or nil }
  return require("espipe.cli.scale").exit_code(summary, err)
end

local function run_job(opts, input, job, p, worker, transform)
  if not worker and (opts.workers or 1) > 1 then
    local chunked = input == "-" or not plain_file(input)
    if input == "-" and opts.checkpoint then return false, "--checkpoint needs an input file (stdin cannot be resumed)" end
    local identity = { input = input }
    for k, v in pairs(opts) do identity[k] = identity[k] or v end
    return pcall(load_workers.run, { input = input, count = opts.workers, argv = opts.argv, progress = p,
      identity = require("espipe.pipeline.load_checkpoint").identity(identity),
      dead_letter = opts.dead_letter or "espipe-deadletter.ndjson", allow_empty = opts.allow_empty,
      checkpoint = opts.checkpoint, chunked = chunked, on_bad_line = opts.on_bad_line,
      max_line_bytes = opts.max_line_bytes })
  end
  return pcall(require("espipe.pipeline.load").run, pipeline_options(opts, input, job, p, worker, transform))
end

-- worker: the share of a parent's job (espipe.cli.worker), or nil
local function run(argv, worker)
  local opts, input, job = checked(argv)
  if not opts then return input end
  -- (with --workers the parent checks the file once; each worker loads it itself)
  local transform, terr = common.transform(opts.transform)
  if terr then return common.run_error("load", terr) end
  opts.argv = argv
  local url = opts.url or common.default_url()
  if not worker then -- (the parent set the destination up)
    local set, serr = common.index_setup(url, opts, opts.index, opts.index_pattern)
    if not set then return common.run_error("load", serr) end
  end
  local dead = opts.dead_letter or "espipe-deadletter.ndjson"
  local p = worker and require("espipe.pipeline.worker_job").progress() or common.progress("load", opts)
  p.total, p.unit = common.file_size(input), "bytes"
  local ok, summary, err, partial = run_job(opts, input, job, p, worker, transform)
  -- a raise is a wrong argument: say what, without the Lua source position
  if not ok then return common.run_error("load", summary, true) end
  if worker then return report(summary or partial or {}, err) end
  -- nothing ran (the input cannot be opened, a bad setting, ...): one line, exit 2
  if not summary and not partial then return common.run_error("load", err) end
  local s = summary or partial or {}
  if s.already_done then
    p:message("espipe load: checkpoint " .. opts.checkpoint .. " says this job is done: nothing was read"
      .. " (remove it to load the input again)")
  end
  if (s.bad_lines or 0) > 0 and opts.on_bad_line == "skip" then
    p:message("espipe load: " .. s.bad_lines .. " bad line(s) skipped into " .. dead .. ".input; the first: "
      .. s.first_bad_line)
  end
  local code = common.finish("load", p, s, err, { dead, dead .. ".input", dead .. ".transform" }, {
    indices = s.per_index, job = s.job, replay = common.replay_command(opts.url) })
  return interrupt.exit_code(s.interrupted) or code
end

return { summary = "bulk-load NDJSON, bulk or CSV files into an index", usage = usage, flags = spec, run = run }
