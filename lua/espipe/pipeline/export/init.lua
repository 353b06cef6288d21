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
--               max_open_partitions = 16, trap_signals = false }
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
--
-- NDJSON rows are the documents' _source (re-encoded by the exact codec:
-- integers, [] and null survive; key order is kept by the dev server's
-- decoder only as far as espipe.json keeps it). CSV: an "_id" column, then
-- `fields` or, when not given, the dotted columns of the first page's
-- documents (objects flattened, arrays as JSON text); values of columns not
-- in the header are counted in manifest.dropped_columns.
--
-- Parquet: an "_id" column, then the index mapping's fields (or the first
-- `infer_docs` documents' when the mapping has none, e.g. dynamic: false),
-- `fields` selecting among them: nested (objects as STRUCTs, fields the first
-- documents hold as arrays and `nested` as LISTs, geo_point struct<lat,lon>;
-- espipe.parquet.tree) or with parquet_flatten the flat leaf columns of
-- espipe.parquet.schema. to = "x.parquet" writes that one file. partition_by
-- (a pattern as load's index_pattern) writes DIR/dt=2024-01-15/part-*.parquet
-- (Hive style: Athena and DuckDB prune on it), from decoded hits; see
-- espipe.pipeline.export.parquet_sink. When the columns come from the
-- mapping, each page goes to the writer as the bytes the server sent
-- (client:scan raw_pages, w:write_page: columns read hit._source.<path> in C,
-- no Lua table per document; the position write_page returns is handed back
-- to the scan, so each page is parsed once); inferred columns need the first documents
-- decoded, so that case writes decoded hits (w:write_rows).
-- A file is finished when the bytes in it plus the row group still buffered,
-- scaled by the compression ratio seen so far, reach file_bytes (default 64 MiB).
-- Values that do not fit their column are written as null and counted per
-- column (manifest.invalid, and per file); values converted the way
-- Elasticsearch coerces them are counted in manifest.coerced.
local json = require "espipe.json"
local csv = require "espipe.pipeline.csv"
local writer_mod = require "espipe.pipeline.writer"
local errors = require "espipe.errors"
local checkpoint = require "espipe.pipeline.checkpoint"
local setup_mod = require "espipe.pipeline.setup"
local retry = require "espipe.client.retry"
local options = require "espipe.options"
local interrupt = require "espipe.pipeline.interrupt"

local M = {}

local function pick(doc, fields)
  local out = {}
  for _, f in ipairs(fields) do
    local v = doc[f]
    if v == nil then
      v = doc
      for part in f:gmatch("[^%.]+") do
        if type(v) ~= "table" then v = nil break end
        v = v[part]
      end
    end
    if v ~= nil then out[f] = v end
  end
  return out
end

local function config_error(msg)
  return nil, errors.new { kind = "config", message = msg }
end

-- The Parquet layout: nested fields (espipe.parquet.tree: lists, structs,
-- geo points, maps; arrays seen in a sample of documents) or, with
-- parquet_flatten, flat leaf columns (espipe.parquet.schema).
local function layout(parquet, opts)
  if opts.parquet_flatten then return parquet.schema end
  return require "espipe.parquet.tree"
end

-- The first documents of the export's query: where the nested layout sees arrays.
local function sample_docs(client, opts)
  local resp, err = client:search { index = opts.index,
    body = { size = math.min(opts.infer_docs or 1000, 1000), query = opts.query } }
  if not resp then return nil, err end
  local docs = {}
  for _, hit in ipairs(type(resp.hits) == "table" and resp.hits.hits or {}) do
    if type(hit._source) == "table" then docs[#docs + 1] = hit._source end
  end
  return docs
end

-- Columns of the hits' _source from the mapping response; nil (and no error)
-- when the mapping names no fields at all, so the caller infers them.
local function mapping_columns(parquet, client, opts, policy)
  local mapping, err = setup_mod.new(client, policy):get(opts.index, "_mapping")
  if not mapping then return nil, err end
  local schema = layout(parquet, opts)
  local want = { prefix = "_source", meta = { "_id" },
    rename = not opts.parquet_flatten and opts.parquet_rename or nil }
  if #schema.from_mapping(mapping, want) == #want.meta then return false end
  if not opts.parquet_flatten then
    want.sample, err = sample_docs(client, opts)
    if not want.sample then return nil, err end
  end
  want.fields = opts.fields
  local columns = schema.from_mapping(mapping, want)
  if #columns == #want.meta then
    return config_error("none of the fields " .. table.concat(opts.fields, ",")
      .. " is in the mapping of " .. opts.index)
  end
  return columns
end

local function inferred_columns(parquet, pages, opts)
  local docs = {}
  for _, page in ipairs(pages) do
    for _, hit in ipairs(page.hits) do docs[#docs + 1] = hit._source end
  end
  local columns = layout(parquet, opts).infer(docs,
    { prefix = "_source", meta = { "_id" }, fields = opts.fields, sample = not opts.parquet_flatten and docs or #docs,
      rename = not opts.parquet_flatten and opts.parquet_rename or nil })
  if #columns == 1 then
    return config_error("no fields to export: the mapping of " .. opts.index .. " has none and the first "
      .. #docs .. " documents have none" .. (opts.fields and (" of " .. table.concat(opts.fields, ",")) or ""))
  end
  return columns
end

local parquet_sink = require "espipe.pipeline.export.parquet_sink"

local function add_counts(into, counts)
  for col, n in pairs(counts or {}) do into[col] = (into[col] or 0) + n end
end

local function is_dir_target(to, opts)
  if to == "-" then return false end
  -- Parquet: a directory of part files, unless the target names one .parquet file
  if opts.format == "parquet" then return not to:find("%.parquet$") end
  if to:sub(-1) == "/" or opts.file_bytes then return true end
  local f = io.open(to .. "/.")
  if f then f:close() return true end
  return not to:find("%.[%w]+$") -- "out" is a directory, "out.ndjson" a file
end

local KNOWN = { "client", "index", "query", "slices", "size", "keep_alive", "to", "format", "file_bytes",
  "fields", "compress", "source_url", "progress", "parquet_codec", "infer_docs", "checkpoint", "overwrite",
  "rate", "retry_for", "parquet_flatten", "parquet_rename", "row_group_bytes", "partition_by",
  "max_open_partitions", "trap_signals" }

-- The checkpoint of an earlier run (nil: none), after the directory is ready.
local function prepare_target(dir, opts)
  local saved
  if opts.checkpoint then
    local lerr
    saved, lerr = checkpoint.load(opts.checkpoint)
    if lerr then return nil, lerr end
  end
  if not dir then
    if opts.checkpoint then return config_error("--checkpoint needs a directory target (--to DIR)") end
    return false
  end
  local ignore = {}
  if opts.checkpoint then
    local base = opts.checkpoint:match("([^/]+)$")
    ignore[base], ignore[base .. ".tmp"] = true, true
  end
  local keep
  if saved and not saved.done then
    keep = {}
    for _, f in ipairs(saved.files or {}) do keep[f.name] = true end
  end
  local ok, err = require("espipe.pipeline.export_dir").prepare(dir, { overwrite = opts.overwrite, keep = keep,
    ignore = ignore })
  if not ok then return nil, err end
  return saved or false
end

-- Why an interrupted export stopped, and how it goes on.
local function interrupted_error(sig, done, dir, opts)
  local resume = opts.checkpoint and ("checkpoint saved to " .. opts.checkpoint
    .. " (rerun the same command to resume)")
    or dir and ("the files in " .. dir .. " are complete but there is no manifest.json;"
      .. " without --checkpoint a rerun needs --overwrite and starts over")
    or opts.to == "-" and "they are on stdout"
    or (opts.to .. " holds them (a single file cannot be resumed)")
  return interrupt.error(sig, done, "documents", resume)
end

function M.run(opts)
  if type(opts) ~= "table" or not opts.client or not opts.index or not opts.to then
    error("export.run: client, index and to are required", 2)
  end
  options.check(opts, KNOWN, "espipe.export", 2)
  local format = opts.format or "ndjson"
  if format ~= "ndjson" and format ~= "csv" and format ~= "parquet" then
    error("export.run: format must be ndjson, csv or parquet, got " .. tostring(format), 2)
  end
  local codecs = { none = true, snappy = true, zstd = true, gzip = true }
  if opts.parquet_codec ~= nil and not codecs[opts.parquet_codec] then
    error("export.run: parquet_codec must be none, snappy, zstd or gzip, got " .. tostring(opts.parquet_codec), 2)
  end
  if opts.infer_docs ~= nil and (type(opts.infer_docs) ~= "number" or opts.infer_docs < 1) then
    error("export.run: infer_docs must be a positive number", 2)
  end
  -- the options are checked: run again with SIGINT/SIGTERM trapped
  if opts.trap_signals and not interrupt.active() then return interrupt.run(true, M.run, opts) end
  local client, fields = opts.client, opts.fields
  local dir = is_dir_target(opts.to, opts) and opts.to:gsub("/$", "") or nil

  local policy = retry.new({ retry_for = opts.retry_for }, 2)
  local parquet, columns_pq
  if format == "parquet" then
    local ok, mod = pcall(require, "espipe.parquet")
    if not ok then return config_error("Parquet export needs espipe.parquet: " .. tostring(mod)) end
    if not dir and opts.partition_by then
      return config_error("--partition-by writes partition directories; " .. opts.to .. " is one file")
    end
    if opts.partition_by and opts.checkpoint then
      return config_error("--partition-by cannot resume from a checkpoint yet")
    end
    if not dir and opts.file_bytes then
      return config_error("--file-bytes rotates part files in a directory; " .. opts.to .. " is one file")
    end
    parquet = mod
    local cols, err = mapping_columns(parquet, client, opts, policy)
    if cols == nil then return nil, err end
    columns_pq = cols or nil -- false: the mapping has no fields; infer from documents
  end

  local saved, serr = prepare_target(dir, opts)
  if saved == nil then return nil, serr end
  if saved and saved.done then
    return { already_done = true, rows = saved.rows, bytes = saved.bytes, files = saved.files or {} }
  end
  local total, cerr = setup_mod.new(client, policy):count(opts.index, opts.query)
  if not total then return nil, cerr end
  if opts.progress then opts.progress.total = total end

  local function open_scan(resume, pit_id)
    return client:scan(opts.index, opts.query,
      { slices = opts.slices or 1, size = opts.size or 1000, keep_alive = opts.keep_alive or "5m",
        resume = resume, pit_id = pit_id, keep_pit = opts.checkpoint and true or nil, retry = policy,
        -- whole documents to NDJSON: the server's bytes, never decoded
        raw_source = format == "ndjson" and not fields,
        -- Parquet with the mapping's columns: pages stay bytes until the writer reads them
        raw_pages = format == "parquet" and columns_pq ~= nil and not opts.partition_by,
        -- ... and each is parsed once, by the writer, which reports its position
        advance = true })
  end
  local scan = open_scan(saved and saved.positions or nil, saved and saved.pit_id or nil)
  local first, ferr = scan:next_page()
  if first == nil and ferr then return nil, ferr end
  local restarted = false
  if saved and scan.restarted then
    -- the saved PIT is gone: part files mix the slices, so everything again
    scan:close()
    for _, f in ipairs(saved.files or {}) do os.remove(dir .. "/" .. f.name) end
    saved, restarted = false, true
    scan = open_scan()
    first, ferr = scan:next_page()
    if first == nil and ferr then return nil, ferr end
  end

  -- CSV columns: from the first page, or the earlier run's
  local columns, dropped = saved and saved.columns or nil, {}
  -- checkpoint: each completed file, with the positions of the pages it holds
  local parts
  local inferred  -- columns inferred from documents: kept in the checkpoint, so a resume writes the same
  local releasing -- held pages being written: handed out, not all in files yet
  local ck_failure
  local ck_state = { files = {}, rows = 0, bytes = 0, positions = {} }
  local function save_checkpoint(w, done)
    if releasing then return true end
    ck_state.files, ck_state.rows, ck_state.bytes, ck_state.index = w.files, w.rows, w.bytes, w.index
    ck_state.part_index, ck_state.columns = parts and parts.index or nil, columns
    ck_state.parquet_columns = inferred and columns_pq or nil
    ck_state.positions, ck_state.pit_id, ck_state.done = scan:positions(), scan.pit_id, done or nil
    local ok, err = checkpoint.save(opts.checkpoint, ck_state)
    if not ok then ck_failure = ck_failure or err end
    return true
  end

  local w = writer_mod.new { dir = dir, file = not dir and opts.to or nil, format = format,
    ext = format, file_bytes = opts.file_bytes, compress = opts.compress,
    header = format == "csv" and function()
      local cols = { "_id" }
      for _, c in ipairs(columns or fields or {}) do cols[#cols + 1] = c end
      return csv.encode_row(cols)
    end or nil,
    on_file = opts.checkpoint and save_checkpoint or nil,
    resume = saved and { files = saved.files, index = saved.index } or nil }
  parts = parquet and parquet_sink.new(parquet, dir, w, opts)
  if parts and saved then
    parts.index = saved.part_index or 0
    for _, f in ipairs(saved.files or {}) do
      add_counts(parts.invalid, f.invalid)
      add_counts(parts.coerced, f.coerced)
    end
  end
  -- pages held back until infer_docs documents show what the columns are
  local held, held_docs, infer_docs = {}, 0, opts.infer_docs or 1000
  if saved and saved.parquet_columns then
    columns_pq, inferred, held = saved.parquet_columns, true, nil
  end

  local function write_parquet(hits)
    if #hits == 0 then return true end
    return parts.write(columns_pq, hits)
  end

  local function release_held()
    if held_docs > 0 then
      local cols, err = inferred_columns(parquet, held, opts)
      if not cols then return nil, err end
      columns_pq = cols
    end
    -- the held pages are all handed out, not all written yet: no checkpoint
    -- until they are (a file finished meanwhile is recorded with the next one)
    releasing, inferred = true, columns_pq ~= nil
    for _, page in ipairs(held) do
      local ok, err = write_parquet(page.hits)
      if not ok then return nil, err end
    end
    held, releasing = nil, false
    return true
  end

  local done, failure = 0, nil
  local function each_page(page)
    if page.body then
      if page.waiting and parts.is_open() then
        -- read once: the writer's reading gives the scan its next position
        local pos, err = parts.write_page(columns_pq, page.body)
        if not pos then failure = err return false end
        local aok, aerr = scan:advance(page, pos)
        if not aok then failure = aerr return false end
      else
        -- no file open: learn the hit count first, so an empty page opens none
        local aok, aerr = scan:advance(page)
        if not aok then failure = aerr return false end
        if page.n > 0 then
          local pos, err = parts.write_page(columns_pq, page.body)
          if not pos then failure = err return false end
        end
      end
      local ok, err = parts.rotate_if_full()
      if not ok then failure = err return false end
      done = done + page.n
      if opts.progress then opts.progress:update { done = done } end
      return true
    end
    local hits = page.hits
    if format == "ndjson" then
      local buf = {}
      for i, hit in ipairs(hits) do
        local src = hit._source
        if type(src) == "string" then
          buf[i] = src
        else
          buf[i] = json.encode(fields and pick(src, fields) or src)
        end
      end
      if #buf > 0 then
        local ok, err = w:write(table.concat(buf, "\n") .. "\n", #buf)
        if not ok then failure = err return false end
      end
    elseif format == "csv" then
      if not columns and #hits > 0 then
        if fields then
          columns = fields
        else
          local seen = {}
          columns = {}
          for _, hit in ipairs(hits) do
            for k in pairs(csv.flatten(hit._source, json)) do
              if not seen[k] then seen[k] = true; columns[#columns + 1] = k end
            end
          end
          table.sort(columns)
        end
      end
      local buf = {}
      for i, hit in ipairs(hits) do
        local flat = csv.flatten(hit._source, json)
        local row = { tostring(hit._id) }
        for c, name in ipairs(columns) do row[c + 1] = flat[name]; flat[name] = nil end
        for k in pairs(flat) do dropped[k] = (dropped[k] or 0) + 1 end
        buf[i] = csv.encode_row(row, #columns + 1)
      end
      if #buf > 0 then
        local ok, err = w:write(table.concat(buf), #buf)
        if not ok then failure = err return false end
      end
    elseif not columns_pq then
      held[#held + 1] = page
      held_docs = held_docs + #hits
      if held_docs >= infer_docs then
        local ok, err = release_held()
        if not ok then failure = err return false end
      end
    else
      local ok, err = write_parquet(hits)
      if not ok then failure = err return false end
    end
    done = done + #hits
    if opts.progress then opts.progress:update { done = done } end
    return true
  end
  local started = client:now()
  local function paced()
    if ck_failure then failure = ck_failure return false end
    if opts.rate and opts.rate > 0 then
      local ahead = done / opts.rate - (client:now() - started)
      if ahead > 0 then interrupt.sleep(client, ahead) end
    end
    return true
  end
  local interrupted
  local pok, perr = pcall(function()
    local page, err = first, nil
    while page do
      if not (each_page(page) and paced()) then return end
      -- Ctrl-C / SIGTERM: no more pages; the file in progress is finished below
      interrupted = interrupt.received()
      if interrupted then return end
      page, err = scan:next_page()
    end
    failure = failure or err
  end)
  if not pok then failure = failure or perr end
  scan:close()
  local partial = interrupted and { interrupted = interrupted }
  if interrupted and not failure then
    -- every page taken is written: the file in progress is finished and
    -- renamed like any other, and checkpointed; no manifest (not complete)
    local ok, err = true, nil
    if parts and held then ok, err = release_held() end
    if ok and parts then ok, err = parts.finish_file() end
    if ok then ok, err = w:close_current() end
    if ok and opts.checkpoint then save_checkpoint(w) end
    if ok and ck_failure then ok, err = nil, ck_failure end
    partial.rows, partial.bytes, partial.files = w.rows, w.bytes, #w.files
    if ok then return nil, interrupted_error(interrupted, done, dir, opts), partial end
    failure = err
  end

  if not failure and parts then
    local ok, err = true, nil
    if held then ok, err = release_held() end
    if ok then ok, err = parts.finish_file() end
    if not ok then failure = err end
  end
  if failure then
    w:abort()
    if parts then parts.abort() end
    return nil, failure, partial
  end
  local extra = { source = require("espipe.client.url").redact(opts.source_url) or opts.index, index = opts.index,
    query = opts.query or json.null, total = w.rows }
  if columns then extra.columns = columns end
  if next(dropped) then extra.dropped_columns = dropped end
  if parts then
    extra.compression = opts.parquet_codec or "snappy"
    extra.invalid, extra.coerced = parts.invalid, parts.coerced
    local cols, sql_type = {}, layout(parquet, opts).type_string
    for i, c in ipairs(columns_pq or {}) do
      cols[i] = { name = c.name, field = c.field, type = c.type, es_type = c.es_type,
        sql_type = sql_type and sql_type(c) or nil }
    end
    extra.columns = json.array(cols)
    extra.renamed = json.array(require("espipe.parquet.names").renamed(columns_pq))
    if parts.partitions then extra.partitions = json.array(parts.partitions) end
  end
  if restarted then extra.restarted = true end
  local manifest, merr = w:close(extra)
  if manifest and opts.checkpoint then
    save_checkpoint(w, true)
    if ck_failure then return nil, ck_failure end
  end
  if not manifest then return nil, merr end
  return manifest
end

return M
