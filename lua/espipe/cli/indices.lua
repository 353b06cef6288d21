-- espipe indices [PATTERN]: the indices of a cluster as _cat/indices shows
-- them, with the refresh interval beside (the settings a load tunes).
local args = require "espipe.cli.args"
local common = require "espipe.cli.common"

local usage = [[
usage: espipe indices [PATTERN] [options]

  PATTERN            indices to list (default all; logs-* and a,b work)
  --url URL          cluster (default $ES_URL or http://127.0.0.1:9200)
  --timeout S        seconds per request (default 60)
  --json             the rows as a JSON array on stdout]]

local spec = common.with_tls { url = "string", json = "boolean", timeout = "number" }
usage = usage .. "\n" .. common.tls_usage

local COLUMNS = { { "index", "index" }, { "health", "health" }, { "docs", "docs.count" },
  { "size", "store.size" }, { "shards", "pri" }, { "replicas", "rep" }, { "refresh", "refresh" } }

-- index -> refresh_interval ("1s" when not set: Elasticsearch's default)
local function refresh_intervals(setup, pattern)
  local settings, err = setup:get(pattern, "_settings/index.refresh_interval")
  if not settings then return nil, err end
  local out = {}
  for name, s in pairs(settings) do
    local ix = type(s) == "table" and s.settings and s.settings.index
    out[name] = ix and ix.refresh_interval or "1s"
  end
  return out
end

local function print_table(rows)
  local width = {}
  for i, c in ipairs(COLUMNS) do
    width[i] = #c[1]
    for _, r in ipairs(rows) do width[i] = math.max(width[i], #tostring(r[c[2]] or "")) end
  end
  local function line(get)
    local cells = {}
    for i, c in ipairs(COLUMNS) do
      local v = tostring(get(c))
      -- names left-aligned, numbers right-aligned
      cells[i] = (i <= 2) and (v .. string.rep(" ", width[i] - #v)) or (string.rep(" ", width[i] - #v) .. v)
    end
    io.stdout:write((table.concat(cells, "  "):gsub("%s+$", "")), "\n")
  end
  line(function(c) return c[1] end)
  for _, r in ipairs(rows) do line(function(c) return r[c[2]] or "" end) end
end

local function run(argv)
  local opts, rest = args.parse(argv, spec)
  if not opts then return common.usage_error("indices", rest, usage) end
  if #rest > 1 then return common.usage_error("indices", "expected at most one PATTERN", usage) end
  local pattern = rest[1] or "*"
  local setup = common.setup(opts.url or common.default_url(), opts)
  local path = "/_cat/indices/" .. require("espipe.client.url").segment(pattern, "index", 2) .. "?format=json&bytes=b"
  local rows, err = setup.client:json_request_retrying({ method = "GET", path = path }, setup.policy)
  if not rows then return common.run_error("indices", err) end
  local refresh, rerr = refresh_intervals(setup, pattern)
  if not refresh then return common.run_error("indices", rerr) end
  table.sort(rows, function(a, b) return a.index < b.index end)
  for _, r in ipairs(rows) do r.refresh = refresh[r.index] or "1s" end
  if opts.json then
    io.stdout:write(require("espipe.json").encode(rows), "\n")
  else
    print_table(rows)
  end
  return 0
end

return { summary = "list indices: docs, size, shards, replicas, refresh interval", usage = usage, flags = spec,
         run = run }
