-- The API-walk floor in time, next to espipe.json and lua-cjson in the same
-- run (see walk_floor.c; bench/json/floor.sh builds it, then runs this):
--   lua5.4 bench/json/floor.lua [docs=20000] [repetitions=5]
package.path = "./lua/?.lua;" .. package.path
package.cpath = "./build/bench/?.so;./build/5.4/?.so;" .. package.cpath

local json = require "espipe.json"
local floor = require "walk_floor"
local cjson = require "cjson"
local make_doc = dofile("bench/json/docs.lua").make

local NDOCS = tonumber(arg[1]) or 20000
local REPS = tonumber(arg[2]) or 5
local docs, lens = {}, {}
for i = 1, NDOCS do
  docs[i] = make_doc(i)
  lens[i] = #json.encode(docs[i])
end

local function best_of(fn)
  local best = math.huge
  for _ = 1, REPS do
    local t0 = os.clock()
    fn()
    best = math.min(best, os.clock() - t0)
  end
  return best / NDOCS * 1e6
end

local walk, walk_push = floor.walk, floor.walk_push
local t = {
  { "walk only", best_of(function() for i = 1, NDOCS do walk(docs[i]) end end) },
  { "walk + result string", best_of(function() for i = 1, NDOCS do walk_push(docs[i], lens[i]) end end) },
  { "espipe.json encode", best_of(function() for i = 1, NDOCS do json.encode(docs[i]) end end) },
  { "cjson encode", best_of(function() for i = 1, NDOCS do cjson.encode(docs[i]) end end) },
}
print(string.format("%s, %d docs, best of %d", _VERSION, NDOCS, REPS))
local cj = t[4][2]
for _, r in ipairs(t) do
  print(string.format("%-22s %6.3f us/doc  cjson/this %.2fx", r[1], r[2], cj / r[2]))
end
