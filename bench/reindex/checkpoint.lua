-- What --checkpoint costs a reindex when the destination is some way off:
-- N documents copied through the fault proxy, which delays every _bulk
-- request by DELAY seconds (default 0.02), once without and once with
-- --checkpoint, by the espipe of each tree given (so trees compare in one
-- run). Prints docs/s per tree and mode, and the ratio.
--   lua5.4 bench/reindex/checkpoint.lua N ESPIPE [ESPIPE...]
package.path = "./lua/?.lua;./lua/?/init.lua;./spec/?.lua;" .. package.path
package.cpath = "./build/5.4/?.so;" .. package.cpath
local devserver = require "support.devserver"
local fault_proxy = require "support.fault_proxy"
local client_mod = require "espipe.client"

local n = tonumber(arg[1]) or 50000
local delay = tonumber(os.getenv("DELAY") or "") or 0.02
local bins = { table.unpack(arg, 2) }
assert(#bins > 0, "usage: checkpoint.lua N ESPIPE [ESPIPE...]")

local server = devserver.start { nodes = 1 }
local proxy
local ok, err = pcall(function()
  local client = client_mod.new { hosts = { server.url } }
  assert(client.indices:create { index = "src", settings = { number_of_shards = 2 } })
  local bi = client:bulk_indexer { index = "src", batch_docs = 2000 }
  for i = 1, n do bi:index({ n = i, s = "document number " .. i, tags = { "a", "b" } }, { id = "d" .. i }) end
  assert(bi:close().ok == n)
  assert(client:refresh { index = "src" })
  proxy = fault_proxy.start { upstream = server.url, seed = 1, max_seconds = 3600,
    rules = { { match = "_bulk", action = "delay", seconds = delay } } }
  local tmp = os.tmpname()
  print(string.format("N = %d, every _bulk delayed %.0f ms", n, delay * 1000))
  print("| espipe | without checkpoint docs/s | with checkpoint docs/s | with / without |")
  print("| --- | --- | --- | --- |")
  for t, bin in ipairs(bins) do
    local rates = {}
    for _, ck in ipairs { false, true } do
      local dest = "d" .. t .. (ck and "c" or "p")
      os.remove(tmp)
      local t0 = require("espipe.curl_multi").now()
      local cmd = bin .. " reindex src " .. dest .. " --slices 2 --quiet --source-url " .. server.url
        .. " --dest-url " .. proxy.url .. (ck and (" --checkpoint " .. tmp) or "") .. " >/dev/null 2>&1"
      local a, _, c = os.execute(cmd)
      assert(a == true and c == 0 or a == 0, "failed: " .. cmd)
      rates[#rates + 1] = n / (require("espipe.curl_multi").now() - t0)
      assert(client:count { index = dest }.count == n or client:refresh { index = dest } and
        client:count { index = dest }.count == n, dest .. " incomplete")
    end
    print(string.format("| %s | %.0f | %.0f | %.2f |", bin, rates[1], rates[2], rates[2] / rates[1]))
  end
  os.remove(tmp)
  os.remove(tmp .. ".tmp")
end)
if proxy then proxy:stop() end
server.stop()
if not ok then error(err, 0) end
