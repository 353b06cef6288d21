-- The scale benchmark's CPU-heavy transform: about 30 us of pure Lua per
-- document on the bench machine (ROUNDS rounds of a 32-bit multiplicative
-- hash over the document's text, a path rebuilt segment by segment), so the
-- figures show how the work spreads over cores. bench/scale/transform.py
-- is the same work in Python.
local ROUNDS = 7
local byte, concat, format = string.byte, table.concat, string.format

-- Fields in a fixed order: the same text in Lua and in Python.
local FIELDS = { "request_id", "@timestamp", "host", "path", "country", "user", "status", "bytes" }

local function text_of(doc)
  local parts = {}
  for i, k in ipairs(FIELDS) do parts[i] = tostring(doc[k]) end
  return concat(parts, "|")
end

local function hash(s, rounds)
  local h = 2166136261
  for _ = 1, rounds do
    for i = 1, #s do h = (h * 31 + byte(s, i)) % 4294967296 end
  end
  return h
end

local function rebuilt_path(path)
  local segs = {}
  for seg in tostring(path):gmatch("[^/]+") do segs[#segs + 1] = seg:upper():reverse() end
  return "/" .. concat(segs, "/")
end

return function(doc)
  doc.fingerprint = format("%08x", hash(text_of(doc), ROUNDS))
  doc.path_key = rebuilt_path(doc.path)
  return doc
end
