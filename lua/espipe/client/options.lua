-- Option tables checked the same way everywhere: an unknown key is a wrong
-- argument, so it raises naming the key and the nearest valid one
-- (`espipe.load{file = ...}` must not silently read stdin).
--   options.check(opts, known, "espipe.load", level)
-- known: a set { key = true } or a list { "key", ... }.
local type, pairs, tostring, error = type, pairs, tostring, error
local min = math.min

local M = {}

-- Levenshtein distance, two rows: option names are short.
local function distance(a, b)
  local prev, cur = {}, {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    cur[0] = i
    local ca = a:byte(i)
    for j = 1, #b do
      local cost = (ca == b:byte(j)) and 0 or 1
      cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev, cur = cur, prev
  end
  return prev[#b]
end
M.distance = distance

local function as_set(known)
  if known[1] == nil then return known end
  local set = {}
  for _, k in pairs(known) do set[k] = true end
  return set
end

-- The valid key closest to `key`, if it is close enough to be a typo
-- (at most a third of the longer name, at least 1 edit; or a prefix).
function M.nearest(key, known)
  local best, best_d
  for k in pairs(as_set(known)) do
    local d = distance(key, k)
    if k:sub(1, #key) == key or key:sub(1, #k) == k then d = min(d, 1) end
    if best_d == nil or d < best_d or (d == best_d and k < best) then best, best_d = k, d end
  end
  if best and best_d <= math.max(1, math.floor(math.max(#key, #best) / 3)) then return best end
  return nil
end

function M.unknown_message(what, key, known)
  local msg = what .. ": unknown option '" .. tostring(key) .. "'"
  local near = type(key) == "string" and M.nearest(key, known) or nil
  if near then msg = msg .. " (did you mean '" .. near .. "'?)" end
  return msg
end

-- Raises at `level` (default 2, relative to check's caller: its caller's
-- caller sees the error) for the first unknown key, in sorted order so the
-- message does not depend on table iteration order.
function M.check(opts, known, what, level)
  level = (level or 2) + 1
  if type(opts) ~= "table" then
    error(what .. " expects an options table, got " .. type(opts), level)
  end
  local set = as_set(known)
  local bad
  for k in pairs(opts) do
    if not set[k] then
      local s = tostring(k)
      if bad == nil or s < tostring(bad) then bad = k end
    end
  end
  if bad ~= nil then error(M.unknown_message(what, bad, set), level) end
  return opts
end

return M
