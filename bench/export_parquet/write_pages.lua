-- w:write_page over response bodies saved by run.lua (PAGES_DIR=dir), the
-- pages cycled until `docs` documents: write_page alone, no server, for
-- profilers (perf record, callgrind; see instructions.sh).
--   lua5.4 bench/export_parquet/write_pages.lua dir [codec=none] [docs=1000000] [out=os.tmpname()]
-- LEVEL=n in the environment sets the codec level; LAYOUT=nested writes the
-- nested layout of `espipe export` (espipe.parquet.tree: tags as a list, host,
-- http and user as structs; arrays seen in the first page), else the flat one.
local ver = jit and "luajit" or _VERSION:match("%d+%.%d+")
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/" .. ver .. "/?.so;" .. package.cpath
local parquet = require "espipe.parquet"

local dir = assert(arg[1], "usage: write_pages.lua dir [codec] [docs] [out]")
local codec, total = arg[2] or "none", tonumber(arg[3]) or 1000000
local out = arg[4] or os.tmpname()

-- the mapping of run.lua
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

local pages = {}
while true do
  local f = io.open(string.format("%s/page%03d.json", dir, #pages + 1), "rb")
  if not f then break end
  pages[#pages + 1] = f:read("*a")
  f:close()
end
assert(#pages > 0, "no " .. dir .. "/page001.json: run run.lua with PAGES_DIR=" .. dir .. " first")

local columns
if os.getenv("LAYOUT") == "nested" then
  local sample = {}
  for i, hit in ipairs(require("espipe.json").decode(pages[1]).hits.hits) do sample[i] = hit._source end
  columns = require("espipe.parquet.tree").from_mapping(MAPPING,
    { prefix = "_source", meta = { "_id" }, sample = sample })
else
  columns = parquet.schema.from_mapping(MAPPING, { prefix = "_source", meta = { "_id" } })
end

local w = assert(parquet.open(out, columns, { codec = codec, level = tonumber(os.getenv("LEVEL")) }))
local t0, docs, i = os.clock(), 0, 0
while docs < total do
  i = i % #pages + 1
  docs = docs + assert(w:write_page(pages[i]))
end
local r = assert(w:close())
local t = os.clock() - t0
if not arg[4] then os.remove(out) end
print(string.format("%s: %d docs, %.0f k docs/s (CPU), %.1f bytes/doc", codec, docs,
  t > 0 and docs / t / 1000 or 0, r.bytes / math.max(docs, 1)))
