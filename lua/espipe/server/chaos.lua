-- Fault injection for the dev server: a parsed --chaos spec plus a seeded
-- generator, so the same seed and the same request sequence give the same
-- faults. Pure Lua (no ngx) so the CLI can validate a spec.
local M = {}

local KEYS = {
  bulk_429 = "rate", item_429 = "rate", ["503"] = "rate", reset = "rate",
  latency = "rate:duration", search_429 = "rate", search_503 = "rate",
}

local function parse_duration(s)
  local n, unit = s:match("^(%d+%.?%d*)(%a*)$")
  n = tonumber(n)
  if not n then return nil end
  local mult = ({ ms = 0.001, s = 1, [""] = 0.001 })[unit]
  if not mult then return nil end
  return n * mult
end

local function parse_rate(s, key)
  local r = tonumber(s)
  if not r or r < 0 or r > 1 then
    return nil, "rate of " .. key .. " must be a number between 0 and 1, got '" .. s .. "'"
  end
  return r
end

-- parse("bulk_429=0.05,latency=0.1:50ms") -> { bulk_429 = 0.05, latency = 0.1,
-- latency_seconds = 0.05 } | nil, message
function M.parse(spec)
  if type(spec) ~= "string" then return nil, "spec must be a string" end
  local out = {}
  for item in spec:gmatch("[^,]+") do
    local key, value = item:match("^%s*([%w_]+)%s*=%s*(.-)%s*$")
    if not key then return nil, "expected key=value, got '" .. item .. "'" end
    local kind = KEYS[key]
    if not kind then
      local known = {}
      for k in pairs(KEYS) do known[#known + 1] = k end
      table.sort(known)
      return nil, "unknown key '" .. key .. "' (known: " .. table.concat(known, ", ") .. ")"
    end
    if kind == "rate" then
      local r, err = parse_rate(value, key)
      if not r then return nil, err end
      out[key] = r
    else
      local rate, dur = value:match("^([^:]+):(.+)$")
      if not rate then return nil, key .. " needs rate:duration, e.g. 0.1:50ms" end
      local r, err = parse_rate(rate, key)
      if not r then return nil, err end
      local d = parse_duration(dur)
      if not d then return nil, "bad duration '" .. dur .. "' for " .. key end
      out[key] = r
      out[key .. "_seconds"] = d
    end
  end
  return out
end

-- Park-Miller minimal standard generator: exact in doubles on every Lua.
local Rng = {}
Rng.__index = Rng

function M.rng(seed)
  local s = math.floor(tonumber(seed) or 1) % 2147483647
  if s <= 0 then s = s + 2147483646 end
  return setmetatable({ state = s }, Rng)
end

function Rng:next()
  self.state = (self.state * 48271) % 2147483647
  return self.state / 2147483647
end

-- true with probability rate (always draws, so the sequence stays aligned).
function Rng:hit(rate)
  local x = self:next()
  return rate ~= nil and rate > 0 and x < rate
end

return M
