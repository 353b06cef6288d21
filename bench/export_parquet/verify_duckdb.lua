-- The DuckDB read of N documents exported from the dev server (nested
-- layout), against the same aggregations DuckDB computes from the source
-- NDJSON the index was loaded from: exact count, sum, distinct count and a
-- GROUP BY, plus UNNEST over the tags list. Exits non-zero on a difference.
-- Run from the repository root after `make` and `npm install --prefix spec/node`:
--   lua5.4 bench/export_parquet/verify_duckdb.lua [docs=1000000]
local ver = jit and "luajit" or _VERSION:match("%d+%.%d+")
package.path = "./lua/?.lua;./lua/?/init.lua;./spec/?.lua;" .. package.path
package.cpath = "./build/" .. ver .. "/?.so;" .. package.cpath

local json = require "espipe.json"
local devserver = require "support.devserver"
local duckdb = require "parquet.duckdb"

local total = tonumber(arg[1]) or 1000000
local seed = 12345
local function rnd(n)
  seed = (seed * 16807) % 2147483647
  return seed % n + 1
end
local LEVELS = { "INFO", "WARN", "ERROR", "DEBUG" }

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir))
local ndjson = dir .. "/source.ndjson"
local f = assert(io.open(ndjson, "wb"))
for i = 1, total do
  local tags = {}
  for k = 1, rnd(3) - 1 do tags[k] = "t" .. rnd(20) end
  f:write(json.encode {
    id = i, ["@timestamp"] = 1714567890000 + i * 37, level = LEVELS[rnd(4)],
    http = { bytes = rnd(200000), status = ({ 200, 404, 500 })[rnd(3)] },
    user = { id = "u-" .. rnd(50000) }, tags = json.array(tags),
  }, "\n")
end
f:close()

local server = devserver.start { nodes = 1 }
local function sh(cmd)
  local t0 = os.time()
  local ok = os.execute(cmd)
  io.stderr:write(cmd:match("^%S+ %S+"), ": ", os.time() - t0, " s\n")
  return ok == true or ok == 0
end
local ok, err = pcall(function()
  local q = function(s) return "'" .. s .. "'" end
  assert(sh("curl -s -XPUT " .. server.url .. "/src -H 'Content-Type: application/json' -d "
    .. q(json.encode { mappings = { properties = {
      id = { type = "long" }, ["@timestamp"] = { type = "date" }, level = { type = "keyword" },
      http = { properties = { bytes = { type = "long" }, status = { type = "integer" } } },
      user = { properties = { id = { type = "keyword" } } }, tags = { type = "keyword" } } } }) .. " >/dev/null"))
  assert(sh("bin/espipe load " .. ndjson .. " --url " .. server.url .. " --index src --quiet"))
  assert(sh("curl -s -XPOST " .. server.url .. "/src/_refresh >/dev/null"))
  assert(sh("bin/espipe export " .. server.url .. "/src --to " .. dir .. "/pq --format parquet --codec zstd --quiet"))
  local pq = "read_parquet(" .. duckdb.quote(dir .. "/pq/*.parquet") .. ")"
  local src = "read_json(" .. duckdb.quote(ndjson) .. ", format = 'newline_delimited')"
  local function figures(from)
    return "SELECT count(*)::VARCHAR n, sum(http.bytes)::VARCHAR bytes, count(DISTINCT user.id)::VARCHAR users, "
      .. "(SELECT string_agg(level || '=' || c, ',' ORDER BY level) FROM (SELECT level, count(*) c FROM " .. from
      .. " GROUP BY level)) levels, (SELECT count(*) FROM (SELECT UNNEST(tags) FROM " .. from .. "))::VARCHAR tags "
      .. "FROM " .. from
  end
  local r = duckdb.query { figures(pq), figures(src) }
  print("parquet: " .. json.encode(r[1][1]))
  print("ndjson:  " .. json.encode(r[2][1]))
  assert(r[1][1].n == tostring(total), "count")
  for k, v in pairs(r[2][1]) do assert(r[1][1][k] == v, k .. " differs") end
  print("same figures for " .. total .. " documents")
end)
server.stop()
os.execute("rm -rf " .. dir)
if not ok then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
