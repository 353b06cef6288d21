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

function M.client(url)
  return require("espipe.client").new { hosts = { url } }
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
