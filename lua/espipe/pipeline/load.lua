-- Bulk load: NDJSON documents, bulk-format NDJSON (also a dead letter to
-- replay) or CSV, from a file or stdin, plain or gzip/zstd compressed.
--
--   load.run{ client =, input = PATH | "-", index = NAME, format = "ndjson"|"bulk"|"csv",
--             id_field =, index_pattern = "logs-{@timestamp:%Y.%m}", on_bad_line = "stop"|"skip",
--             strict = false, csv_types = false, dead_letter = PATH, op = "index"|"create",
--             batch_bytes =, batch_docs =, concurrency =, retries =, progress = p }
--     -> summary | nil, err, summary
--
-- Speed vs strictness (NDJSON): a line is passed to Elasticsearch as raw
-- bytes after a cheap check (first non-blank byte '{', last '}'); it is only
-- decoded when a field is needed (id_field, index_pattern) or with strict.
-- A line that passes the cheap check but is not JSON is then rejected by
-- Elasticsearch per item and lands in the indexer's dead letter.
-- CSV: a header row names the columns; cells stay strings unless csv_types
-- (JSON-number-looking cells become numbers, true/false booleans, empty
-- cells are left out).
-- Bad lines carry their line number (and byte offset): with "stop" the job
-- flushes what was accepted before the bad line and fails; with "skip" the
-- line goes to the dead letter (dead_letter path + ".input") and the job goes on.
local json = require "espipe.json"
local lines = require "espipe.pipeline.lines"
local csv = require "espipe.pipeline.csv"
local index_pattern = require "espipe.pipeline.index_pattern"
local deadletter = require "espipe.pipeline.deadletter"
local errors = require "espipe.errors"

local M = {}

local function looks_like_object(line)
  return line:find("^%s*{") ~= nil and line:find("}%s*$") ~= nil
end

local function is_blank(line) return line:find("^%s*$") ~= nil end

local function decode_object(line)
  local v, err = json.decode(line)
  if type(v) ~= "table" or json.is_array(v) then
    if v == nil then return nil, err and (err.message or tostring(err)) or "not JSON", err and err.offset end
    return nil, "not a JSON object"
  end
  return v
end

local BULK_ACTIONS = { index = true, create = true, update = true, delete = true }

-- The indexer's dead letter: {"action":{...},"source":{...},"status":..,"error":..}
local function replay_record(line)
  local rec, err = json.decode(line)
  if type(rec) ~= "table" or type(rec.action) ~= "table" then
    return nil, rec == nil and ("not JSON: " .. tostring(err and err.message or err)) or "not a dead-letter record (no action)"
  end
  local action = next(rec.action)
  if not BULK_ACTIONS[action] then return nil, "dead-letter record with an unknown action" end
  if action ~= "delete" and rec.source == nil then return nil, "dead-letter record without its source" end
  return json.encode(rec.action), rec.source ~= nil and json.encode(rec.source) or nil
end

function M.run(opts)
  if type(opts) ~= "table" or not opts.client then error("load.run: opts.client is required", 2) end
  local format = opts.format or "ndjson"
  if format ~= "ndjson" and format ~= "bulk" and format ~= "csv" and format ~= "deadletter" then
    error("load.run: format must be ndjson, bulk, csv or deadletter, got " .. tostring(format), 2)
  end
  if format ~= "bulk" and format ~= "deadletter" and not opts.index and not opts.index_pattern then
    error("load.run: opts.index or opts.index_pattern is required", 2)
  end
  local on_bad = opts.on_bad_line or "stop"
  local name_of = opts.index_pattern and index_pattern.compile(opts.index_pattern)
  local op = opts.op or "index"

  local reader, rerr = lines.open(opts.input or "-", { chunk = opts.read_bytes })
  if not reader then return nil, rerr end

  local ix = opts.client:bulk_indexer {
    index = opts.index, batch_docs = opts.batch_docs, batch_bytes = opts.batch_bytes,
    concurrency = opts.concurrency, retries = opts.retries, dead_letter = opts.dead_letter,
    retry_for = opts.retry_for, max_errors = opts.max_errors, stall_timeout = opts.stall_timeout,
    server_ids = opts.server_ids, error_budget = opts.error_budget,
  }
  local bad_dl = deadletter.new((opts.dead_letter or "espipe-deadletter.ndjson") .. ".input")
  local summary = { read = 0, bad_lines = 0 }
  local failure

  local function bad(lineno, offset, why, raw)
    summary.bad_lines = summary.bad_lines + 1
    local e = errors.new { kind = "input", message = (opts.input or "stdin") .. ": " .. why, line = lineno, offset = offset }
    if on_bad == "skip" then
      bad_dl:write { line = lineno, offset = offset, error = why, raw = raw }
      return true
    end
    failure = e
    return false
  end

  local function add(action, source, meta)
    local ok, err
    if action == "raw" then ok, err = ix:raw(meta, source)
    elseif action == "index" then ok, err = ix:index(source, meta)
    elseif action == "create" then ok, err = ix:create(source, meta)
    elseif action == "update" then ok, err = ix:update(source, meta)
    else ok, err = ix:delete(meta) end
    if ok == nil and err then failure = err return false end
    summary.read = summary.read + 1
    if opts.progress and summary.read % 1000 == 0 then
      local s = ix:stats_now()
      opts.progress:update { done = s.ok or summary.read, retries = s.retried, failed = s.failed }
    end
    return true
  end

  local function meta_for(doc, lineno, offset)
    local meta = {}
    if name_of then
      local name, nerr = name_of(doc)
      if not name then return nil, tostring(nerr) end
      meta._index = name
    elseif opts.index then
      meta._index = opts.index
    end
    if opts.id_field then
      local id = doc[opts.id_field]
      if id == nil or id == json.null then return nil, "missing id field " .. opts.id_field end
      if type(id) ~= "string" and type(id) ~= "number" then return nil, "id field " .. opts.id_field .. " is not a string or number" end
      meta._id = id
    end
    return meta
  end

  if format == "ndjson" then
    local need_doc = opts.id_field or name_of or opts.strict
    for line, lineno, offset in reader:iter() do
      if not is_blank(line) then
        local meta, source = nil, line
        if not looks_like_object(line) then
          if not bad(lineno, offset, "not a JSON object", line) then break end
        elseif need_doc then
          local doc, why, at = decode_object(line)
          if doc then
            local merr
            meta, merr = meta_for(doc, lineno, offset)
            if not meta then
              if not bad(lineno, offset, merr, line) then break end
            end
          else
            if not bad(lineno, at and offset + at - 1 or offset, why, line) then break end
          end
        else
          meta = { _index = opts.index }
        end
        if meta and not add(op, source, meta) then break end
      end
    end
  elseif format == "bulk" then
    local pending -- action, meta waiting for its source line
    for line, lineno, offset in reader:iter() do
      if not is_blank(line) then
        if pending then
          if not looks_like_object(line) then
            if not bad(lineno, offset, "bulk source line is not a JSON object", line) then break end
          elseif not add("raw", line, pending.line) then
            break
          end
          pending = nil
        else
          local v, why = decode_object(line)
          local action = v and next(v)
          if not v or not BULK_ACTIONS[action] or next(v, action) ~= nil or type(v[action]) ~= "table" then
            if not bad(lineno, offset, v and "expected a bulk action line {\"index\"|\"create\"|\"update\"|\"delete\": {...}}" or ("action line: " .. tostring(why)), line) then break end
          else
            if action == "delete" then
              if not add("raw", nil, line) then break end
            else
              pending = { action = action, line = line }
            end
          end
        end
      end
    end
    if pending and not failure then bad(reader.lineno, reader.offset, "bulk action line without its source line") end
  elseif format == "deadletter" then
    for line, lineno, offset in reader:iter() do
      if not is_blank(line) then
        local action, source = replay_record(line)
        if not action then
          if not bad(lineno, offset, source, line) then break end
        elseif not add("raw", source, action) then
          break
        end
      end
    end
  else -- csv
    local header, herr = csv.read(reader)
    if not header then
      failure = herr or errors.new { kind = "input", message = "CSV input has no header row", line = 1 }
    else
      while true do
        local fields, lineno, offset = csv.read(reader)
        if not fields then
          -- lineno holds the parser's error, if any; a reader error ends the loop below
          if not lineno or reader.error then break end
          if not bad(lineno.line, lineno.offset, lineno.message) then break end
        elseif #fields == 1 and fields[1] == "" and #header > 1 then
          -- a blank line
        elseif #fields ~= #header then
          if not bad(lineno, offset, "expected " .. #header .. " fields, found " .. #fields) then break end
        else
          local doc = {}
          for i, name in ipairs(header) do
            local v = fields[i]
            if opts.csv_types then v = csv.typed(v) end
            doc[name] = v
          end
          local meta, merr = meta_for(doc, lineno, offset)
          if not meta then
            if not bad(lineno, offset, merr) then break end
          elseif not add(op, doc, meta) then
            break
          end
        end
      end
    end
  end
  if not failure and reader.error then failure = reader.error end
  reader:close()
  bad_dl:close()

  -- flush what was accepted, also when stopping on a bad line
  local stats, ierr = ix:close()
  failure = failure or ierr -- systemic, stalled, error budget spent
  for k, v in pairs(stats) do summary[k] = v end
  if bad_dl.count > 0 then summary.bad_lines_file = bad_dl.path end
  if failure then return nil, failure, summary end
  return summary
end

return M
