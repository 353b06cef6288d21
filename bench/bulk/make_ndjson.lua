-- Writes the benchmark documents as _bulk bodies of `per` documents each
-- (PREFIX.1, PREFIX.2, ...) and prints their paths: the curl ceiling's input.
--   lua5.4 bench/bulk/make_ndjson.lua N per PREFIX
package.path = "./lua/?.lua;" .. package.path
package.cpath = "./build/5.4/?.so;" .. package.cpath
local gen = dofile("bench/bulk/docs.lua")
local n, per, prefix = tonumber(arg[1]), tonumber(arg[2]), arg[3]
local k, f = 0, nil
for i = 1, n do
  if (i - 1) % per == 0 then
    if f then f:close() end
    k = k + 1
    f = assert(io.open(prefix .. "." .. k, "w"))
    print(prefix .. "." .. k)
  end
  f:write('{"index":{"_id":"', i, '"}}\n', gen.line(i), "\n")
end
if f then f:close() end
