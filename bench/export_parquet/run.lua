-- Export throughput from the same scanned pages: realistic log documents
-- are loaded into a dev server index, scanned once (point in time +
-- search_after, 1000 hits a page) and the raw response bodies kept in
-- memory; then, for each output, every page is decoded and written, the
-- pages cycled until `docs` documents have passed:
--   ndjson-raw   core.search_response(body, true): each _source is the text
--                the server sent, lines joined and written (no decode)
--   ndjson       core.search_response(body), espipe.json.encode(_source)
--   none|snappy|zstd|gzip   core.search_response(body), w:write_rows(hits)
--                with columns read from hit._source (prefix "_source",
--                meta "_id"), as `espipe export --format parquet` did before
--   page-none|page-snappy|page-zstd|page-gzip   w:write_page(body): the
--                columns filled straight from the response bytes, no Lua
--                tables ("decode" is 0: the page is read inside the writer)
--   position     parquet_writer.page_position(body) alone, and
--   position-sr  core.search_response(body, true) alone: the two ways a scan
--                can learn where a raw page ends (its last sort values)
--   scan-pos-none|... and scan-none|...   the scan itself, from the dev
--                server into write_page, with the position read by
--                page_position (old) or taken back from write_page (now)
-- Run from the repository root after `make` (Lua 5.4):
--   lua5.4 bench/export_parquet/run.lua [docs=1000000] [indexed=100000] [outputs]
-- outputs: comma-separated subset of ndjson-raw,ndjson,none,snappy,zstd,gzip,
-- page-none,page-snappy,page-zstd,page-gzip,position,position-sr,
-- scan-pos-<codec>,scan-<codec>.
-- Times are CPU seconds (os.clock) of this process: "decode" is
-- search_response alone, "write" the rest, "decode+write" the whole loop.
-- GC=generational|incremental in the environment picks Lua 5.4's collector.
-- PAGES_DIR=dir also writes the scanned response bodies there (see
-- write_pages.lua and instructions.sh).
local ver = jit and "luajit" or _VERSION:match("%d+%.%d+")
package.path = "./lua/?.lua;./lua/?/init.lua;./spec/?.lua;" .. package.path
package.cpath = "./build/" .. ver .. "/?.so;" .. package.cpath

local json = require "espipe.json"
local core = require "espipe.core"
local parquet = require "espipe.parquet"
local client_mod = require "espipe.client"
local devserver = require "support.devserver"

local total = tonumber(arg[1]) or 1000000
local indexed = tonumber(arg[2]) or 100000
local order = {}
for name in (arg[3] or "ndjson-raw,ndjson,none,snappy,zstd,gzip,page-none,page-snappy,page-zstd,page-gzip,position,position-sr,"
  .. "scan-pos-none,scan-none,scan-pos-snappy,scan-snappy,scan-pos-zstd,scan-zstd,scan-pos-gzip,scan-gzip"):gmatch("[^,]+") do
  order[#order + 1] = name
end
local search_response = core.search_response
if os.getenv("GC") then collectgarbage(os.getenv("GC")) end

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

local function doc(i)
  local t = 1714567890000 + i * 37
  return {
    ["@timestamp"] = os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t / 1000)) .. string.format(".%03dZ", t % 1000),
    host = { name = "web-" .. rnd(40), ip = "10.0." .. rnd(8) .. "." .. rnd(250) },
    service = SERVICES[rnd(#SERVICES)], level = LEVELS[rnd(#LEVELS)],
    http = { status = ({ 200, 200, 200, 201, 304, 404, 500 })[rnd(7)], method = METHODS[rnd(#METHODS)],
             bytes = rnd(200000) },
    duration_ms = rnd(100000) / 100 + 0.005,
    user = { id = "u-" .. rnd(50000), geo = { country = COUNTRIES[rnd(#COUNTRIES)] } },
    tags = { "prod", ({ "eu-west-1", "us-east-1", "ap-south-1" })[rnd(3)] },
    message = message(),
  }
end


-- Load `indexed` documents, then keep the raw bodies of one full scan; the
-- server stays up for the scan-* outputs.
local server = devserver.start { nodes = 1 }
local client
local function capture_pages()
  local ok, pages = pcall(function()
    client = client_mod.new { hosts = { server.url } }
    assert(client.indices:create { index = "logs", mappings = MAPPING })
    local bi = client:bulk_indexer { index = "logs", batch_docs = 5000 }
    for i = 1, indexed do bi:index(doc(i), { id = tostring(i) }) end
    local stats = bi:close()
    assert(stats.ok == indexed, "indexed " .. tostring(stats.ok))
    client:refresh { index = "logs" }
    local pit = assert(client:json_request { method = "POST", path = "/logs/_pit", query = "keep_alive=5m" }).id
    local out, after = {}, nil
    while true do
      local res = assert(client:perform { method = "POST", path = "/_search",
        headers = { ["Content-Type"] = "application/json" },
        body = json.encode { size = 1000, sort = { "_shard_doc" }, track_total_hits = false,
          pit = { id = pit, keep_alive = "5m" }, search_after = after } })
      assert(res.status == 200, res.body)
      local page = assert(search_response(res.body))
      local hits = page.hits.hits
      if #hits == 0 then break end
      out[#out + 1] = { body = res.body, n = #hits }
      after = hits[#hits].sort
      if #hits < 1000 then break end
    end
    client:perform { method = "DELETE", path = "/_pit", body = json.encode { id = pit },
      headers = { ["Content-Type"] = "application/json" } }
    return out
  end)
  if not ok then server.stop() error(pages, 0) end
  return pages
end

local pages = capture_pages()
-- PAGES_DIR=dir keeps the bodies as dir/pageNNN.json for write_pages.lua
-- (instructions.sh counts write_page alone without a server).
if os.getenv("PAGES_DIR") then
  for i, p in ipairs(pages) do
    local f = assert(io.open(string.format("%s/page%03d.json", os.getenv("PAGES_DIR"), i), "wb"))
    f:write(p.body)
    f:close()
  end
end
local page_bytes, page_docs = 0, 0
for _, p in ipairs(pages) do page_bytes, page_docs = page_bytes + #p.body, page_docs + p.n end
collectgarbage()

-- Feeds pages (cycled) to write(decoded) until `total` documents passed;
-- returns documents, CPU seconds of decoding, of the whole loop.
local function feed(raw, write)
  local clock = os.clock
  local docs, t_decode, t0, i = 0, 0, clock(), 0
  while docs < total do
    i = i % #pages + 1
    local t = clock()
    local page = search_response(pages[i].body, raw)
    t_decode = t_decode + (clock() - t)
    local hits = page.hits.hits
    write(hits)
    docs = docs + #hits
  end
  return docs, t_decode, clock() - t0
end

local function file_size(path)
  local f = assert(io.open(path, "rb"))
  local n = f:seek("end")
  f:close()
  return n
end

local results = {}
local function report(name, docs, t_decode, t_all, bytes, notes)
  local function rate(t) return t > 0 and string.format("%.0f k", docs / t / 1000) or "-" end
  results[#results + 1] = string.format("| %s | %s | %s | %s | %.1f | %s |", name,
    rate(t_all), rate(t_decode), rate(t_all - t_decode), bytes / docs, notes or "")
end

local outputs = {}

outputs["ndjson-raw"] = function(path)
  local f = assert(io.open(path, "wb"))
  local docs, t_decode, t_all = feed(true, function(hits)
    local out = {}
    for i = 1, #hits do out[i] = hits[i]._source end
    out[#out + 1] = ""
    f:write(table.concat(out, "\n"))
  end)
  f:close()
  return docs, t_decode, t_all, file_size(path), "_source bytes as sent"
end

outputs.ndjson = function(path)
  local f = assert(io.open(path, "wb"))
  local encode = json.encode
  local docs, t_decode, t_all = feed(false, function(hits)
    local out = {}
    for i = 1, #hits do out[i] = encode(hits[i]._source) end
    out[#out + 1] = ""
    f:write(table.concat(out, "\n"))
  end)
  f:close()
  return docs, t_decode, t_all, file_size(path), "decoded, re-encoded by espipe.json"
end

local columns = parquet.schema.from_mapping(MAPPING, { prefix = "_source", meta = { "_id" } })
for _, codec in ipairs { "none", "snappy", "zstd", "gzip" } do
  outputs[codec] = function(path)
    local w = assert(parquet.open(path, columns, { codec = codec }))
    local docs, t_decode, t_all = feed(false, function(hits) assert(w:write_rows(hits)) end)
    local t = os.clock()
    local r = assert(w:close())
    t = os.clock() - t
    assert(r.rows == docs and next(r.invalid) == nil)
    return docs, t_decode, t_all + t, r.bytes, string.format("Parquet %s, %d row groups", codec, r.row_groups)
  end
end

for _, codec in ipairs { "none", "snappy", "zstd", "gzip" } do
  outputs["page-" .. codec] = function(path)
    local w = assert(parquet.open(path, columns, { codec = codec }))
    local clock = os.clock
    local docs, i, t0 = 0, 0, clock()
    while docs < total do
      i = i % #pages + 1
      docs = docs + assert(w:write_page(pages[i].body))
    end
    local r = assert(w:close())
    local t_all = clock() - t0
    assert(r.rows == docs and next(r.invalid) == nil)
    return docs, 0, t_all, r.bytes, string.format("Parquet %s from raw pages, %d row groups", codec, r.row_groups)
  end
end

local function position_only(read, note)
  return function()
    local clock = os.clock
    local docs, i, t0 = 0, 0, clock()
    while docs < total do
      i = i % #pages + 1
      local pos = assert(read(pages[i].body))
      docs = docs + pos
    end
    local t = clock() - t0
    return docs, t, t, 0, note
  end
end
local page_position = require("espipe.parquet_writer").page_position
outputs.position = position_only(function(body)
  local pos = page_position(body)
  return pos and pos.search_after and pos.hits
end, "page_position: last sort values only")
outputs["position-sr"] = position_only(function(body)
  local page = search_response(body, true)
  local hits = page and page.hits.hits
  return hits and hits[#hits].sort and #hits
end, "search_response(body, true) for the last sort values")

-- The scan itself (client:scan raw_pages, one slice, 1000 hits a page) from
-- the dev server into write_page, full scans repeated until `total`
-- documents: scan-pos-* reads each page's position with page_position before
-- handing it out (the old export path), scan-* hands the page out unread and
-- takes the position back from write_page (r:advance: what export does now).
-- CPU of this process (curl, request bodies, the scan's Lua, the writer); the
-- server's CPU is another process's.
for _, codec in ipairs { "none", "snappy", "zstd", "gzip" } do
  for _, mode in ipairs { "scan-pos-", "scan-" } do
    local advance = mode == "scan-"
    outputs[mode .. codec] = function(path)
      local w = assert(parquet.open(path, columns, { codec = codec }))
      local clock = os.clock
      local docs, t0, wall = 0, clock(), require("espipe.curl_multi").now()
      while docs < total do
        local r = client:scan("logs", nil, { size = 1000, raw_pages = true, advance = advance })
        for page in r:pages() do
          local n, pos = assert(w:write_page(page.body))
          if advance then r:advance(page, pos) end
          docs = docs + n
        end
      end
      local r = assert(w:close())
      local t_all = clock() - t0
      wall = require("espipe.curl_multi").now() - wall
      assert(r.rows == docs and next(r.invalid) == nil)
      return docs, 0, t_all, r.bytes, string.format("Parquet %s scanned, %s; wall %.0f k docs/s", codec,
        advance and "position from write_page" or "page_position per page", docs / wall / 1000)
    end
  end
end

local run_ok, run_err = pcall(function()
  for _, name in ipairs(order) do
    if not outputs[name] then error("unknown output " .. name) end
    local path = os.tmpname()
    local docs, t_decode, t_all, bytes, notes = outputs[name](path)
    os.remove(path)
    report(name, docs, t_decode, t_all, bytes, notes)
    collectgarbage()
  end
end)
client:close()
server.stop()
if not run_ok then error(run_err, 0) end

print(string.format("%s; %d docs indexed, scanned once into %d pages (%.1f MB of responses, %.0f bytes/hit);"
  .. " %d docs decoded+written per output; %d columns", jit and jit.version or _VERSION, page_docs, #pages,
  page_bytes / 1048576, page_bytes / page_docs, total, #columns))
print("| output | decode+write docs/s | decode alone | write alone | bytes/doc | notes |")
print("| --- | --- | --- | --- | --- | --- |")
for _, line in ipairs(results) do print(line) end
