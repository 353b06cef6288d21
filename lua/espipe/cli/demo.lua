-- espipe demo: the whole tour on a dev server (or on $ES_URL when set):
-- generate sample logs, load them into monthly indices, reindex them through
-- the enrichment example, export the result, print a summary.
local common = require "espipe.cli.common"

local usage = [[
usage: espipe demo [--count N] [--keep DIR]

Starts `espipe serve` on a free loopback port (or uses $ES_URL), loads N
generated log lines (default 3000) into logs-2024.MM, reindexes them through
examples/enrich.lua into logs-enriched, exports NDJSON (and Parquet when
espipe.parquet is built), prints what happened and stops the server. Output
files go to a temporary directory, removed at the end unless --keep DIR.]]

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
  local out = p:read("*a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return rc == 0, (out:gsub("rc=%d+%s*$", ""))
end

local function root()
  local script = arg and arg[0] or "bin/espipe"
  return script:match("^(.*)/bin/[^/]*$") or "."
end

local function start_server(r, tmp)
  for _ = 1, 20 do
    local port = 20000 + math.random(0, 39000)
    local ok, out = sh(q(r .. "/bin/espipe") .. " serve --daemon --nodes 3 --port " .. port
      .. " --pid-file " .. q(tmp .. "/serve.pid"))
    if ok then
      local f = io.open(tmp .. "/serve.pid")
      local pid = f and tonumber(f:read("*a"):match("%d+"))
      if f then f:close() end
      return "http://127.0.0.1:" .. port, pid
    end
    if not out:find("Address already in use", 1, true) then return nil, out end
  end
  return nil, "no free port found"
end

local flags = { count = "number", keep = "string" }

local function run(argv)
  local args = require "espipe.cli.args"
  local opts, rest = args.parse(argv, flags)
  if not opts then return common.usage_error("demo", rest, usage) end
  math.randomseed(os.time())
  local r = root()
  local _, tmp = sh("mktemp -d ${TMPDIR:-/tmp}/espipe-demo.XXXXXX")
  tmp = tmp:match("%S+")
  local out_dir = opts.keep or (tmp .. "/out")
  sh("mkdir -p " .. q(out_dir))
  local url, pid = os.getenv("ES_URL"), nil
  if not url then
    url, pid = start_server(r, tmp)
    if not url then
      io.stderr:write("espipe demo: cannot start espipe serve: ", tostring(pid), "\n")
      sh("rm -rf " .. q(tmp))
      return 1
    end
    io.stdout:write("dev server: ", url, " (3 nodes)\n")
  end
  local interp = arg and arg[-1] or "lua5.4"
  local env = "ES_URL=" .. q(url) .. " LUA=" .. q(interp) .. " ESPIPE_FLAGS=--quiet "
  local steps = {
    { "load " .. (opts.count or 3000) .. " generated log lines into logs-2024.MM (gzip stream)",
      "ES_URL=" .. q(url) .. " LUA=" .. q(interp) .. " ESPIPE_FLAGS="
      .. q("--quiet --dead-letter " .. out_dir .. "/load-deadletter.ndjson") .. " "
      .. q(r .. "/examples/month_load.sh") .. " " .. (opts.count or 3000) },
    { "refresh", "curl -s -XPOST " .. q(url .. "/logs-*/_refresh") },
    { "reindex logs-2024.* -> logs-enriched through examples/enrich.lua"
      .. " (it raises on the unknown country code XX: those documents go to the dead letter"
      .. " with the error, and the job goes on)",
      env .. "ESPIPE_FLAGS=" .. q("--quiet --dead-letter " .. out_dir .. "/deadletter.ndjson") .. " "
      .. q(r .. "/examples/reindex_enrich.sh") .. " 'logs-2024.*' logs-enriched" },
    { "refresh", "curl -s -XPOST " .. q(url .. "/logs-enriched,incidents/_refresh") },
    { "export logs-enriched -> NDJSON", q(r .. "/bin/espipe") .. " export " .. q(url .. "/logs-enriched")
      .. " --to " .. q(out_dir .. "/ndjson") .. " --file-bytes 200000 --quiet" },
    { "export 5xx requests -> gzip CSV", env .. q(r .. "/examples/export.sh") .. " logs-enriched " .. q(out_dir .. "/csv") },
  }
  if pcall(require, "espipe.parquet") then
    steps[#steps + 1] = { "export logs-enriched -> Parquet", q(r .. "/bin/espipe") .. " export "
      .. q(url .. "/logs-enriched") .. " --format parquet --to " .. q(out_dir .. "/parquet") .. " --quiet" }
  end
  local status = 0
  for _, step in ipairs(steps) do
    if step[1] ~= "refresh" then io.stdout:write("== ", step[1], "\n") end
    local ok, out = sh(step[2])
    if step[1] ~= "refresh" and out ~= "" then io.stdout:write(out) end
    if not ok and not step[1]:find("^reindex") then status = 1 end
  end
  io.stdout:write("== summary\n")
  for _, index in ipairs { "logs-2024.01", "logs-2024.02", "logs-2024.03", "logs-enriched", "incidents" } do
    local _, c = sh("curl -s " .. q(url .. "/" .. index .. "/_count"))
    io.stdout:write(string.format("  %-14s %s docs\n", index, c:match('"count":(%d+)') or "?"))
  end
  local _, ls = sh("ls -R " .. q(out_dir))
  io.stdout:write("  files in ", out_dir, ":\n", (ls:gsub("[^\n]+", "    %0")))
  if pid then sh("kill -TERM " .. pid) end
  if not opts.keep then sh("rm -rf " .. q(tmp)) end
  return status
end

return { summary = "run the whole tour on a throwaway dev server", usage = usage, flags = flags, run = run }
