-- The benchmark documents: ~370-byte log events from a seeded LCG, the very
-- same on every Lua version. docs.make(i) -> table (call in order 1, 2, ...).
local M = {}

-- A seeded LCG, so every Lua version sees the very same documents.
local state = 20240601
local function rand(n)
  state = (state * 1103515245 + 12345) % 2147483648
  return state % n
end

local words = { "GET", "POST", "/api/v1/orders", "/checkout", "user", "session",
  "timeout", "upstream", "cache", "miss", "hit", "retrying", "connection",
  "reset", "by", "peer", "served", "in", "ms", "payload", "accepted", "queue" }
local levels = { "debug", "info", "warn", "error" }
local services = { "checkout", "search", "payments", "auth", "catalog" }
local regions = { "eu-west-1", "us-east-1", "ap-south-1" }

local function message()
  local parts, len = {}, 0
  while len < 120 do
    local w = words[rand(#words) + 1]
    parts[#parts + 1] = w
    len = len + #w + 1
  end
  return table.concat(parts, " ")
end

function M.make(i)
  return {
    ["@timestamp"] = string.format("2024-06-%02dT%02d:%02d:%02d.%03dZ",
      rand(28) + 1, rand(24), rand(60), rand(60), rand(1000)),
    service = services[rand(#services) + 1],
    level = levels[rand(#levels) + 1],
    host = { name = string.format("web-%03d", rand(200)), region = regions[rand(#regions) + 1] },
    http = { status = 200 + rand(4) * 100, bytes = rand(1000000) },
    duration_ms = rand(100000) / 100 + 0.25,
    trace_id = i,
    tags = { "prod", regions[rand(#regions) + 1], rand(2) == 0 and "canary" or "stable" },
    message = message(),
  }
end

return M
