-- The benchmark document (~350 bytes of JSON), the same for every client:
-- node_bulk.mjs and py_bulk.py build the identical text from i, each in its
-- language's quick idiom. Here that is `..` over precomputed zero-padded
-- numbers: string.format costs a quarter of the generator's time.
local M = {}
local pad2, pad3 = {}, {}
for k = 0, 99 do pad2[k] = string.format("%02d", k) end
for k = 0, 999 do pad3[k] = string.format("%03d", k) end

function M.doc(i)
  local ms = i % 500
  return {
    ["@timestamp"] = "2026-01-" .. pad2[i % 28 + 1] .. "T" .. pad2[i % 24] .. ":" .. pad2[i % 60] .. ":"
      .. pad2[(i * 7) % 60] .. "." .. pad3[i % 1000] .. "Z",
    host = { name = "web-" .. (i % 50), ip = "10." .. (i % 256) .. "." .. ((i // 256) % 256) .. "." .. (i % 200) },
    http = { method = "GET", status = 200 + (i % 5), bytes = i * 37 % 100000 },
    url = "/api/v1/items/" .. i .. "?page=" .. (i % 10) .. "&sort=desc",
    user_agent = "Mozilla/5.0 (X11; Linux x86_64) bench/1.0",
    message = "request " .. i .. " served in " .. ms .. " ms by upstream pool-" .. (i % 8),
    tags = { "bench", "web", i % 2 == 0 and "even" or "odd" },
    latency_ms = ms + 0.25,
  }
end
local json
function M.line(i)
  json = json or require("espipe.json")
  return json.encode(M.doc(i))
end
return M
