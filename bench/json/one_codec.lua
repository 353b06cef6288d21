-- One codec, one direction, for instruction counts under callgrind:
--   lua5.4 bench/json/one_codec.lua espipe|cjson|none encode|decode [docs] [rounds]
-- "none" only builds the documents: subtract it to get the codec's share.
-- "walk" and "walk_push" (encode only) are the API-walk floor of
-- bench/json/walk_floor.c, which bench/json/floor.sh builds. "bulk" (encode
-- only): the bulk builder's index action with { _index = "logs" } as metadata.
package.path = "./lua/?.lua;" .. package.path
local ver = (jit and "luajit") or _VERSION:match("%d+%.%d+")
package.cpath = "./build/" .. ver .. "/?.so;" .. package.cpath

local which, op = arg[1], arg[2]
local NDOCS, ROUNDS = tonumber(arg[3]) or 2000, tonumber(arg[4]) or 10
local json = require "espipe.json"
local make_doc = dofile("bench/json/docs.lua").make

local docs, texts = {}, {}
for i = 1, NDOCS do
  docs[i] = make_doc(i)
  texts[i] = json.encode(docs[i])
end

local codec = ({ espipe = json, cjson = which == "cjson" and require("cjson") })[which]
local fn = function() end
if codec then fn = op == "encode" and codec.encode or codec.decode end
local input = op == "encode" and docs or texts
if which == "walk" or which == "walk_push" then
  package.cpath = "./build/bench/?.so;" .. package.cpath
  local floor = require "walk_floor"
  local walk, walk_push = floor.walk, floor.walk_push
  if which == "walk" then
    for _ = 1, ROUNDS do
      for i = 1, NDOCS do walk(docs[i]) end
    end
  else
    local lens = {}
    for i = 1, NDOCS do lens[i] = #texts[i] end
    for _ = 1, ROUNDS do
      for i = 1, NDOCS do walk_push(docs[i], lens[i]) end
    end
  end
  return
end
if which == "bulk" then
  local b, meta = require("espipe.bulk").new(), { _index = "logs" }
  for _ = 1, ROUNDS do
    for i = 1, NDOCS do b:index(meta, docs[i]) end
    b:reset()
  end
  return
end
for _ = 1, ROUNDS do
  for i = 1, NDOCS do fn(input[i]) end
end
