-- JSON codec benchmark: espipe.json against lua-cjson (and the bulk builder
-- when espipe.core has one) on the same deterministic ~350-byte log documents.
-- Usage, from the repo root:  lua5.4 bench/json/run.lua [docs] [repetitions]
package.path = "./lua/?.lua;" .. package.path
local ver = (jit and "luajit") or _VERSION:match("%d+%.%d+")
package.cpath = "./build/" .. ver .. "/?.so;" .. package.cpath

local json = require "espipe.json"
local ok_cjson, cjson = pcall(require, "cjson")

local NDOCS = tonumber(arg[1]) or 20000
local REPS = tonumber(arg[2]) or 5

local make_doc = dofile("bench/json/docs.lua").make

local docs, texts, total_bytes = {}, {}, 0
for i = 1, NDOCS do
  docs[i] = make_doc(i)
  texts[i] = json.encode(docs[i])
  total_bytes = total_bytes + #texts[i]
end

local function best_of(fn)
  local best = math.huge
  for _ = 1, REPS do
    local t0 = os.clock()
    fn()
    local dt = os.clock() - t0
    if dt < best then best = dt end
  end
  return best
end

local function run_encode(encode)
  return best_of(function()
    for i = 1, NDOCS do encode(docs[i]) end
  end)
end

local function run_decode(decode)
  return best_of(function()
    for i = 1, NDOCS do decode(texts[i]) end
  end)
end

local results = {}
local function report(name, seconds)
  local rate = NDOCS / seconds
  results[name] = rate
  print(string.format("%-28s %10.0f docs/s %8.1f MB/s", name, rate, total_bytes / seconds / 1e6))
end

print(string.format("%s, %d docs, average %.0f bytes, best of %d", jit and jit.version or _VERSION,
  NDOCS, total_bytes / NDOCS, REPS))
report("espipe.json encode", run_encode(json.encode))
if ok_cjson then report("cjson encode", run_encode(cjson.encode)) end
report("espipe.json decode", run_decode(json.decode))
if ok_cjson then report("cjson decode", run_decode(cjson.decode)) end

-- The bulk builder: one index action per document, table sources.
local ok_bulk, bulk = pcall(require, "espipe.bulk")
if ok_bulk then
  local b = bulk.new()
  local meta = { _index = "logs" }
  report("bulk builder index+source", best_of(function()
    for i = 1, NDOCS do b:index(meta, docs[i]) end
    b:reset()
  end))
else
  print("bulk builder: not available (" .. tostring(bulk) .. ")")
end

if ok_cjson then
  print(string.format("ratio encode espipe/cjson %.2fx (target >= 3)",
    results["espipe.json encode"] / results["cjson encode"]))
  print(string.format("ratio decode espipe/cjson %.2fx (target >= 1.5)",
    results["espipe.json decode"] / results["cjson decode"]))
end
if results["bulk builder index+source"] then
  print(string.format("bulk builder vs encode alone %.2fx (target >= 0.9)",
    results["bulk builder index+source"] / results["espipe.json encode"]))
end
