-- Test helpers for the JSON specs: a deep equality that tells integer from
-- float (5.3+), array from object and the sign of zero, and the listing that
-- listing.py prints, made from a decoded Lua value.
local json = require "espipe.json"

local M = {}

M.has_integers = math.type ~= nil

local function num_kind(x)
  if M.has_integers then return math.type(x) end
  return "number"
end

-- nil when equal, else a description of the first difference.
function M.diff(a, b, path)
  path = path or "$"
  if type(a) ~= type(b) then
    return path .. ": " .. type(a) .. " vs " .. type(b)
  end
  if type(a) == "number" then
    if num_kind(a) ~= num_kind(b) then
      return path .. ": " .. num_kind(a) .. " vs " .. num_kind(b)
    end
    if a ~= b and not (a ~= a and b ~= b) then
      return path .. ": " .. string.format("%.17g vs %.17g", a, b)
    end
    if a == 0 and 1 / a ~= 1 / b then
      return path .. ": zero of a different sign"
    end
    return nil
  end
  if type(a) ~= "table" then
    if a ~= b then return path .. ": " .. tostring(a) .. " vs " .. tostring(b) end
    return nil
  end
  if json.is_array(a) ~= json.is_array(b) then
    return path .. ": array vs object"
  end
  for k, v in pairs(a) do
    local d = M.diff(v, b[k], path .. "/" .. tostring(k))
    if d then return d end
  end
  for k in pairs(b) do
    if a[k] == nil then return path .. "/" .. tostring(k) .. ": missing on the left" end
  end
  return nil
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function number(x)
  if M.has_integers then
    if math.type(x) == "integer" then return "int " .. string.format("%d", x) end
    return "float " .. string.format("%.17g", x)
  end
  if x == 0 then x = 0 end
  return "num " .. string.format("%.17g", x)
end

-- The same lines listing.py prints, sorted.
function M.listing(v)
  local out = {}
  local function walk(x, path)
    if x == json.null then
      out[#out + 1] = path .. " null"
    elseif type(x) == "boolean" then
      out[#out + 1] = path .. " " .. tostring(x)
    elseif type(x) == "number" then
      out[#out + 1] = path .. " " .. number(x)
    elseif type(x) == "string" then
      out[#out + 1] = path .. " string " .. hex(x)
    elseif json.is_array(x) then
      out[#out + 1] = path .. " array " .. #x
      for i = 1, #x do walk(x[i], path .. "/" .. i) end
    else
      local n = 0
      for k, y in pairs(x) do
        n = n + 1
        walk(y, path .. "/k" .. hex(k))
      end
      out[#out + 1] = path .. " object " .. n
    end
  end
  walk(v, "$")
  table.sort(out)
  return out
end

function M.read(name)
  local f = assert(io.open(name, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

M.corpus_dir = "spec/json/corpus"

function M.corpus_files()
  local names = {}
  local p = assert(io.popen("ls " .. M.corpus_dir))
  for line in p:lines() do
    if line:match("%.json$") then names[#names + 1] = M.corpus_dir .. "/" .. line end
  end
  p:close()
  return names
end

return M
