-- usage (from the checkout): lua5.4 bench/load/read_lines.lua FILE
-- Reads every line of FILE with espipe's line reader (what espipe load does first).
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/5.4/?.so;" .. package.cpath
local lines = require "espipe.pipeline.lines"
local r = assert(lines.open(arg[1]))
local n, bytes = 0, 0
for line in r:iter() do n = n + 1 bytes = bytes + #tostring(line) end
print(n .. " lines, " .. bytes .. " bytes")
