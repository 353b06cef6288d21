-- Column names for nested Parquet fields: a field's own name wherever
-- Athena (quoted), Glue and DuckDB can take it, so `@timestamp` and `café`
-- stay as they are. Renamed are only names those engines cannot hold: empty
-- ones, ones with a dot (Glue and Spark read it as nesting), with a
-- character of Hive's type syntax (: , < > ` ") or a control character,
-- longer than 255 bytes, or equal to a sibling's name but for case (Glue and
-- Athena lowercase names). Bad characters become "_", a clash gets _2, _3.
local M = {}

local BAD = "[%c%.:,<>`\"]"

--- The name `key` needs (before clashes are resolved).
function M.acceptable(key)
  if type(key) ~= "string" then
    error("acceptable expects a string, got " .. type(key), 2)
  end
  local s = key:gsub(BAD, "_")
  if #s > 255 then s = s:sub(1, 255) end
  if s == "" then s = "_" end
  return s
end

local function assign_level(fields, rename, renamed)
  local used = {}
  for _, f in ipairs(fields) do
    local wanted = f.field and rename[f.field]
    local base = wanted or M.acceptable(f.key or f.name)
    local name, n = base, 1
    while used[name:lower()] do
      n = n + 1
      name = base .. "_" .. n
    end
    used[name:lower()] = true
    f.name = name
    if name ~= (f.key or f.name) and f.field then
      renamed[#renamed + 1] = { field = f.field, column = name }
    end
    local inner = f
    while inner.type == "list" do inner = inner.element end
    if inner.type == "struct" then assign_level(inner.fields, rename, renamed) end
  end
end

--- The fields whose column name differs from their key, in order:
-- { { field =, column = }, ... } (what assign returned, from the columns alone).
function M.renamed(fields)
  local out = {}
  local function walk(list)
    for _, f in ipairs(list) do
      if f.key and f.field and f.name ~= f.key then out[#out + 1] = { field = f.field, column = f.name } end
      local inner = f
      while inner.type == "list" do inner = inner.element end
      if inner.type == "struct" then walk(inner.fields) end
    end
  end
  walk(fields or {})
  return out
end

--- Set `name` on every field (top-level and inside structs); rename maps a
-- field path to the name it must get. -> { { field =, column = }, ... }
function M.assign(fields, rename)
  local renamed = {}
  assign_level(fields, rename or {}, renamed)
  return renamed
end

return M
