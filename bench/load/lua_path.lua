-- usage (from the checkout): lua5.4 bench/load/lua_path.lua URL FILE [plain|id|pattern]
-- espipe load with every line through the Lua path (load.c_lines = false):
-- the per-line cost before csrc/bulk_lines.c, in the same run as the C path.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "build/5.4/?.so;" .. package.cpath
local load = require "espipe.pipeline.load"
local client = require("espipe.client").new { hosts = { arg[1] } }
local mode = arg[3] or "plain"
load.c_lines = false
local opts = { client = client, input = arg[2], index = "bench", dead_letter = os.tmpname(), refresh = false }
if mode ~= "plain" then opts.id_field = "request_id" end
if mode == "pattern" then opts.index_pattern = "logs-{@timestamp:%Y.%m}" end
local s, err = load.run(opts)
os.remove(opts.dead_letter)
if not s then error(tostring(err)) end
print("lua path " .. mode .. ": " .. s.ok .. " ok")
