-- Bulk load: NDJSON documents, bulk-format NDJSON (also a dead letter to
-- replay) or CSV, from a file or stdin, plain or gzip/zstd compressed.
--
--   load.run{ client =, input = PATH | "-", index = NAME, format = "ndjson"|"bulk"|"csv"|"deadletter",
--             id_field =, routing_field =, index_pattern = "logs-{@timestamp:%Y.%m}",
--             on_bad_line = "stop"|"skip", rate = docs/s, pipeline = NAME (ingest pipeline),
--             strict = false, csv_types = false, dead_letter = PATH, op = "index"|"create",
--             max_line_bytes = 100 MiB, refresh = true, allow_empty = false,
--             trap_signals = false, batch_bytes =, batch_docs =, concurrency =, retries =,
--             checkpoint = PATH, checkpoint_interval = 1 (s), presort = false, shard_aware = false,
--             range = { start =, stop = } (bytes of a plain file: a worker's share),
--             checkpoint_store = fn(state) -> true | nil, err (instead of a file: the
--               positions of an input read from its start go there; a worker's, for its parent),
--             progress = p, transform = fn | { batch = fn, size = } (espipe.pipeline.transform) }
--     -> summary | nil, err, summary
-- An unknown option key raises, naming the nearest valid one.
--
-- Speed vs strictness (NDJSON): a line is passed to Elasticsearch as raw
-- bytes after a cheap check (first non-blank byte '{', last '}'); it is only
-- checked as JSON when a field is needed (id_field, index_pattern) or with
-- strict. A line that passes the cheap check but is not JSON is then
-- rejected by Elasticsearch per item and lands in the indexer's dead letter.
-- The lines are split, checked and appended to the bulk request in C
-- (csrc/bulk_lines.c: fields read off the text, no decode); a line the C
-- path does not take (a bad line, or anything unusual) goes the Lua way
-- below, which decodes it and decides. load.c_lines = false sends every
-- line the Lua way (the reference the C path is checked against).
-- CSV: a header row names the columns; cells stay strings unless csv_types
-- (JSON-number-looking cells become numbers, true/false booleans, empty
-- cells are left out).
-- Bad lines (not a JSON object, invalid UTF-8, longer than max_line_bytes,
-- no id field, ...) carry their line number and byte offset: with "stop"
-- the job flushes what was accepted before the bad line and fails; with
-- "skip" the line goes to the dead letter (dead_letter path + ".input", the
-- raw bytes in base64, see espipe.pipeline.deadletter) and the job goes on.
-- Replaying a dead letter (format "deadletter") counts a bad-line record as
-- unreplayable (it is input, not a document) and fails the job at the end.
--
-- Nothing accepted is lost on any exit path: an error raised while reading
-- (a dead letter that cannot be written, ...) and, with trap_signals, a
-- SIGINT/SIGTERM end the reading; what was handed to the indexer is then
-- flushed and counted before run returns (summary.interrupted names the
-- signal). At the end the destination is refreshed (refresh = false skips
-- it), so a search right after the load sees every document; a load that
-- indexed nothing fails unless allow_empty.
--
-- With transform (NDJSON and CSV): every document is decoded and goes
-- through it (from = { line =, offset = }); id_field, routing_field and
-- index_pattern read the transformed document; its own _id, _index and
-- _routing win. What the transform raised on goes to dead_letter ..
-- ".transform" (summary.transform_errors) against the error budget;
-- summary.dropped and summary.fanned_out count the rest (pipeline/load_transform).
--
-- checkpoint = PATH (a file input): where every line before a position is
-- indexed or dead-lettered, that position and the counts at it are saved
-- (espipe.pipeline.load_checkpoint); a rerun of the same job resumes there
-- exactly (compressed input is decompressed and skipped up to it), and its
-- summary.job holds the whole job's counts beside this run's. Without an
-- id_field, the documents re-sent after a kill -9 get new ids (duplicates).
-- presort = true holds shards x batch_docs documents at a time, ordered by
-- destination shard, and sends each shard's in requests of their own
-- (espipe.pipeline.shard_window; the index must exist, documents need their
-- _id or routing: id_field / routing_field); shard_aware = true sends each
-- document to the node holding its shard (it too needs id_field).
local json = require "espipe.json"
local core = require "espipe.core"
local lines = require "espipe.pipeline.lines"
local csv = require "espipe.pipeline.csv"
local index_pattern = require "espipe.pipeline.index_pattern"
local deadletter = require "espipe.pipeline.deadletter"
local errors = require "espipe.client.errors"
local options = require "espipe.client.options"
local load_transform = require "espipe.pipeline.load_transform"
local load_checkpoint = require "espipe.pipeline.load_checkpoint"
local shard_window = require "espipe.pipeline.shard_window"

local utf8_invalid = core.utf8_invalid
local bulk_lines_new, bulk_lines_append = core.bulk_lines_new, core.bulk_lines_append

local M = {}
M.c_lines = true

local KNOWN = { "client", "input", "index", "format", "id_field", "routing_field", "rate", "pipeline",
  "index_pattern", "on_bad_line",
  "strict", "csv_types", "dead_letter", "op", "batch_bytes", "batch_docs", "concurrency", "retries",
  "progress", "read_bytes", "max_line_bytes", "refresh", "allow_empty", "trap_signals",
  "retry_for", "max_errors", "stall_timeout", "server_ids", "error_budget", "backoff",
  "max_concurrency", "max_batch_bytes", "transform", "checkpoint", "checkpoint_interval", "presort",
  "shard_aware", "range", "checkpoint_store" }
local FORMATS = { ndjson = true, bulk = true, csv = true, deadletter = true }
local BULK_ACTIONS = { index = true, create = true, update = true, delete = true }
local DEFAULT_DEAD = "espipe-deadletter.ndjson"
local BULK_EXPECTED = 'expected a bulk action line {"index"|"create"|"update"|"delete": {...}}'

-- (blanks around as the bulk builder allows them: spaces and tabs)
local function looks_like_object(line)
  return line:find("^[ \t]*{") ~= nil and line:find("}[ \t]*$") ~= nil
end

local function is_blank(line) return line:find("^%s*$") ~= nil end

-- doc | nil, why, byte of the line where it went wrong
local function decode_object(line)
  local v, err = json.decode(line)
  if type(v) ~= "table" or json.is_array(v) then
    if v == nil then return nil, err and tostring(err) or "not JSON", err and err.offset end
    return nil, "not a JSON object"
  end
  return v
end

----------------------------------------------------------------------------
-- The job: its reader, indexer, bad-line dead letter and counts

local Job = {}
Job.__index = Job

-- A bad input line. at: the byte of the line where it went wrong (1-based),
-- when known. Returns true to go on (skip), false to stop.
function Job:bad(lineno, offset, why, raw, at, bytes)
  local s = self.summary
  s.bad_lines = s.bad_lines + 1
  local e = errors.new { kind = "input", message = self.name .. ": " .. why:gsub(" at byte %d+$", ""),
                         line = lineno, offset = at and offset + at - 1 or offset }
  if not s.first_bad_line then s.first_bad_line = tostring(e) end
  if self.on_bad == "skip" then
    local ok, err = self.bad_dl:add(deadletter.bad_line(lineno, offset, why, raw, bytes))
    if ok then self:mark() return true end
    self.failure = err -- the record cannot be kept: the job stops, what it accepted is flushed
    return false
  end
  self.failure = e
  return false
end

-- A line the reader could not hold (over max_line_bytes).
function Job:too_long(lineno, offset, err)
  return self:bad(lineno, offset, "line longer than " .. self.reader.max_line .. " bytes (--max-line-bytes)",
    nil, nil, err.bytes)
end

function Job:add(action, source, meta, index)
  local ix, ck = self.ix, self.ck
  local ok, err
  if ck and action ~= "raw" then meta.token = ck.page end
  if action == "raw" then ok, err = ix:raw(meta, source, ck and ck.page)
  elseif self.window and (action == "index" or action == "create") then ok, err = self.window:add(action, source, meta)
  elseif action == "index" then ok, err = ix:index(source, meta)
  elseif action == "create" then ok, err = ix:create(source, meta)
  elseif action == "update" then ok, err = ix:update(source, meta)
  elseif action == "delete" then ok, err = ix:delete(meta)
  else error("espipe.load: no such bulk action " .. tostring(action), 2) end
  if ok == nil and err then self.failure = err return false end
  if ck then ck:added(1) end
  local target = index or self.opts.index
  if target then self.indices[target] = (self.indices[target] or 0) + 1 end
  self:counted(1)
  return not self.failure -- (a checkpoint that cannot be written stops the job)
end

-- The input may be resumed from where the reader is (checkpoint).
function Job:mark()
  local ck = self.ck
  if ck then ck:mark(self.reader.offset, self.reader.lineno, self.summary) end
end

-- A resumed job reads on from its checkpoint's position, a range from its
-- start: false if it cannot.
function Job:resume_input()
  local range = self.opts.range
  local start = self.ck and self.ck.start or range and { offset = range.start, line = 0 }
  if not start then return true end
  if range and self.reader.compression then
    self.failure = errors.new { kind = "input", message = self.name .. ": a byte range of compressed input" }
    return false
  end
  local ok, err = self.reader:skip_to(start.offset, start.line)
  if not ok then self.failure = err end
  return ok
end

-- n more documents handed to the indexer; progress every 1000.
function Job:counted(n)
  local s = self.summary
  local before = s.read
  s.read = before + n
  self:mark()
  if self.progress and (s.read - s.read % 1000) > before then
    local st, r = self.ix:stats_now(), self.reader
    local from = self.opts.range and self.opts.range.start or 0 -- (a worker's range: its share only)
    local raw = r.f:seek("cur") -- (nil on a pipe)
    -- position: compressed bytes read (the file's size is the total); bytes: input read
    self.progress:update { done = st.ok or s.read, retries = st.retried, failed = st.failed, tuning = st.tuning,
                           bytes = r.offset - from, position = raw and raw - from }
  end
  if self.opts.rate then self:keep_rate() end
end

-- With rate: wait while the documents read are ahead of rate x time, as
-- reindex's --rate does; in quarter seconds, so a signal ends the wait.
function Job:keep_rate()
  local client, rate, stop = self.opts.client, self.opts.rate, self.reader.stop
  local ahead = self.summary.read / rate - (client:now() - self.started)
  while ahead > 0 and not (stop and stop()) do
    client:sleep(math.min(ahead, 0.25))
    ahead = self.summary.read / rate - (client:now() - self.started)
  end
end

-- The value of an id or routing field, as the bulk builder takes it: a
-- non-empty string or an integer; else nil and why.
local function key_value(doc, field, what)
  local v = doc[field]
  if v == nil or v == json.null then return nil, "missing " .. what .. " field " .. field end
  if type(v) ~= "string" and type(v) ~= "number" then
    return nil, what .. " field " .. field .. " is not a string or number"
  end
  if v == "" then return nil, "empty " .. what .. " field " .. field end
  if type(v) == "number" and (v ~= math.floor(v) or v < -2 ^ 63 or v >= 2 ^ 63) then
    return nil, what .. " field " .. field .. " is a number but not an integer: " .. tostring(v)
  end
  return v
end

-- have: what is known already (a transformed document's own _id, _index, routing).
function Job:meta_for(doc, have)
  local meta = have or {}
  if meta._index ~= nil then -- luacheck: ignore 542
  elseif self.name_of then
    local name, nerr = self.name_of(doc)
    if not name then return nil, nerr.message .. (nerr.field and (" (field " .. nerr.field .. ")") or "") end
    meta._index = name
  elseif self.opts.index then
    meta._index = self.opts.index
  end
  for _, f in ipairs(self.key_fields) do
    if meta[f[1]] == nil then
      local v, why = key_value(doc, f[2], f[3])
      if v == nil then return nil, why end
      meta[f[1]] = v
    end
  end
  return meta
end

-- One line of the input the Lua way: blank ones left out, an over-long one
-- (line == false) to Job:too_long, the rest to each(line, lineno, offset).
-- Returns false to stop.
function Job:one_line(each, line, lineno, offset, err)
  if line == false then return self:too_long(lineno, offset, err) end
  if is_blank(line) then return true end
  return each(line, lineno, offset)
end

-- Every line of the input; each(line, lineno, offset) returns false to stop.
function Job:each_line(each)
  for line, lineno, offset, err in self.reader:iter() do
    if not self:one_line(each, line, lineno, offset, err) then return end
  end
end

----------------------------------------------------------------------------
-- Formats

local read = {}

local function ndjson_line(job, line, lineno, offset)
  local opts = job.opts
  local op = opts.op or "index"
  if not looks_like_object(line) then return job:bad(lineno, offset, "not a JSON object", line) end
  local cr = line:find("\r", 1, true)
  if cr then
    return job:bad(lineno, offset, "carriage return (\\r) inside the line at byte " .. cr, line, cr)
  end
  if job.xform then
    local doc, why, at = decode_object(line)
    if not doc then return job:bad(lineno, offset, why, line, at) end
    return job.xform:take(doc, lineno, offset)
  end
  if not (opts.id_field or opts.routing_field or job.name_of or opts.strict) then
    local at = utf8_invalid(line)
    if at then return job:bad(lineno, offset, "invalid UTF-8 at byte " .. at, line, at) end
    return job:add(op, line, { _index = opts.index }) -- opts.index is in job.indices already
  end
  local doc, why, at = decode_object(line)
  if not doc then return job:bad(lineno, offset, why, line, at) end
  local meta, merr = job:meta_for(doc)
  if not meta then return job:bad(lineno, offset, merr, line) end
  return job:add(op, line, meta, meta._index)
end

-- The C appender for this job's NDJSON, or nil when its lines go the Lua way.
local function c_appender(job)
  local opts = job.opts
  if not M.c_lines or job.xform or job.window or (opts.op ~= nil and opts.op ~= "index" and opts.op ~= "create") then
    return nil
  end
  return bulk_lines_new { op = opts.op, index = opts.index, id_field = opts.id_field, routing_field = opts.routing_field,
                          pattern = job.pattern_pieces, check = opts.strict and "json" or "object",
                          max_line = job.reader.max_line }
end

-- The whole lines buffered, through the C appender: true to go on, false
-- when the job must stop, "lua" when the indexer takes documents one by one.
function Job:c_lines(appender)
  local buf, pos = self.reader:buffered()
  while pos <= #buf do
    local next_pos, n, docs, stop
    if self.ck then
      next_pos, n, docs, stop = self.ix:fill_token(self.ck.page, bulk_lines_append, appender, buf, pos, self.indices)
    else
      next_pos, n, docs, stop = self.ix:fill(bulk_lines_append, appender, buf, pos, self.indices)
    end
    if next_pos == false then return "lua" end
    if next_pos == nil then self.failure = n return false end -- the indexer stopped
    if self.ck then self.ck:added(docs) end
    self.reader:consumed(next_pos, n)
    if not self.pattern_pieces and self.opts.index then -- (a pattern's indices are counted in C)
      self.indices[self.opts.index] = (self.indices[self.opts.index] or 0) + docs
    end
    self:counted(docs)
    if self.failure then return false end
    if stop == "memory" then error(errors.new { kind = "internal", message = "out of memory building a bulk request" }) end
    if stop ~= "full" then return true end
    pos = next_pos
  end
  return true
end

function read.ndjson(job)
  if not job:resume_input() then return end
  local each = function(line, lineno, offset) return ndjson_line(job, line, lineno, offset) end
  local appender = c_appender(job)
  if not appender then return job:each_line(each) end
  local reader = job.reader
  while true do
    local go = job:c_lines(appender)
    if go == "lua" then return job:each_line(each) end
    if not go then return end
    -- the line the C path left, or the one spanning the buffer's end
    local line, lineno, offset, err = reader:next()
    if line == nil or not job:one_line(each, line, lineno, offset, err) then return end
  end
end

function read.bulk(job)
  if not job:resume_input() then return end
  local pending -- the action line waiting for its source line
  job:each_line(function(line, lineno, offset)
    if pending then
      local p = pending
      pending = nil
      if not looks_like_object(line) then
        return job:bad(lineno, offset, "bulk source line is not a JSON object", line)
      end
      local at = utf8_invalid(line)
      if at then return job:bad(lineno, offset, "invalid UTF-8 at byte " .. at, line, at) end
      return job:add("raw", line, p.line, p.index)
    end
    local v, why, at = decode_object(line)
    local action = v and next(v)
    if not v or not BULK_ACTIONS[action] or next(v, action) ~= nil or type(v[action]) ~= "table" then
      return job:bad(lineno, offset, v and BULK_EXPECTED or ("action line: " .. tostring(why)), line, at)
    end
    local index = v[action]._index or job.opts.index
    if action == "delete" then return job:add("raw", nil, line, index) end
    pending = { line = line, index = index }
    return true
  end)
  if pending and not job.failure and not job.reader.stopped then
    job:bad(job.reader.lineno, job.reader.offset, "bulk action line without its source line")
  end
end

-- A record of the indexer's dead letter: {"action":{...},"source":{...},...}
local function replay_record(rec)
  if type(rec) ~= "table" or type(rec.action) ~= "table" then return nil, "not a dead-letter record (no action)" end
  local action = next(rec.action)
  if not BULK_ACTIONS[action] then return nil, "dead-letter record with an unknown action" end
  if action ~= "delete" and rec.source == nil then return nil, "dead-letter record without its source" end
  local meta = rec.action[action]
  return json.encode(rec.action), rec.source ~= nil and json.encode(rec.source) or nil,
    type(meta) == "table" and meta._index or nil
end

function read.deadletter(job)
  local s = job.summary
  if not job:resume_input() then return end
  job:each_line(function(line, lineno, offset)
    local rec, err = json.decode(line)
    if rec == nil then return job:bad(lineno, offset, "not JSON: " .. tostring(err), line, err and err.offset) end
    if deadletter.is_bad_line(rec) then
      -- input that never was a document: cannot be replayed, only counted
      s.unreplayable = s.unreplayable + 1
      s.first_unreplayable = s.first_unreplayable or ("line " .. lineno .. " (line " .. tostring(rec.line)
        .. " of the original input: " .. tostring(rec.error) .. ")")
      job:mark()
      return true
    end
    local action, source, index = replay_record(rec)
    if not action then return job:bad(lineno, offset, source, line) end
    return job:add("raw", source, action, index or job.opts.index)
  end)
end

-- A CSV row as the dead letter keeps it: its cells re-encoded as one CSV
-- record (quoting may differ from the input's, the cells do not).
local function row_text(fields)
  return (csv.encode_row(fields):gsub("\n$", ""))
end

function read.csv(job)
  local opts, reader = job.opts, job.reader
  local header, herr = csv.read(reader)
  if not header then
    job.failure = herr or errors.new { kind = "input", message = "CSV input has no header row", line = 1 }
    return
  end
  -- (with a transform, the fields are the transformed document's)
  local missing = not job.xform and (index_pattern.fields_missing(job.pattern_fields or {}, header)
    or (opts.id_field and index_pattern.fields_missing({ opts.id_field }, header))
    or (opts.routing_field and index_pattern.fields_missing({ opts.routing_field }, header)))
  if missing then
    job.failure = errors.new { kind = "input", line = 1, message = job.name .. ": the CSV header has no column '"
      .. missing .. "' (columns: " .. table.concat(header, ", ") .. ")" }
    return
  end
  if not job:resume_input() then return end
  local op = opts.op or "index"
  while true do
    local fields, lineno, offset = csv.read(reader)
    if not fields then
      -- lineno holds the parser's error, if any; a reader error ends the loop
      if not lineno or reader.error then return end
      local err = lineno
      local go_on
      if err.bytes then go_on = job:too_long(err.line, err.offset, err)
      else go_on = job:bad(err.line, err.offset, err.message) end
      if not go_on then return end
    elseif #fields == 1 and fields[1] == "" and #header > 1 then -- luacheck: ignore 542
      -- a blank line
    elseif #fields ~= #header then
      if not job:bad(lineno, offset, "expected " .. #header .. " fields, found " .. #fields, row_text(fields)) then
        return
      end
    else
      local doc, why = {}, nil
      for i, name in ipairs(header) do
        local v = fields[i]
        local at = utf8_invalid(v)
        if at then why = "invalid UTF-8 in column " .. name .. " at byte " .. at .. " of the cell" break end
        if opts.csv_types then v = csv.typed(v) end
        doc[name] = v
      end
      local meta, merr
      if why then merr = why elseif job.xform then meta = true else meta, merr = job:meta_for(doc) end
      if not meta then
        if not job:bad(lineno, offset, merr, row_text(fields)) then return end
      elseif job.xform then
        if not job.xform:take(doc, lineno, offset) then return end
      elseif not job:add(op, doc, meta, meta._index) then
        return
      end
    end
  end
end

----------------------------------------------------------------------------
-- Running and ending

-- checkpoint, presort and shard_aware: what they need (level 4: the caller of run).
local function check_checkpoint_and_sort(opts, format)
  if opts.checkpoint ~= nil then
    if type(opts.checkpoint) ~= "string" or opts.checkpoint == "" then
      error("espipe.load: checkpoint must be a file path", 4)
    end
    if opts.input == nil or opts.input == "-" or io.type(opts.input) then
      error("espipe.load: checkpoint needs an input file (stdin cannot be resumed)", 4)
    end
  end
  if opts.checkpoint_store ~= nil and type(opts.checkpoint_store) ~= "function" then
    error("espipe.load: checkpoint_store must be a function(state)", 4)
  end
  if opts.presort and (not opts.index or opts.index_pattern or format == "bulk" or format == "deadletter") then
    error("espipe.load: presort needs one destination index (index, not index_pattern; not the bulk formats)", 4)
  end
  if (opts.presort or opts.shard_aware) and not (opts.id_field or opts.routing_field) then
    error("espipe.load: " .. (opts.presort and "presort" or "shard_aware")
      .. " needs each document's _id or routing as it is read: id_field or routing_field", 4)
  end
end

local function check(opts)
  if type(opts) ~= "table" then error("espipe.load expects an options table, got " .. type(opts), 3) end
  options.check(opts, KNOWN, "espipe.load", 2)
  if not opts.client then error("espipe.load: opts.client is required", 3) end
  local format = opts.format or "ndjson"
  if not FORMATS[format] then
    error("espipe.load: format must be ndjson, bulk, csv or deadletter, got " .. tostring(format), 3)
  end
  if opts.transform ~= nil then
    if format == "bulk" or format == "deadletter" then
      error("espipe.load: transform is for the ndjson and csv formats", 3)
    end
    require("espipe.pipeline.transform").new(opts.transform, 4)
    -- a checkpoint position says every line before it is settled; documents a
    -- batch transform still holds, or fanned out from one line, would break that
    if opts.checkpoint or opts.checkpoint_store then
      error("espipe.load: a checkpoint cannot be kept with a transform (yet); run without one of them", 3)
    end
  end
  if format ~= "bulk" and format ~= "deadletter" and not opts.index and not opts.index_pattern then
    error("espipe.load: opts.index or opts.index_pattern is required", 3)
  end
  local on_bad = opts.on_bad_line or "stop"
  if on_bad ~= "stop" and on_bad ~= "skip" then error("espipe.load: on_bad_line must be stop or skip", 3) end
  if opts.op ~= nil and opts.op ~= "index" and opts.op ~= "create" then
    error("espipe.load: op must be index or create, not " .. tostring(opts.op), 3)
  end
  local m = opts.max_line_bytes
  if m ~= nil and (type(m) ~= "number" or m < 1) then
    error("espipe.load: max_line_bytes must be a positive number", 3)
  end
  if opts.rate ~= nil and (type(opts.rate) ~= "number" or opts.rate ~= opts.rate or opts.rate <= 0) then
    error("espipe.load: rate must be a positive number (documents per second)", 3)
  end
  for _, k in ipairs { "id_field", "routing_field", "pipeline" } do
    if opts[k] ~= nil and (type(opts[k]) ~= "string" or opts[k] == "") then
      error("espipe.load: " .. k .. " must be a non-empty string", 3)
    end
  end
  check_checkpoint_and_sort(opts, format)
  local dead = opts.dead_letter or DEFAULT_DEAD
  if opts.input and (opts.input == dead or opts.input == dead .. ".input") then
    error("espipe.load: the input " .. opts.input .. " is also where this job's dead letter goes;"
      .. " pass another dead_letter", 3)
  end
  return format, on_bad, dead
end

-- The indices written to, refreshed in groups so the URL stays short.
local function refresh(client, indices)
  local names = {}
  for name in pairs(indices) do names[#names + 1] = name end
  table.sort(names)
  for i = 1, #names, 50 do
    local group = {}
    for j = i, math.min(i + 49, #names) do group[#group + 1] = names[j] end
    local ok, err = client:refresh { index = group, ignore_unavailable = true }
    if not ok then return nil, err end
  end
  return true
end

-- Flush what was accepted, refresh, and decide the outcome.
function Job:finish(raised)
  local s, opts = self.summary, self.opts
  if raised ~= nil and not self.failure then
    self.failure = errors.is(raised) and raised or errors.new { kind = "internal", message = tostring(raised) }
  end
  local r = self.reader
  if r.stopped then
    s.interrupted = r.stopped
    self.failure = self.failure or errors.new { kind = "interrupted", line = r.lineno, offset = r.offset,
      message = "interrupted by " .. r.stopped .. " after " .. s.read .. " documents; what was read is flushed, "
        .. (opts.checkpoint and ("checkpoint saved to " .. opts.checkpoint .. " (rerun the same command to resume)")
            or "input stops") }
  elseif r.error and not self.failure then
    self.failure = r.error
  end
  r:close()
  self.bad_dl:close()
  if self.window then
    local wok, werr = self.window:flush()
    if not wok then self.failure = self.failure or werr end
  end
  if self.xform then self.xform:close(s) end
  local ok, stats, ierr = pcall(self.ix.close, self.ix)
  if not ok then
    self.failure = self.failure or stats
    stats = self.ix.final or self.ix:stats_now()
  else
    self.failure = self.failure or ierr -- systemic, stalled, error budget spent
  end
  for k, v in pairs(stats) do s[k] = v end
  self:save_checkpoint()
  if self.bad_dl.count > 0 then s.bad_lines_file = self.bad_dl.path end
  s.per_index = self.indices -- documents sent to each index
  if opts.refresh ~= false and (s.ok or 0) > 0 then
    local rok, rerr = refresh(opts.client, self.indices)
    if not rok then
      self.failure = self.failure or errors.new { kind = "refresh",
        message = "refresh after the load failed: " .. tostring(rerr) }
    end
  end
  if not self.failure and s.unreplayable > 0 then
    self.failure = errors.new { kind = "input", message = s.unreplayable .. " record(s) of " .. self.name
      .. " are bad input lines, not documents, and cannot be replayed; the first: " .. s.first_unreplayable
      .. ". Fix the line (raw_base64) and load it again" }
  end
  local whole = s.job or s
  if not self.failure and (whole.ok or 0) == 0 and not opts.allow_empty and whole.unreplayable == 0 then
    local n = whole.read + whole.bad_lines
    self.failure = errors.new { kind = "empty", message = n > 0 and ("indexed 0 of " .. n .. " documents")
      or ("indexed 0 documents: " .. self.name .. " holds none") .. " (allow_empty / --allow-empty accepts that)" }
  end
  if self.failure then return nil, self.failure, s end
  return s
end

-- Everything the indexer took has settled (or never will: unsent): the
-- checkpoint moves over every page that did, and is written; a resumed
-- job's summary gets the whole job's counts (summary.job).
function Job:save_checkpoint()
  local ck, s = self.ck, self.summary
  if not ck then return end
  ck:seal()
  local ok, err = ck:save(not self.failure)
  if not ok then self.failure = self.failure or err end
  s.checkpoint = self.opts.checkpoint
  s.resumed = ck.start ~= nil
  if ck.start then s.job = ck:whole(s) end
end

-- The checkpoint of this job (nil without opts.checkpoint), before anything is read.
local function open_checkpoint(opts)
  if opts.checkpoint_store then
    return load_checkpoint.reporting(opts.checkpoint_store, opts.client:now(), opts.checkpoint_interval)
  end
  if not opts.checkpoint then return nil end
  return load_checkpoint.open(opts.checkpoint, load_checkpoint.identity(opts), opts.input, opts.client:now(),
    opts.checkpoint_interval)
end

-- The summary of a job its checkpoint says is done: nothing is read again.
local function already_done(ck)
  return { read = 0, ok = 0, failed = 0, bad_lines = 0, unreplayable = 0, already_done = true, resumed = true,
           job = ck:counts(), checkpoint = ck.path }
end

-- The indexer's presort parameters: the destination's shards (presort).
local function presort_params(opts)
  if not opts.presort then return nil end
  local resp, gerr = opts.client.indices:get_settings { index = opts.index }
  local params, why = require("espipe.pipeline.presort").params_from_settings(resp, opts.index)
  if params then return params end
  return nil, gerr or errors.new { kind = "config", message = "presort: " .. tostring(why) }
end

-- The meta keys taken from document fields: { meta key, field, what }.
local function key_fields(opts)
  local out = {}
  if opts.id_field then out[#out + 1] = { "_id", opts.id_field, "id" } end
  if opts.routing_field then out[#out + 1] = { "routing", opts.routing_field, "routing" } end
  return out
end

-- The destination's release, read up front, and the `_type` a 6.x one wants
-- (of opts.index; a pattern's indices get "_doc"). -> type | nil, nil | nil, err
-- A systemic failure (refused, 401/403, TLS) is left to the indexer, whose
-- first request meets it again and stops the job with every line accounted
-- (read, unsent) as for any systemic failure.
local function destination_type(opts)
  local versions = require "espipe.pipeline.versions"
  local policy = require("espipe.client.retry").new({ retry_for = opts.retry_for }, 2)
  local ok, err = versions.read(policy, opts.client)
  if not ok and err.kind == "systemic" then return nil, nil end
  if not ok then return nil, err end
  local setup = require("espipe.pipeline.setup").new(opts.client, policy)
  return versions.doc_type(setup, opts.index)
end

function M.run(opts)
  local format, on_bad, dead = check(opts)
  local ck, ckerr = open_checkpoint(opts)
  if ckerr then return nil, ckerr end
  if ck and ck.done then return already_done(ck) end
  local presort, perr = presort_params(opts)
  if perr then return nil, perr end
  local name_of, pattern_fields, pattern_pieces
  if opts.index_pattern then
    name_of, pattern_fields, pattern_pieces = index_pattern.compile(opts.index_pattern, 3)
  end
  local doc_type, verr = destination_type(opts)
  if verr then return nil, verr end
  local trap = opts.trap_signals
  local input = opts.input or "-"
  -- trapped before the input is opened: opening a FIFO and the first read may wait
  if trap then core.signals_trap(input == "-" and io.stdin or nil) end
  local reader, rerr = lines.open(input, { chunk = opts.read_bytes, max_line = opts.max_line_bytes,
                                           stop_at = opts.range and opts.range.stop,
                                           stop = trap and core.signals_received or nil })
  if not reader then
    local sig = trap and core.signals_received()
    if trap then core.signals_restore() end
    if sig then -- the open of a FIFO waited, and was interrupted
      local err = errors.new { kind = "interrupted",
                               message = "interrupted by " .. sig .. " before the input was opened" }
      return nil, err, { read = 0, interrupted = sig }
    end
    return nil, rerr
  end
  if trap then core.signals_watch(reader.f) end
  local job = setmetatable({
    opts = opts, on_bad = on_bad, name_of = name_of, pattern_fields = pattern_fields,
    pattern_pieces = pattern_pieces, key_fields = key_fields(opts),
    name = opts.input == nil and "stdin" or opts.input == "-" and "stdin" or opts.input,
    reader = reader, progress = opts.progress, indices = opts.index and { [opts.index] = 0 } or {},
    bad_dl = deadletter.new(dead .. ".input"),
    summary = { read = 0, bad_lines = 0, unreplayable = 0 }, started = opts.rate and opts.client:now(), ck = ck,
  }, Job)
  local ix_err -- the indexer could not start (its dead letter cannot be opened)
  local ok, raised = pcall(function()
    job.ix, ix_err = opts.client:bulk_indexer {
      index = opts.index, batch_docs = opts.batch_docs, batch_bytes = opts.batch_bytes,
      concurrency = opts.concurrency, retries = opts.retries, dead_letter = dead,
      retry_for = opts.retry_for, max_errors = opts.max_errors, stall_timeout = opts.stall_timeout,
      server_ids = opts.server_ids, error_budget = opts.error_budget, backoff = opts.backoff,
      max_concurrency = opts.max_concurrency, max_batch_bytes = opts.max_batch_bytes,
      pipeline = opts.pipeline, doc_type = doc_type, shard_aware = opts.shard_aware,
      on_batch = ck and function(b)
        local sok, serr = ck:on_batch(b, opts.client:now())
        if not sok then job.failure = job.failure or serr end
      end,
    }
    if job.ix and presort then job.window = shard_window.new(job.ix, presort, presort.shards * (opts.batch_docs or 1000)) end
    if job.ix then
      job.xform = opts.transform and load_transform.new(job, opts.transform, dead .. ".transform")
      read[format](job)
      -- what was read before a bad line that stops the job is still indexed
      if job.xform and (not job.failure or job.failure.kind == "input") then job.xform:flush() end
    end
  end)
  if not job.ix then
    if trap then core.signals_restore() end
    reader:close()
    if ix_err then return nil, ix_err end -- nothing was read: no summary, as for an input that cannot be opened
    error(raised, 0) -- the indexer refused its options: a wrong argument
  end
  local fok, summary, err, partial = pcall(job.finish, job, not ok and raised or nil)
  if trap then core.signals_restore() end
  if not fok then error(summary, 0) end
  return summary, err, partial
end

return M
