-- The search handlers alone, without nginx or HTTP: loads N documents
-- (~350-byte sources, as bench/server/make_body.lua writes them) into a
-- 2-shard index through the _bulk handler, then pages match_all scans of
-- SIZE through api_search in LuaJIT with a minimal stand-in for the ngx API,
-- and serializes each response the way app.lua sends it. Separates the
-- server's Lua cost from the HTTP and client costs that bench/server/scan.sh
-- includes.
--   luajit bench/server/scan_handler.lua N SIZE MODE...
-- MODE: pit, scroll, pit3 (as in scan.lua), or none (only the load: the
-- baseline that bench/server/scan_instructions.sh subtracts).
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
local clock = os.clock
-- ids stay readable: api_search only needs encode and decode to round-trip
-- (it pads ids to a multiple of 4 with "=" before decoding)
_G.ngx = { now = function() return 1000 end, -- frozen: the same work on every run
           update_time = function() end, sleep = function() end, log = print, ERR = 1,
           encode_base64 = function(s) return s end,
           decode_base64 = function(s) return (s:gsub("=+$", "")) end }

local n, size = tonumber(arg[1]), tonumber(arg[2])
assert(n and size and arg[3], "usage: luajit bench/server/scan_handler.lua N SIZE MODE...")

local json = require("espipe.server.json")
local cluster = require("espipe.server.cluster")
local cluster_indices = require("espipe.server.cluster_indices")
local cluster_shards = require("espipe.server.cluster_shards")
local bulk = require("espipe.server.api_bulk")
local search = require("espipe.server.api_search")
local opts = { nodes = 1, port = 9200 }
cluster.configure(opts)
require("espipe.server.stats").configure(opts)

local idx = assert(cluster_indices.create_index("scan", { settings = { number_of_shards = 2, refresh_interval = "-1" } }))
for first = 1, n, 20000 do
  local parts = {}
  for i = first, math.min(n, first + 19999) do
    parts[#parts + 1] = string.format('{"index":{"_index":"scan","_id":"b-%d"}}\n', i)
    parts[#parts + 1] = string.format(
      '{"@timestamp":"2024-05-%02dT12:%02d:%02dZ","host":"web-%03d.example.org","status":%d,"bytes":%d,'
      .. '"method":"GET","path":"/api/v1/items/%d/details","user_agent":"Mozilla/5.0 (X11; Linux x86_64) '
      .. 'AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36","latency_ms":%.3f,'
      .. '"tags":["bench","espipe","dev-server"],"message":"request served from cache shard %d"}\n',
      i % 28 + 1, i % 60, i % 60, i % 500, 200 + i % 5, 1000 + i * 7 % 90000, i, (i % 997) / 7, i % 16)
  end
  local status = bulk.bulk({ body = table.concat(parts), params = {}, args = {}, opts = opts, node = 0 })
  assert(status == 200)
end
cluster_shards.refresh(idx)

-- the response as app.lua's send turns it into bytes; returns its head
-- and its tail (where the last hit's sort values are)
local function send(status, resp)
  if status ~= 200 then error(json.encode(resp)) end
  if getmetatable(resp) == bulk.BUFFERED_MT then
    local buf, prev, last = resp[2], "", resp[1]
    while #buf > 0 do prev, last = last, buf:get(65536) end
    -- the last hit's sort values are in the last few hundred bytes
    return resp[1], #last < 512 and prev .. last or last:sub(-512)
  end
  local text = json.encode(resp) -- (no buffered responses: before search used one)
  return text, text
end

local function call(fn, path, body, args)
  return send(search[fn]({ method = "POST", path = path, params = {}, args = args or {},
                           body = body and json.encode(body), opts = opts, node = 0 }))
end

local function last_sort(text)
  local at, from = nil, 1
  while true do
    local a = text:find('"sort":[', from, true)
    if not a then break end
    at, from = a, a + 1
  end
  return at and json.decode(text:match("^%b[]", at + 7))
end

local function pit_scan(slices)
  local pages, docs = 0, 0
  for slice = 0, slices - 1 do
    local pit = json.decode(call("open_pit", "/scan/_pit", nil, { keep_alive = "1m" })).id
    local after
    while true do
      local body = { size = size, pit = { id = pit, keep_alive = "1m" }, search_after = after,
                     track_total_hits = false }
      if slices > 1 then body.slice = { id = slice, max = slices } end
      local text = select(2, call("search", "/_search", body))
      pages = pages + 1
      after = last_sort(text)
      if not after then break end
    end
  end
  return pages, docs
end

local function scroll_scan()
  local head, text = call("search", "/scan/_search", { size = size, sort = { "_doc" } }, { scroll = "1m" })
  local id = head:match('"_scroll_id":"([^"]*)"')
  local pages = 1
  while text:find('"sort":[', 1, true) do
    text = select(2, call("scroll", "/_search/scroll", { scroll = "1m", scroll_id = id }))
    pages = pages + 1
  end
  return pages
end

for i = 3, #arg do
  local mode = arg[i]
  local t0 = clock()
  local pages
  if mode == "pit" then pages = pit_scan(1)
  elseif mode == "pit3" then pages = pit_scan(3)
  elseif mode == "scroll" then pages = scroll_scan()
  elseif mode ~= "none" then error("unknown mode " .. mode) end
  if pages then
    local secs = clock() - t0
    print(string.format("%-6s %8d docs %6d pages in %6.3f s CPU = %8.0f docs/s", mode, n, pages, secs, n / secs))
  end
end
