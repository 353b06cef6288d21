-- Not a spec: measures what an index action costs over encoding its source
-- alone (the brief's budget is +10%). Run from the repo root:
--   lua5.4 bench/json/bulk_builder_cost.lua [docs] [rounds] [message bytes per doc]
package.path = "./lua/?.lua;" .. package.path
package.cpath = "./build/5.4/?.so;" .. package.cpath
local core = require "espipe.core"
local bulk = require "espipe.bulk"

local n, rounds, msg = tonumber(arg[1]) or 20000, tonumber(arg[2]) or 7, tonumber(arg[3]) or 0
local docs = {}
for i = 1, n do
  docs[i] = { ["@timestamp"] = "2024-05-01T12:00:00Z", host = "web-" .. i % 17, status = 200 + i % 5,
              bytes = i * 13, path = "/api/v1/items/" .. i, latency = i / 7, tags = { "a", "b" },
              message = msg > 0 and string.rep("lorem ipsum ", msg / 12) or nil }
end

local function best(f)
  local t = math.huge
  for _ = 1, rounds do
    local c = os.clock()
    f()
    t = math.min(t, os.clock() - c)
  end
  return t
end

local encode = core.json_encode
local b = bulk.new()
local t_encode = best(function() for i = 1, n do encode(docs[i]) end end)
local t_index = best(function()
  b:reset()
  for i = 1, n do b:index({ _index = "logs-2024.05", _id = i }, docs[i]) end
end)
local metas = {}
for i = 1, n do metas[i] = { _index = "logs-2024.05", _id = i } end
local t_index_pre = best(function()
  b:reset()
  for i = 1, n do b:index(metas[i], docs[i]) end
end)
local t_index_noid = best(function()
  b:reset()
  for i = 1, n do b:index(nil, docs[i]) end
end)
print(string.format("%d docs (%d bytes each as JSON), best of %d rounds", n, #encode(docs[1]), rounds))
print(string.format("  json_encode(doc) alone           %6.1f ms  %8.0f docs/s", t_encode * 1e3, n / t_encode))
print(string.format("  index(nil, doc)                  %6.1f ms  %.2fx", t_index_noid * 1e3, t_index_noid / t_encode))
print(string.format("  index(prebuilt {_index,_id}, doc) %5.1f ms  %.2fx", t_index_pre * 1e3, t_index_pre / t_encode))
print(string.format("  index({_index=,_id=i}, doc)       %5.1f ms  %.2fx (includes building the meta table in Lua)",
  t_index * 1e3, t_index / t_encode))
