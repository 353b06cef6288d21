-- espipe export: an index (or a query's hits) to NDJSON, CSV or Parquet files.
local args = require "espipe.cli.args"
local common = require "espipe.cli.common"
local interrupt = require "espipe.pipeline.interrupt"

local usage = [[
usage: espipe export SRC --to DIR|FILE|- [options]

  SRC                http://host:9200/index, or an index name with --url
  --to DIR|FILE      a directory gets part-00000.<fmt> ... (rotated) and manifest.json;
                     a file name (with an extension) or - gets one file
  --format F         ndjson (default; the documents' _source) | csv | parquet
  --fields a,b.c     only these fields (CSV columns in this order, after _id)
  --query JSON       a query, e.g. '{"term":{"level":"error"}}'
  --file-bytes N     rotate files at about N bytes (default 64 MB; for Parquet, the
                     size of finished compressed files, within 10%)
  --compress C       gzip | zstd (NDJSON and CSV files)
  --codec C          Parquet page compression: snappy (default) | zstd | gzip | none
  --flatten          Parquet: flat leaf columns (host_name, arrays as JSON text)
                     instead of lists, structs and geo structs
  --rename f=g,...   Parquet: column name g for field f (a path, e.g. user.name=user_name)
  --row-group-bytes N  Parquet row group size, uncompressed (default 128 MB, capped by
                     --file-bytes): the memory a file in progress holds
  --partition-by P   Parquet: Hive partitions, e.g. 'dt={@timestamp:%Y-%m-%d}' (date
                     formats as load's --index-pattern) -> DIR/dt=2024-01-15/part-*.parquet
  --max-open-partitions N  partitions with a file open at once (default 16): one more
                     finishes the least recently used one's file
  --slices N         sliced scan (default 1)      --size N   hits per page (default 1000)
  --url URL          cluster (default $ES_URL or http://127.0.0.1:9200)
  --checkpoint FILE  record each completed file (and the scan's position and point in time);
                     rerunning the same command resumes: finished files are kept, the partial
                     one is written again, no row twice (needs --to DIR)
  --overwrite        replace an earlier export in DIR (without it a non-empty DIR is refused)
  --allow-empty      exit 0 even when no document was exported (default: exit 1)
  --rate N           at most N documents per second
  --timeout S        seconds per request (default 60)
  --dead-letter PATH documents the transform failed on go to PATH.transform
                     (default espipe-deadletter.ndjson)
  --max-errors N|P%  stop when the transform failed on more than N (or P percent of the)
                     documents (default: more than 1000, or all of the first 1000)
  --quiet / --json   as for load
]] .. common.transform_usage .. [[

Parquet columns: _id, then the index mapping's fields (inferred from the first
1000 documents when the mapping has none): objects as structs, fields the first
1000 documents hold as arrays (and nested fields) as lists. --to out.parquet
writes one file. Names are kept unless Athena/Glue cannot take them (a dot, one
of : , < > ` ", a case clash): renamed ones are printed and recorded in the
manifest and the files' metadata. A value that does not fit its column
is written as null and counted: the summary, --json and manifest.json list the
invalid and coerced values per column.

Ctrl-C or SIGTERM stops the scan: the file in progress is finished and recorded in the
checkpoint, no manifest.json is written (exit 130/143; rerun the same command to resume).
A second one stops at once.]]

local spec = {
  to = "string", format = "string", fields = "list", query = "string", file_bytes = "number",
  compress = "string", codec = "string", slices = "number", size = "number", url = "string", quiet = "boolean", json = "boolean",
  checkpoint = "string", overwrite = "boolean", allow_empty = "boolean", rate = "number",
  timeout = "number", transform = "string", dead_letter = "string", max_errors = "string",
  flatten = "boolean", rename = "list", row_group_bytes = "number", partition_by = "string",
  max_open_partitions = "number",
}
for k, v in pairs(require("espipe.cli.scale").flags) do spec[k] = v end
common.with_tls(spec)
usage = usage .. "\n" .. common.tls_usage .. "\n" .. require("espipe.cli.scale").usage

-- --rename a=b,c.d=e -> { a = "b", ["c.d"] = "e" }, or nil and the bad item
local function renames(list)
  if not list then return nil end
  local map = {}
  for _, item in ipairs(list) do
    local field, name = item:match("^([^=]+)=(.+)$")
    if not field then return nil, item end
    map[field] = name
  end
  return map
end

local function total(counts)
  local n = 0
  for _, v in pairs(counts) do n = n + v end
  return n
end

local function per_column(counts)
  local names = {}
  for k in pairs(counts) do names[#names + 1] = k end
  table.sort(names)
  for i, k in ipairs(names) do names[i] = k .. "=" .. counts[k] end
  return table.concat(names, " ")
end

-- --workers and --part: the plan, and for a worker its own directory and checkpoint
local function scaled(opts, worker, argv)
  local scale = require "espipe.cli.scale"
  local dir = require("espipe.pipeline.export.target").dir(opts)
  -- one file: one writer; Parquet: one schema, inferred once (explicit --workers N: one per worker)
  if not opts.workers and (not dir or opts.format == "parquet") then opts.workers = 1 end
  -- a transform's dead letter and error budget are one process's (not merged across workers)
  if opts.transform then
    if opts.workers and opts.workers > 1 then return nil, "--transform exports in one process (--workers 1)" end
    opts.workers = 1
  end
  local plan, perr = scale.plan(opts, worker)
  if not plan then return nil, perr end
  if opts.checkpoint and opts.checkpoint:match("^es:") then
    return nil, "export keeps its checkpoint in a file beside its files (es: checkpoints are for reindex)"
  end
  local s = { plan = plan, checkpoint = scale.path(opts.checkpoint, plan), to = opts.to, rate = scale.share(opts.rate, worker) }
  if worker then
    local on_workers = require "espipe.pipeline.export.on_workers"
    s.to, s.checkpoint = on_workers.worker_dir(dir, worker.index), on_workers.worker_checkpoint(s.checkpoint, worker.index)
  end
  s.workers = plan.pool and scale.workers("export", argv, plan) or nil
  return s
end

-- A worker's end: its counts as a record for the parent.
local function report(manifest, partial, err)
  local m = manifest or partial or {}
  require("espipe.pipeline.worker_job").report { type = "summary",
    summary = { rows = m.rows, bytes = m.bytes, files = type(m.files) == "table" and #m.files or m.files,
      interrupted = m.interrupted },
    error = err and tostring(err) or nil, kind = type(err) == "table" and err.kind or nil }
  return require("espipe.cli.scale").exit_code(m, err)
end

-- worker: the share of a parent's job (espipe.cli.worker), or nil
local function run(argv, worker)
  local opts, rest = args.parse(argv, spec)
  if not opts then return common.usage_error("export", rest, usage) end
  if #rest ~= 1 or not opts.to then return common.usage_error("export", "expected SRC and --to", usage) end
  local url, index = common.target(rest[1], opts.url)
  if not url then return common.usage_error("export", index, usage) end
  local query
  if opts.query then
    local qerr
    query, qerr = require("espipe.json").decode(opts.query)
    if type(query) ~= "table" then return common.usage_error("export", "--query is not a JSON object: " .. tostring(qerr), usage) end
  end
  if opts.codec and opts.format ~= "parquet" then
    return common.usage_error("export", "--codec is for --format parquet (use --compress for " .. (opts.format or "ndjson") .. ")", usage)
  end
  local rename, bad = renames(opts.rename)
  if bad then return common.usage_error("export", "--rename expects field=column, got '" .. bad .. "'", usage) end
  if (opts.flatten or rename or opts.row_group_bytes or opts.partition_by) and opts.format ~= "parquet" then
    return common.usage_error("export",
      "--flatten, --rename, --row-group-bytes and --partition-by are for --format parquet", usage)
  end
  if rename and opts.flatten then
    return common.usage_error("export", "--rename names nested fields; --flatten names its columns itself", usage)
  end
  local transform, terr = common.transform(opts.transform)
  if terr then return common.run_error("export", terr) end
  local max_errors
  if opts.max_errors then
    local merr
    max_errors, merr = require("espipe.pipeline.error_budget").parse_flag(opts.max_errors)
    if max_errors == nil then return common.usage_error("export", merr, usage) end
  end
  local sc, serr = scaled(opts, worker, argv)
  if not sc then return common.usage_error("export", serr, usage) end
  local p = worker and require("espipe.pipeline.worker_job").progress() or common.progress("export", opts)
  -- a worker that finished in an earlier run: its files wait for the others
  local done = worker and sc.checkpoint and require("espipe.pipeline.checkpoint").load(sc.checkpoint)
  if done and done.done then return report(done) end
  local ok, manifest, err, partial = pcall(require("espipe.pipeline.export").run, {
    client = common.client(url, opts), index = index, query = query, slices = sc.plan.slices, size = opts.size,
    to = sc.to, format = opts.format, file_bytes = opts.file_bytes, fields = opts.fields,
    compress = opts.compress, parquet_codec = opts.codec, source_url = url .. "/" .. index, progress = p,
    checkpoint = sc.checkpoint, overwrite = opts.overwrite, rate = sc.rate,
    own_slices = sc.plan.own_slices, workers = sc.workers,
    parquet_flatten = opts.flatten, parquet_rename = rename, row_group_bytes = opts.row_group_bytes,
    partition_by = opts.partition_by, max_open_partitions = opts.max_open_partitions,
    trap_signals = true, transform = transform, dead_letter = opts.dead_letter, max_errors = max_errors,
  })
  -- a worker tells its parent, which tells the user once
  if worker and not ok then return report(nil, nil, common.raised(manifest)) end
  if worker then return report(manifest, partial, err) end
  if not ok then return common.run_error("export", manifest, true) end
  -- nothing ran (the input cannot be opened, a bad setting, ...): one line, exit 2
  if not manifest and not partial then return common.run_error("export", err) end
  local summary = partial or {}
  if manifest then
    summary = { rows = manifest.rows, bytes = manifest.bytes, files = #manifest.files,
      already_done = manifest.already_done, restarted = manifest.restarted }
    if manifest.transform then
      local x = manifest.transform
      summary.dropped, summary.fanned_out, summary.transform_errors = x.dropped, x.fanned_out, x.failed
      summary.transform_dead_letter = x.dead_letter
    end
    if manifest.renamed and #manifest.renamed > 0 then
      local list = {}
      for i, r in ipairs(manifest.renamed) do list[i] = r.field .. " -> " .. r.column end
      summary.renamed = manifest.renamed
      p:message("espipe export: renamed for Athena/Glue: " .. table.concat(list, ", "))
    end
    if manifest.invalid then
      summary.invalid, summary.coerced = manifest.invalid, manifest.coerced
      summary.invalid_values, summary.coerced_values = total(manifest.invalid), total(manifest.coerced)
      if summary.invalid_values > 0 then
        -- never a silently wrong value: say which columns got nulls
        io.stderr:write("espipe export: ", summary.invalid_values, " value(s) did not fit their column and were written as null: ",
          per_column(manifest.invalid), "\n")
      end
    end
  end
  local code = common.finish("export", p, summary, err,
    { (opts.dead_letter or "espipe-deadletter.ndjson") .. ".transform" })
  if summary.interrupted then return interrupt.exit_code(summary.interrupted) end
  if code == 0 and manifest and manifest.rows == 0 and not opts.allow_empty then
    -- nothing exported is not a success unless asked for
    io.stderr:write("espipe export: 0 documents exported (the index or query matched none);",
      " --allow-empty accepts that\n")
    return 1
  end
  return code
end

return { summary = "export an index to NDJSON, CSV or Parquet files", usage = usage, flags = spec, run = run }
