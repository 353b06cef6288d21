-- The benchmark document (~350 bytes of JSON), the same for every client:
-- bench/bulk/docs.py and docs.mjs build the identical text from i.
local M = {}
local fmt = string.format
function M.doc(i)
  return {
    ["@timestamp"] = fmt("2026-01-%02dT%02d:%02d:%02d.%03dZ", i % 28 + 1, i % 24, i % 60, (i * 7) % 60, i % 1000),
    host = { name = "web-" .. (i % 50), ip = fmt("10.%d.%d.%d", i % 256, (i // 256) % 256, i % 200) },
    http = { method = "GET", status = 200 + (i % 5), bytes = i * 37 % 100000 },
    url = fmt("/api/v1/items/%d?page=%d&sort=desc", i, i % 10),
    user_agent = "Mozilla/5.0 (X11; Linux x86_64) bench/1.0",
    message = fmt("request %d served in %d ms by upstream pool-%d", i, i % 500, i % 8),
    tags = { "bench", "web", i % 2 == 0 and "even" or "odd" },
    latency_ms = (i % 500) + 0.25,
  }
end
local json
function M.line(i)
  json = json or require("espipe.json")
  return json.encode(M.doc(i))
end
return M
