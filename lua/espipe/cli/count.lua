-- espipe count INDEX [--query Q]: the documents of an index (or pattern)
-- that match, as _count sees them.
local args = require "espipe.cli.args"
local common = require "espipe.cli.common"

local usage = [[
usage: espipe count INDEX [options]

  INDEX              an index, alias or pattern (logs-*), or http://host:9200/index
  --query Q          a query DSL object ({"term":{"status":404}}) or query_string text
                     (status:404 AND path:/api*); default all documents
  --url URL          cluster (default $ES_URL or http://127.0.0.1:9200)
  --timeout S        seconds per request (default 60)]]

local spec = common.with_tls { url = "string", query = "string", timeout = "number" }
usage = usage .. "\n" .. common.tls_usage

-- "{...}" is query DSL; anything else query_string text
local function query_of(q)
  if not q then return nil end
  if not q:find("^%s*{") then return { query_string = { query = q } } end
  local v, err = require("espipe.json").decode(q)
  if type(v) ~= "table" then return nil, "--query is not a JSON object: " .. tostring(err) end
  return v
end

local function run(argv)
  local opts, rest = args.parse(argv, spec)
  if not opts then return common.usage_error("count", rest, usage) end
  if #rest ~= 1 then return common.usage_error("count", "expected one INDEX", usage) end
  local url, index = common.target(rest[1], opts.url)
  if not url then return common.usage_error("count", index, usage) end
  local query, qerr = query_of(opts.query)
  if qerr then return common.usage_error("count", qerr, usage) end
  local n, err = common.setup(url, opts):count(index, query)
  if not n then return common.run_error("count", err) end
  io.stdout:write(n, "\n")
  return 0
end

return { summary = "count the documents of an index that match a query", usage = usage, flags = spec, run = run }
