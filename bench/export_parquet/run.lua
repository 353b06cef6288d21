-- Export throughput: realistic log documents (decoded from JSON, as a scan
-- yields them) written to Parquet with each codec, and to NDJSON with
-- espipe.json as the baseline. Run from the repository root after `make`:
--   lua5.4 bench/export_parquet/run.lua [docs=1000000] [page=1000] [distinct=20000] [outputs]
-- outputs: comma-separated subset of ndjson,none,snappy,zstd,gzip (default all).
-- Like an export: each page of `page` documents is decoded from JSON text by
-- espipe.json right before it is written, as a scan hands pages over. The
-- `distinct` different documents are generated once as page texts and cycled
-- through, so values repeat every `distinct` documents. "write" columns time
-- the writer (or NDJSON encoding + file write) alone, "decode+write" the whole
-- loop. Times are CPU seconds (os.clock) of this process.
local ver = jit and "luajit" or _VERSION:match("%d+%.%d+")
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/" .. ver .. "/?.so;" .. package.cpath

local json = require "espipe.json"
local parquet = require "espipe.parquet"

local total = tonumber(arg[1]) or 1000000
local page_size = tonumber(arg[2]) or 1000
local npages = math.floor(total / page_size)
local distinct = tonumber(arg[3]) or 20000
local wanted = {}
for name in (arg[4] or "ndjson,none,snappy,zstd,gzip"):gmatch("[^,]+") do wanted[name] = true end

local MAPPING = { properties = {
  ["@timestamp"] = { type = "date" },
  host = { properties = { name = { type = "keyword" }, ip = { type = "ip" } } },
  service = { type = "keyword" }, level = { type = "keyword" },
  http = { properties = { status = { type = "integer" }, method = { type = "keyword" }, bytes = { type = "long" } } },
  duration_ms = { type = "float" },
  user = { properties = { id = { type = "keyword" }, geo = { properties = { country = { type = "keyword" } } } } },
  tags = { type = "keyword" },
  message = { type = "match_only_text" },
} }

local WORDS = { "request", "completed", "upstream", "timeout", "cache", "miss", "user", "session", "payment",
  "accepted", "retry", "backend", "latency", "checkout", "inventory", "reserved", "token", "refreshed" }
local SERVICES = { "checkout", "cart", "search", "auth", "inventory", "payments" }
local LEVELS = { "INFO", "INFO", "INFO", "INFO", "WARN", "ERROR", "DEBUG" }
local METHODS = { "GET", "GET", "GET", "POST", "PUT", "DELETE" }
local COUNTRIES = { "DE", "FR", "US", "GB", "JP", "BR", "IN", "NL" }

-- A deterministic generator (Park-Miller: exact in doubles too, so every Lua
-- sees the same documents).
local seed = 12345
local function rnd(n)
  seed = (seed * 16807) % 2147483647
  return seed % n + 1
end

local function message()
  local parts = {}
  local len = 0
  while len < 115 do
    local w = WORDS[rnd(#WORDS)]
    parts[#parts + 1] = w
    len = len + #w + 1
  end
  parts[#parts + 1] = "id=" .. rnd(1000000)
  return table.concat(parts, " ")
end

local function doc_json(i)
  local t = 1714567890000 + i * 37
  return json.encode({
    ["@timestamp"] = os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t / 1000)) .. string.format(".%03dZ", t % 1000),
    host = { name = "web-" .. rnd(40), ip = "10.0." .. rnd(8) .. "." .. rnd(250) },
    service = SERVICES[rnd(#SERVICES)], level = LEVELS[rnd(#LEVELS)],
    http = { status = ({ 200, 200, 200, 201, 304, 404, 500 })[rnd(7)], method = METHODS[rnd(#METHODS)],
             bytes = rnd(200000) },
    duration_ms = rnd(100000) / 100 + 0.005,
    user = { id = "u-" .. rnd(50000), geo = { country = COUNTRIES[rnd(#COUNTRIES)] } },
    tags = { "prod", ({ "eu-west-1", "us-east-1", "ap-south-1" })[rnd(3)] },
    message = message(),
  })
end

-- The distinct documents as page texts (JSON arrays), as search responses hold them.
local page_texts = {}
do
  local lines = {}
  for i = 1, distinct do lines[i] = doc_json(i) end
  for p = 1, distinct, page_size do
    page_texts[#page_texts + 1] = "[" .. table.concat(lines, ",", p, math.min(p + page_size - 1, distinct)) .. "]"
  end
end

-- Runs write(page) for every page, decoding each just before; returns the
-- CPU seconds of the writes alone and of the whole loop.
local function feed(write)
  local clock = os.clock
  local t_write, t0 = 0, clock()
  for p = 1, npages do
    local page = json.decode(page_texts[(p - 1) % #page_texts + 1])
    local t = clock()
    write(page)
    t_write = t_write + (clock() - t)
  end
  return t_write, clock() - t0
end

local function tmpfile()
  local p = os.tmpname()
  return p
end

local function file_size(path)
  local f = assert(io.open(path, "rb"))
  local n = f:seek("end")
  f:close()
  return n
end

local results = {}

local function report(name, t_write, t_all, bytes, extra)
  results[#results + 1] = string.format("| %s | %.0f | %.0f | %.1f | %s |", name, total / t_write,
    total / t_all, bytes / total, extra or "")
end

-- NDJSON baseline: espipe.json.encode each document, one write per page.
if wanted.ndjson then
  local path = tmpfile()
  local f = assert(io.open(path, "wb"))
  local encode = json.encode
  local t_write, t_all = feed(function(page)
    local out = {}
    for i = 1, #page do out[i] = encode(page[i]) end
    out[#out + 1] = ""
    f:write(table.concat(out, "\n"))
  end)
  f:close()
  report("NDJSON (espipe.json)", t_write, t_all, file_size(path), "")
  os.remove(path)
end

local columns = parquet.schema.from_mapping(MAPPING)
for _, codec in ipairs({ "none", "snappy", "zstd", "gzip" }) do
  if wanted[codec] then
  local path = tmpfile()
  local w = assert(parquet.open(path, columns, { codec = codec }))
  local t_write, t_all = feed(function(page) assert(w:write_rows(page)) end)
  local t = os.clock()
  local r = assert(w:close())
  t = os.clock() - t
  assert(r.rows == total and next(r.invalid) == nil)
  report("Parquet " .. codec, t_write + t, t_all + t, r.bytes, string.format("%d row groups, peak buffer %.1f MB",
    r.row_groups, r.peak_buffered_bytes / 1048576))
  os.remove(path)
  end
end

print(string.format("%s, %d docs in pages of %d (%d distinct), %d columns", jit and jit.version or _VERSION,
  total, page_size, distinct, #columns))
print("| output | write docs/s | decode+write docs/s | bytes/doc | notes |")
print("| --- | --- | --- | --- | --- |")
for _, line in ipairs(results) do print(line) end
