-- Dev server search-path benchmark: pages a match_all scan of an index of
-- N documents through one kept-alive connection (espipe's curl transport)
-- and prints one line per mode: pages, docs, seconds, pages/s, docs/s.
--   lua5.4 bench/server/scan.lua URL INDEX SIZE MODE...
-- MODE: pit (PIT + search_after on the implicit _shard_doc tiebreaker),
-- scroll (sort _doc), pit3 (the PIT scan in 3 slices, one after the other).
-- Every mode checks that it saw each document exactly once.
package.path = "./lua/?.lua;./lua/?/init.lua;" .. package.path
package.cpath = "./build/5.4/?.so;" .. package.cpath

local curl = require("espipe.transport.curl")
local cm = require("espipe.curl_multi")
local json = require("espipe.json")

local url, index, size = arg[1], arg[2], tonumber(arg[3])
assert(url and index and size and arg[4], "usage: scan.lua URL INDEX SIZE MODE...")

local t = curl.new { hosts = { url }, max_inflight = 1, timeout = 600 }

local function call(method, path, body)
  assert(t:submit { method = method, path = path, body = body and json.encode(body) or nil,
                    headers = { ["content-type"] = "application/json" } })
  while true do
    for _, c in ipairs(t:poll(1)) do
      assert(not c.err, tostring(c.err))
      assert(c.status == 200, path .. " -> " .. tostring(c.status) .. " " .. tostring(c.body))
      return json.decode(c.body)
    end
  end
end

local expected = call("GET", "/" .. index .. "/_count").count

local function pit_scan(slices)
  local pages, seen, n = 0, {}, 0
  for slice = 0, slices - 1 do
    local pit = call("POST", "/" .. index .. "/_pit?keep_alive=1m").id
    local after
    while true do
      local body = { size = size, pit = { id = pit, keep_alive = "1m" }, search_after = after,
                     track_total_hits = false }
      if slices > 1 then body.slice = { id = slice, max = slices } end
      local r = call("POST", "/_search", body)
      pit = r.pit_id
      pages = pages + 1
      local hits = r.hits.hits
      if #hits == 0 then break end
      for _, h in ipairs(hits) do
        assert(not seen[h._id], "duplicate " .. h._id)
        seen[h._id] = true
      end
      n = n + #hits
      after = hits[#hits].sort
    end
    call("DELETE", "/_pit", { id = pit })
  end
  return pages, n
end

local function scroll_scan()
  local r = call("POST", "/" .. index .. "/_search?scroll=1m", { size = size, sort = { "_doc" } })
  local pages, seen, n = 1, {}, 0
  local id = r._scroll_id
  while #r.hits.hits > 0 do
    for _, h in ipairs(r.hits.hits) do
      assert(not seen[h._id], "duplicate " .. h._id)
      seen[h._id] = true
    end
    n = n + #r.hits.hits
    r = call("POST", "/_search/scroll", { scroll = "1m", scroll_id = id })
    pages = pages + 1
  end
  call("DELETE", "/_search/scroll", { scroll_id = id })
  return pages, n
end

for i = 4, #arg do
  local mode = arg[i]
  local t0 = cm.now()
  local pages, n
  if mode == "pit" then pages, n = pit_scan(1)
  elseif mode == "pit3" then pages, n = pit_scan(3)
  elseif mode == "scroll" then pages, n = scroll_scan()
  else error("unknown mode " .. mode) end
  local secs = cm.now() - t0
  assert(n == expected, mode .. ": saw " .. n .. " documents, the index has " .. expected)
  print(string.format("%-6s %8d docs %6d pages in %7.2f s = %7.1f pages/s %9.0f docs/s",
    mode, n, pages, secs, pages / secs, n / secs))
end
t:close()
