-- espipe's bulk indexer against a server (espipe serve --blackhole):
--   lua5.4 bench/bulk/espipe_bulk.lua URL N table|raw|raw_pre|cjson_seq|gen [filter_path=yes|no]
-- table: documents as Lua tables; raw: NDJSON source lines (generated and
-- encoded per document, so it includes the encoding); raw_pre: source lines
-- encoded beforehand (10 000, cycled), the indexer's cost for existing NDJSON;
-- gen: build the documents and drop them (the generator's share of CPU);
-- cjson_seq: the peer setup "lua-cjson encoding + a sequential HTTP loop"
-- (one request at a time over our curl transport, body built with
-- table.concat of cjson.encode lines, 1000 docs per request).
-- Prints: mode docs elapsed_s docs_per_s
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/5.4/?.so;" .. package.cpath
local gen = dofile("bench/bulk/docs.lua")

local url, n, mode = arg[1], tonumber(arg[2] or "1000000"), arg[3] or "table"
-- the indexer's default asks for a filtered response; "no" asks for the full one
local filter_path = arg[4] ~= "no"
local client = require("espipe.client").new{ hosts = { url }, max_inflight = 8 }
local now = client.now
local t0 = now(client)

if mode == "gen" then
  -- only build the documents (and their ids), to separate that cost
  for i = 1, n do local _, _ = gen.doc(i), tostring(i) end
elseif mode == "cjson_seq" then
  local cjson = require("cjson")
  local t = client.transport
  local lines, k = {}, 0
  local function send()
    local res = assert(t:request{ method = "POST", path = "/bench/_bulk", body = table.concat(lines, "", 1, k),
      headers = { ["Content-Type"] = "application/x-ndjson" } })
    assert(res.status == 200 and cjson.decode(res.body).errors == false)
    k = 0
  end
  for i = 1, n do
    lines[k + 1] = cjson.encode{ index = { _id = tostring(i) } } .. "\n"
    lines[k + 2] = cjson.encode(gen.doc(i)) .. "\n"
    k = k + 2
    if k == 2000 then send() end
  end
  if k > 0 then send() end
else
  local bi = client:bulk_indexer{ index = "bench", batch_docs = 5000, batch_bytes = 5 * 1024 * 1024, concurrency = 4,
    filter_path = filter_path }
  if mode == "raw" then
    for i = 1, n do bi:index(gen.line(i), { id = tostring(i) }) end
  elseif mode == "raw_pre" then
    -- NDJSON lines that already exist (as when loading a file): 10 000
    -- pre-encoded sources, cycled, each sent with its own id
    local lines = {}
    for i = 1, 10000 do lines[i] = gen.line(i) end
    for i = 1, n do bi:index(lines[(i - 1) % 10000 + 1], { id = tostring(i) }) end
  else
    for i = 1, n do bi:index(gen.doc(i), { id = tostring(i) }) end
  end
  local st = bi:close()
  assert(st.ok == n and st.failed == 0, "not all acknowledged")
end
local dt = now(client) - t0
io.write(string.format("%s %d %.2f %.0f\n", mode, n, dt, n / dt))
