-- The five-minute tour of README.md, runnable:
--   bin/espipe serve --daemon --port 9200     (or point ES_URL at a cluster)
--   lua5.4 examples/tour.lua                  (from a checkout: see the path setup below)
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/" .. (jit and "luajit" or _VERSION:match("%d+%.%d+")) .. "/?.so;" .. package.cpath

local espipe = require "espipe"
local json = espipe.json

local es = espipe.client{ hosts = { os.getenv("ES_URL") or "http://127.0.0.1:9200" } }

-- documents: every call returns the decoded response, or nil, err
assert(es:index{ index = "books", id = "1", refresh = "true",
                 body = { title = "Dune", year = 1965, tags = json.array{} } })
local doc = assert(es:get{ index = "books", id = "1" })
print(doc._source.title, doc._source.year, json.encode(doc._source.tags))   --> Dune 1965 []
local missing, err = es:get{ index = "books", id = "nope" }
print(missing, tostring(err))   --> nil  404 ... (GET /books/_doc/nope)

-- bulk: batches by bytes and count, N requests in flight, retries, dead letter
local bi = es:bulk_indexer{ index = "logs", batch_bytes = 5e6, concurrency = 4,
                            dead_letter = "failed.ndjson" }
for i = 1, 100000 do
  bi:index({ n = i, msg = "hello " .. i }, { _id = tostring(i) })
end
local stats = bi:close()     -- added, ok, failed, retried, requests, bytes, elapsed, ...
assert(stats.added == stats.ok + stats.failed)
print("indexed", stats.ok, "failed", stats.failed)
if stats.failed == 0 then os.remove("failed.ndjson") end

-- scan: point in time + search_after, slices fetched concurrently
assert(es:refresh{ index = "logs" })
local n = 0
for _ in es:scan("logs", { range = { n = { gte = 500 } } }, { slices = 4 }) do
  n = n + 1
end
print("scanned", n)   --> scanned 99501

-- reindex with enrichment: return the doc, nil to drop it, espipe.many{...} to fan out
local summary = assert(espipe.reindex{
  source = { client = es, index = "logs", slices = 2 },
  dest = { client = es, index = "logs-odd" },
  transform = function(log)
    if log.n % 2 == 0 then return nil end
    log.odd = true
    return log
  end,
  progress = false,
})
print("scanned", summary.scanned, "indexed", summary.ok, "dropped", summary.dropped)
