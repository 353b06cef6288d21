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
                     docs/s between 1 MB and --max-batch-bytes N (40 MB); N pins it]]
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
  return require("espipe.pipeline.progress").new { label = label, quiet = opts.quiet, json = opts.json }
end

-- Prints the summary and returns the exit status: 0, or 1 when anything
-- failed or was dead-lettered (naming where it went).
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

function M.finish(name, p, summary, err, dead_paths)
  local json = require "espipe.json"
  summary = summary or {}
  if err then summary.error = tostring(err) end
  local failed = (summary.failed or 0) + (summary.bad_lines or 0) + (summary.transform_errors or 0)
  -- systemic: the cluster cannot be used (401/403, TLS, unknown host,
  -- refused at start): one line and exit 2, no summary of a job that never ran
  local systemic = type(err) == "table" and err.kind == "systemic"
  if systemic then p.quiet = true end
  p:finish(summary, json.encode)
  if err then io.stderr:write("espipe ", name, ": ", tostring(err), "\n") end
  if failed > 0 and not systemic then
    -- also when the job stopped early (error budget, stall): say where its failures went
    local where = written(dead_paths)
    io.stderr:write("espipe ", name, ": ", failed, " document(s) dead-lettered",
      #where > 0 and (" to " .. table.concat(where, ", ")) or "", "\n")
  end
  if err then return systemic and 2 or 1 end
  return failed > 0 and 1 or 0
end

function M.usage_error(name, msg, usage)
  io.stderr:write("espipe ", name, ": ", msg, "\n", usage, "\n")
  return 2
end

return M
