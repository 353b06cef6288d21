-- Ordered JSON objects for aggregation results: keys are written in the
-- order they were put, as Elasticsearch writes them (a Lua table has none).
--   obj() -> o; put(o, key, value) -> o; get(o, key) -> value
--   list() -> an array of results; encode(v) -> JSON text
local json = require("espipe.server.json")

local M = {}

local OBJ = { __name = "espipe.server.agg_output.obj" }
local LIST = { __name = "espipe.server.agg_output.list" }

function M.obj() return setmetatable({ n = 0, k = {}, v = {} }, OBJ) end
function M.list() return setmetatable({}, LIST) end

function M.put(o, key, value)
  local n = o.n + 1
  o.n, o.k[n], o.v[n] = n, key, value
  return o
end

function M.get(o, key)
  for i = 1, o.n do
    if o.k[i] == key then return o.v[i] end
  end
  return nil
end

local function encode_into(v, buf)
  local mt = getmetatable(v)
  if mt == OBJ then
    buf[#buf + 1] = "{"
    for i = 1, v.n do
      if i > 1 then buf[#buf + 1] = "," end
      buf[#buf + 1] = json.encode(tostring(v.k[i]))
      buf[#buf + 1] = ":"
      encode_into(v.v[i], buf)
    end
    buf[#buf + 1] = "}"
  elseif mt == LIST then
    buf[#buf + 1] = "["
    for i, el in ipairs(v) do
      if i > 1 then buf[#buf + 1] = "," end
      encode_into(el, buf)
    end
    buf[#buf + 1] = "]"
  else
    buf[#buf + 1] = json.encode(v)
  end
end

function M.encode(v)
  local buf = {}
  encode_into(v, buf)
  return table.concat(buf)
end

return M
