-- Dev server search-path benchmark: pages a match_all scan of an index of
-- N documents through one kept-alive connection (espipe's curl transport)
-- and prints one line per mode: pages, docs, seconds, pages/s, docs/s, the
-- client's CPU per document and, when WORKERS lists the nginx workers'
-- pids, the server's (user + system, from /proc).
--   lua5.4 bench/server/scan.lua URL INDEX SIZE MODE...
-- MODE: pit (PIT + search_after on the implicit _shard_doc tiebreaker),
-- scroll (sort _doc), pit3 (the PIT scan in 3 slices, one after the other).
-- Every mode checks that it saw each document exactly once. READ (ids,
-- raw, full: see read_page) says how much of each page the client decodes.
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/5.4/?.so;" .. package.cpath

local curl = require("espipe.transport.curl")
local cm = require("espipe.curl_multi")
local json = require("espipe.json")
local core = require("espipe.core")

local url, index, size = arg[1], arg[2], tonumber(arg[3])
assert(url and index and size and arg[4], "usage: scan.lua URL INDEX SIZE MODE...")

-- CPU seconds (user + system) of the server's workers
local workers = {}
for pid in (os.getenv("WORKERS") or ""):gmatch("%d+") do workers[#workers + 1] = pid end
local hz = tonumber(os.getenv("CLK_TCK") or "") or 100
local function server_cpu()
  local ticks = 0
  for _, pid in ipairs(workers) do
    local f = io.open("/proc/" .. pid .. "/stat")
    if f then
      -- fields 14 and 15 (utime, stime), counted after the ")" that ends the name
      local rest = f:read("*a"):match("%)%s+(.*)")
      f:close()
      local fields = {}
      for x in rest:gmatch("%S+") do fields[#fields + 1] = x end
      ticks = ticks + tonumber(fields[12]) + tonumber(fields[13])
    end
  end
  return ticks / hz
end

local t = curl.new { hosts = { url }, max_inflight = 1, timeout = 600 }

local function call(method, path, body)
  assert(t:submit { method = method, path = path, body = body and json.encode(body) or nil,
                    headers = { ["content-type"] = "application/json" } })
  while true do
    local c = t:poll(1)[1]   -- one request in flight: at most one completion
    if c then
      assert(not c.err, tostring(c.err))
      assert(c.status == 200, path .. " -> " .. tostring(c.status) .. " " .. tostring(c.body))
      return c.body
    end
  end
end

local find, sub, match = string.find, string.sub, string.match

-- A page as { ids = { _id... }, sort = the last hit's sort values,
-- context = its pit_id or _scroll_id (member `context`) }, read as READ says:
--   ids (default): the ids found as text (plain searches for '"_id":"'; the
--     bench documents have no such key), the last sort decoded, nothing
--     else: a client this light leaves the server the limit
--   raw: core.search_response(body, true), as espipe's scans with
--     raw_source read pages (hits decoded, each _source kept as its text)
--   full: json.decode of the whole page
local READ = os.getenv("READ") or "ids"
assert(READ == "ids" or READ == "raw" or READ == "full", "READ must be ids, raw or full")

-- a top-level string member: ES (and espipe serve) write it first
local function field(text, name)
  local head = match(sub(text, 1, 512), '"' .. name .. '":"([^"]*)"')
  if head then return head end
  local _, b = find(text, '"' .. name .. '":"', 1, true)
  return b and match(text, '^[^"]*', b + 1)
end

local function read_page(text, context)
  if READ ~= "ids" then
    local v = READ == "raw" and assert(core.search_response(text, true)) or assert(json.decode(text))
    local ids, hits = {}, v.hits.hits
    for i, h in ipairs(hits) do ids[i] = h._id end
    return { ids = ids, sort = #hits > 0 and hits[#hits].sort or nil, context = v[context] }
  end
  local ids, n, at, last = {}, 0, 1, nil
  while true do
    local a, b = find(text, '_id":"', at, true)
    if not a then break end
    if sub(text, a - 1, a - 1) == '"' then -- not "_scroll_id"
      local e = find(text, '"', b + 1, true)
      n = n + 1
      ids[n] = sub(text, b + 1, e - 1)
      at, last = e + 1, e + 1
    else
      at = b + 1
    end
  end
  local sort = last and match(text, '"sort":(%b[])', last)
  return { ids = ids, sort = sort and json.decode(sort), context = field(text, context) }
end

local expected = json.decode(call("GET", "/" .. index .. "/_count")).count

local function pit_scan(slices)
  local pages, seen, n = 0, {}, 0
  for slice = 0, slices - 1 do
    local pit = json.decode(call("POST", "/" .. index .. "/_pit?keep_alive=1m")).id
    local after
    while true do
      local body = { size = size, pit = { id = pit, keep_alive = "1m" }, search_after = after,
                     track_total_hits = false }
      if slices > 1 then body.slice = { id = slice, max = slices } end
      local r = read_page(call("POST", "/_search", body), "pit_id")
      pit = assert(r.context)
      pages = pages + 1
      if #r.ids == 0 then break end
      for _, id in ipairs(r.ids) do
        assert(not seen[id], "duplicate " .. id)
        seen[id] = true
      end
      n = n + #r.ids
      after = assert(r.sort)
    end
    call("DELETE", "/_pit", { id = pit })
  end
  return pages, n
end

local function scroll_scan()
  local r = read_page(call("POST", "/" .. index .. "/_search?scroll=1m", { size = size, sort = { "_doc" } }),
    "_scroll_id")
  local pages, seen, n = 1, {}, 0
  local id = assert(r.context)
  while #r.ids > 0 do
    for _, d in ipairs(r.ids) do
      assert(not seen[d], "duplicate " .. d)
      seen[d] = true
    end
    n = n + #r.ids
    r = read_page(call("POST", "/_search/scroll", { scroll = "1m", scroll_id = id }), "_scroll_id")
    pages = pages + 1
  end
  call("DELETE", "/_search/scroll", { scroll_id = id })
  return pages, n
end

for i = 4, #arg do
  local mode = arg[i]
  local t0, c0, s0 = cm.now(), os.clock(), server_cpu()
  local pages, n
  if mode == "pit" then pages, n = pit_scan(1)
  elseif mode == "pit3" then pages, n = pit_scan(3)
  elseif mode == "scroll" then pages, n = scroll_scan()
  else error("unknown mode " .. mode) end
  local secs, client = cm.now() - t0, os.clock() - c0
  assert(n == expected, mode .. ": saw " .. n .. " documents, the index has " .. expected)
  local server = #workers > 0 and string.format(", server CPU %.2f us/doc", (server_cpu() - s0) * 1e6 / n) or ""
  print(string.format("%-6s %8d docs %6d pages in %6.2f s = %6.1f pages/s %8.0f docs/s%s, client (READ=%s) CPU %.2f us/doc",
    mode, n, pages, secs, pages / secs, n / secs, server, READ, client * 1e6 / n))
end
t:close()
