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

-- A TLS failure is no document error: over https the client first asks the
-- cluster's root, and a handshake or verification failure ends the command
-- at once with one line and exit status 2.
local function check_tls(client, url)
  local res, err = client:perform { method = "GET", path = "/" }
  if res or not err or err.code ~= "tls" then return end
  io.stderr:write("espipe: ", require("espipe.client.url").redact(url), ": ", tostring(err.message or err),
    " (trust its CA with --ca-file FILE or $SSL_CERT_FILE; --insecure skips verification)\n")
  os.exit(2)
end

function M.client(url, opts)
  local client = require("espipe.client").new { hosts = { url }, tls = M.tls(opts) }
  if url:find("^https://") then check_tls(client, url) end
  return client
end

function M.progress(label, opts)
  return require("espipe.pipeline.progress").new { label = label, quiet = opts.quiet, json = opts.json }
end

-- Prints the summary and returns the exit status: 0, or 1 when anything
-- failed or was dead-lettered (naming where it went).
function M.finish(name, p, summary, err, dead_paths)
  local json = require "espipe.json"
  summary = summary or {}
  if err then summary.error = tostring(err) end
  p:finish(summary, json.encode)
  local failed = (summary.failed or 0) + (summary.bad_lines or 0) + (summary.transform_errors or 0)
  if err then
    io.stderr:write("espipe ", name, ": ", tostring(err), "\n")
    return 1
  end
  if failed > 0 then
    local where = {}
    for _, path in ipairs(dead_paths or {}) do
      local f = io.open(path, "rb")
      if f then
        if f:seek("end") > 0 then where[#where + 1] = path end
        f:close()
      end
    end
    io.stderr:write("espipe ", name, ": ", failed, " document(s) dead-lettered",
      #where > 0 and (" to " .. table.concat(where, ", ")) or "", "\n")
    return 1
  end
  return 0
end

function M.usage_error(name, msg, usage)
  io.stderr:write("espipe ", name, ": ", msg, "\n", usage, "\n")
  return 2
end

return M
