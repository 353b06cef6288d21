-- The "own scan + bulk loop" of the reindex benchmark: client:scan into
-- client:bulk_indexer, nothing else (what a user would write by hand).
--   lua5.4 bench/reindex/scan_bulk_loop.lua URL SRC DEST
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/5.4/?.so;" .. package.cpath
local url, src, dest = arg[1], arg[2], arg[3]
local client = require("espipe.client").new { hosts = { url } }
local ix = client:bulk_indexer { index = dest, batch_docs = 1000, concurrency = 4 }
for hit in client:scan(src, nil, { size = 1000 }) do
  ix:index(hit._source, { _id = hit._id })
end
local stats = ix:close()
io.stderr:write("scan+bulk loop: ok=", stats.ok, " failed=", stats.failed, "\n")
