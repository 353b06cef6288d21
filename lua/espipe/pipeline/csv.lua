-- CSV per RFC 4180: comma separated, fields optionally quoted with '"', a
-- quote inside a quoted field doubled, quoted fields may span lines.
--
--   csv.read(reader) -> fields, lineno, offset | nil (end) | nil, err
--       (err also for a line over the reader's max_line: reading can go on)
--       reader is an espipe.pipeline.lines reader; lineno/offset are those
--       of the record's first line.
--   csv.encode_row(values, ncols) -> "a,\"b,c\",d\n"   (values[i] strings or nil)
--   csv.flatten(doc, json) -> { ["a.b"] = "text", ... }  objects become dotted
--       columns, arrays JSON text, null an empty cell.
--   csv.typed(s) -> number | boolean | nil (empty) | s    for --csv-types
local errors = require "espipe.client.errors"

local M = {}

local function bad(msg, lineno, offset, field)
  return nil, errors.new { kind = "input", message = "CSV: " .. msg, line = lineno, offset = offset, field = field }
end

function M.read(reader)
  local line, lineno, offset, too_long = reader:next()
  if line == false then return nil, too_long end
  if not line then
    if reader.error then return nil, reader.error end
    return nil
  end
  local fields, pos = {}, 1
  while true do
    local n = #fields + 1
    if line:byte(pos) == 34 then -- '"'
      local parts = {}
      pos = pos + 1
      while true do
        local q = line:find('"', pos, true)
        if not q then
          parts[#parts + 1] = line:sub(pos)
          parts[#parts + 1] = "\n"
          local nxt, _, _, over = reader:next()
          if nxt == false then return nil, over end
          if not nxt then
            if reader.error then return nil, reader.error end
            return bad("unterminated quoted field", lineno, offset, tostring(n))
          end
          line, pos = nxt, 1
        elseif line:byte(q + 1) == 34 then
          parts[#parts + 1] = line:sub(pos, q)
          pos = q + 2
        else
          parts[#parts + 1] = line:sub(pos, q - 1)
          pos = q + 1
          break
        end
      end
      fields[n] = table.concat(parts)
      local c = line:byte(pos)
      if c == nil then return fields, lineno, offset end
      if c ~= 44 then
        return bad("unexpected character after a closing quote", reader.lineno, offset, tostring(n))
      end
      pos = pos + 1
    else
      local comma = line:find(",", pos, true)
      local field = line:sub(pos, (comma or 0) - 1)
      if field:find('"', 1, true) then
        return bad("quote inside an unquoted field", reader.lineno, offset, tostring(n))
      end
      fields[n] = field
      if not comma then return fields, lineno, offset end
      pos = comma + 1
    end
  end
end

local function quote(s)
  if s:find('[,"\r\n]') then
    return '"' .. s:gsub('"', '""') .. '"'
  end
  return s
end
M.quote = quote

function M.encode_row(values, ncols)
  local out = {}
  for i = 1, ncols or #values do
    local v = values[i]
    out[i] = v and quote(v) or ""
  end
  return table.concat(out, ",") .. "\n"
end

local function is_array(t, json)
  if json and json.is_array then return json.is_array(t) end
  return t[1] ~= nil
end

local function cell(v, json)
  local t = type(v)
  if t == "string" then return v end
  if t == "boolean" then return v and "true" or "false" end
  if t == "number" then return json and json.encode(v) or tostring(v) end
  if t == "table" then return json.encode(v) end
  return nil -- null
end

local function flatten_into(out, prefix, doc, json)
  for k, v in pairs(doc) do
    local key = prefix and (prefix .. "." .. k) or tostring(k)
    if type(v) == "table" and not is_array(v, json) and next(v) ~= nil then
      flatten_into(out, key, v, json)
    else
      out[key] = cell(v, json)
    end
  end
  return out
end

function M.flatten(doc, json)
  return flatten_into({}, nil, doc, json)
end

function M.typed(s)
  if s == "" then return nil end
  if s == "true" then return true end
  if s == "false" then return false end
  -- JSON number grammar only: no hex, no leading '+', no "1." or ".5"
  if s:find("^%-?%d+$") and not s:find("^%-?0%d") then
    return math.tointeger and math.tointeger(tonumber(s)) or tonumber(s)
  end
  if s:find("^%-?%d+%.%d+$") or s:find("^%-?%d+%.?%d*[eE][%+%-]?%d+$") then
    if not s:find("^%-?0%d") then return tonumber(s) end
  end
  return s
end

return M
