-- What the reindex/load/export commands share: where the cluster is, the
-- client, progress, and how a job's outcome becomes an exit status.
local M = {}

M.default_url = function() return os.getenv("ES_URL") or "http://127.0.0.1:9200" end

-- "http://host:9200/index" -> "http://host:9200", "index";
-- "index" -> base_url (or ES_URL or the default), "index".
function M.target(s, base_url)
  local url, index = s:match("^(https?://[^/]+)/([^/?#]+)/?$")
  if url then return url, index end
  if s:find("^https?://") then return nil, "a URL needs the index as its path: " .. s end
  return (base_url or M.default_url()):gsub("/$", ""), s
end

-- TLS flags of every command that talks to a cluster.
M.tls_spec = { ca_file = "string", cert = "string", key = "string", insecure = "boolean" }
M.tls_usage = [[
  --ca-file FILE      trust the CA certificates (PEM) in FILE, e.g. an Elasticsearch 8 http_ca.crt
                     (default as curl: $CURL_CA_BUNDLE, $SSL_CERT_DIR, $SSL_CERT_FILE, the system's)
  --cert FILE --key FILE   client certificate and its private key (PEM)
  --insecure         do not verify the server's certificate (prints a warning)]]

-- spec + the TLS flags (the usage gets M.tls_usage)
function M.with_tls(spec)
  for k, v in pairs(M.tls_spec) do spec[k] = v end
  return spec
end

-- The TLS flags again, as arguments for another espipe (the --tune-dest watchdog).
function M.tls_args(opts)
  local out = {}
  for _, k in ipairs { "ca_file", "cert", "key" } do
    if opts[k] then out[#out + 1] = "--" .. k:gsub("_", "-") .. "=" .. opts[k] end
  end
  if opts.insecure then out[#out + 1] = "--insecure" end
  return out
end

-- The client's tls table from the parsed flags (nil when none was given).
function M.tls(opts)
  if not opts or not (opts.ca_file or opts.cert or opts.key or opts.insecure) then return nil end
  return { ca_file = opts.ca_file, cert = opts.cert, key = opts.key, insecure = opts.insecure or nil }
end

-- opts.timeout: seconds per request (--timeout); opts.ca_file, ... (TLS flags)
function M.client(url, opts)
  -- the transport must allow as many requests in flight as the indexer may use
  local most = opts and (tonumber(opts.concurrency) or opts.max_concurrency or 16)
  return require("espipe.client").new { hosts = { url }, timeout = opts and opts.timeout, tls = M.tls(opts),
                                         max_inflight = most and math.max(8, most) }
end

-- The requests of a one-shot command (count, indices): what can succeed
-- later is retried for 30 s, like a job's setup requests.
function M.setup(url, opts)
  local policy = require("espipe.client.retry").new { retry_for = 30 }
  return require("espipe.pipeline.setup").new(M.client(url, opts), policy)
end

-- --create-index / --update-mapping / --template: the flags, their usage,
-- and their setup before a job (nil, message when it cannot be done).
M.index_setup_flags = { create_index = "string", update_mapping = "boolean", template = "string" }
M.index_setup_usage = [[
  --create-index FILE  settings and mappings (JSON) for the destination: created when missing,
                     its mapping compared when present (a difference is an error); with
                     a load by date pattern, an index template gives each month index it
  --update-mapping   put the file's mapping on an existing index whose mapping differs
  --template FILE    install FILE as an index template (named after the file) first]]
function M.index_setup(url, opts, index, pattern)
  if not (opts.create_index or opts.template) then return true end
  return require("espipe.cli.index_setup").apply(M.setup(url, opts), { index = index, pattern = pattern,
    create_index = opts.create_index, update_mapping = opts.update_mapping, template = opts.template })
end

-- The job options the load and reindex commands share (--retry-for,
-- --max-errors, --timeout, --stall-timeout), checked; nil, message on a bad value.
M.job_flags = { retry_for = "number", max_errors = "string", stall_timeout = "number", timeout = "number",
                concurrency = "string", batch_bytes = "string", max_concurrency = "number",
                max_batch_bytes = "number" }
M.job_usage = [[
  --retry-for S      retry what can succeed later (429, 503, 5xx, resets, timeouts, a node
                     restarting) for S seconds per batch (default 600)
  --max-errors N|P%  stop when more than N (or P percent of the) documents failed (default:
                     more than 1000, or all of the first 1000); the first error is shown
  --timeout S        seconds per request (default 60)
  --stall-timeout S  stop when nothing but timeouts came back for S seconds (default 300)
  --concurrency auto|N  bulk requests in flight: auto (default) adapts to the cluster's
                     round-trip times and rejections; N pins it   --max-concurrency N (16)
  --batch-bytes auto|N  bytes per bulk request: auto (default) climbs towards the best
                     docs/s between 1 MB and --max-batch-bytes N (20 MB); N pins it]]
function M.job_options(opts)
  local out = { retry_for = opts.retry_for, stall_timeout = opts.stall_timeout, timeout = opts.timeout,
                server_ids = opts.server_ids }
  for _, k in ipairs{ "retry_for", "stall_timeout", "timeout" } do
    if out[k] ~= nil and (out[k] < 0 or (k ~= "retry_for" and out[k] == 0)) then
      return nil, "--" .. k:gsub("_", "-") .. " must be a positive number of seconds"
    end
  end
  for _, k in ipairs{ "concurrency", "batch_bytes" } do
    local v = opts[k] or "auto"
    if v ~= "auto" then
      v = tonumber(v)
      if not v or v < 1 or v ~= math.floor(v) then
        return nil, "--" .. k:gsub("_", "-") .. " must be auto or a positive integer, got " .. tostring(opts[k])
      end
    end
    out[k] = v
  end
  for _, k in ipairs{ "max_concurrency", "max_batch_bytes" } do
    local v = opts[k]
    if v ~= nil and (v < 1 or v ~= math.floor(v)) then
      return nil, "--" .. k:gsub("_", "-") .. " must be a positive integer"
    end
    out[k] = v
  end
  if opts.max_errors ~= nil then
    local v, err = require("espipe.pipeline.error_budget").parse_flag(opts.max_errors)
    if v == nil then return nil, err end
    out.max_errors = v
  end
  return out
end

function M.progress(label, opts)
  local p = require("espipe.pipeline.progress").new { label = label, quiet = opts.quiet }
  p.json = opts.json
  return p
end

-- The size of a regular file (nil for stdin, a FIFO, ...): the total of a load's progress.
function M.file_size(path)
  if path == "-" then return nil end
  -- not opened unless regular: opening a FIFO waits for its writer
  local ok, how, code = os.execute("test -f '" .. path:gsub("'", "'\\''") .. "'")
  if not (ok == 0 or (ok == true and how == "exit" and code == 0)) then return nil end
  local f = io.open(path, "rb")
  if not f then return nil end
  local size = f:seek("end")
  f:close()
  return size and size > 0 and size or nil
end

-- What replays a dead letter: "espipe load --format deadletter PATH [--url URL]"
-- (the URL without its credentials: a summary is never a place for a password).
function M.replay_command(url)
  url = url and require("espipe.client.url").redact(url)
  return function(path)
    if path:find("%.input$") then return nil end -- bad input lines: fixed by hand, not replayed
    return "espipe load --format deadletter " .. path .. (url and (" --url " .. url) or "") .. "   (to replay)"
  end
end

-- The dead-letter files of a job that hold something.
local function written(paths)
  local where = {}
  for _, path in ipairs(paths or {}) do
    local f = io.open(path, "rb")
    if f then
      if f:seek("end") > 0 then where[#where + 1] = path end
      f:close()
    end
  end
  return where
end

local function verdict(summary, err)
  if summary.interrupted then return "interrupted by " .. summary.interrupted end
  if err then return "stopped" end
  return "done"
end

-- Prints the summary (--json: also as JSON on stdout) and returns the exit
-- status: 0, 1 when anything failed or was dead-lettered (naming where it
-- went), 2 when the job could not run (systemic: the cluster cannot be used).
-- ctx: espipe.cli.summary's (indices, replay, job); ctx.dead: the dead-letter paths to look at.
function M.finish(name, p, summary, err, dead_paths, ctx)
  local json = require "espipe.json"
  summary = summary or {}
  ctx = ctx or {}
  if err then summary.error = tostring(err) end
  summary.elapsed = summary.elapsed or p:elapsed()
  local failed = (summary.failed or 0) + (summary.bad_lines or 0) + (summary.transform_errors or 0)
  -- systemic: one line and exit 2, no summary of a job that never ran
  local systemic = type(err) == "table" and err.kind == "systemic"
  if p.json then
    io.stdout:write(json.encode(summary), "\n")
    io.stdout:flush()
  end
  local where = failed > 0 and written(dead_paths) or {}
  if not p.quiet and not systemic then
    local whole = ctx.job or summary
    p:complete { done = whole.ok or whole.rows, retries = summary.retried,
                 failed = summary.failed, whole = not err }
    local block = { indices = ctx.indices, job = ctx.job, verdict = verdict(summary, err), dead = where,
                    index_copy = ctx.index_copy }
    -- (what a transform failed on are documents to fix, not bulk records to replay)
    local replayable = #where > 0 and not where[1]:find("%.transform$") and where[1]
    if replayable and ctx.replay then block.replay = ctx.replay(replayable) end
    io.stderr:write(require("espipe.cli.summary").block(name, summary, block))
  end
  if err then io.stderr:write("espipe ", name, ": ", tostring(err), "\n") end
  if failed > 0 and not systemic then
    -- also when the job stopped early (error budget, stall): say where its failures went
    io.stderr:write("espipe ", name, ": ", failed, " document(s) dead-lettered",
      #where > 0 and (" to " .. table.concat(where, ", ")) or "", "\n")
  end
  if err then return systemic and 2 or 1 end
  return failed > 0 and 1 or 0
end

-- A usage error: what is wrong, then the usage (exit 2).
function M.usage_error(name, msg, usage)
  io.stderr:write("espipe ", name, ": ", msg, "\n", usage, "\n")
  return 2
end

-- A job that could not run (a wrong option value the library refused, a
-- transform that does not compile, ...): one line, no usage (exit 2).
-- raised: msg is what a pcall caught (a library's wrong-argument error): its
-- Lua source position is left out.
-- What a pcall caught from the library, without its Lua source position.
function M.raised(msg)
  return (tostring(msg):gsub("^[^:]*%.lua:%d+: ", ""))
end

function M.run_error(name, msg, raised)
  msg = tostring(msg)
  if raised then msg = M.raised(msg) end
  io.stderr:write("espipe ", name, ": ", msg, "\n")
  return 2
end

-- --transform FILE, for reindex, load and export alike.
M.transform_usage = [[
  --transform FILE   a Lua file returning function(doc, from, ctx) or { batch = function(docs,
                     ctx, from), size = 500 } (README "Transforms"): return the document
                     (changed or not), nil to drop it, or espipe.many{...} to fan out; an
                     error dead-letters that document (DEAD-LETTER.transform) and counts
                     against --max-errors; returning no value at all stops the job]]

-- The transform of --transform FILE: nil when not given; nil, err when the
-- file cannot be loaded (err names the file, and the line of a syntax error).
function M.transform(path)
  if not path then return nil end
  local t, err = require("espipe.pipeline.transform").load(path)
  if not t then return nil, "transform " .. tostring(err) end
  return t
end

return M
