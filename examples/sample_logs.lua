-- Deterministic sample web-server log documents as NDJSON on stdout:
--   lua examples/sample_logs.lua [COUNT]        (default 3000)
-- Same COUNT, same output: a tiny linear congruential generator, no os.time.
local count = tonumber(arg and arg[1]) or 3000
local state = 12345
local function rand(n)
  state = (state * 1103515245 + 12345) % 2147483648
  return state % n
end
local hosts = { "web-1", "web-2", "web-3", "db-1" }
local paths = { "/", "/login", "/api/orders", "/api/users", "/static/app.js", "/health" }
local statuses = { 200, 200, 200, 200, 201, 301, 404, 500, 503 }
local countries = { "DE", "FR", "US", "JP", "BR", "XX" }
local out = {}
for i = 1, count do
  -- three months of 2024, spread evenly
  local day = rand(91)
  local month = day < 31 and 1 or (day < 60 and 2 or 3)
  local mday = day < 31 and day + 1 or (day < 60 and day - 30 or day - 59)
  local ts = string.format("2024-%02d-%02dT%02d:%02d:%02dZ", month, mday, rand(24), rand(60), rand(60))
  out[#out + 1] = string.format(
    '{"request_id":"req-%06d","@timestamp":"%s","host":"%s","path":"%s","status":%d,"bytes":%d,"country":"%s","user":"%s"}',
    i, ts, hosts[rand(#hosts) + 1], paths[rand(#paths) + 1], statuses[rand(#statuses) + 1],
    rand(50000), countries[rand(#countries) + 1], rand(10) == 0 and "" or ("user" .. rand(200)))
  if #out == 1000 then io.write(table.concat(out, "\n"), "\n"); out = {} end
end
if #out > 0 then io.write(table.concat(out, "\n"), "\n") end
