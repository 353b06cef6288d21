-- The part of the transport seam both transports share: the host list
-- (round-robin over the live configured hosts, a failed host set aside for
-- dead_host_retry seconds, hosts added later for pinned requests only) and
-- the query string of a request. The transports differ only in how they
-- parse a host URL and move bytes.
--
--   local hosts = require("espipe.transport.hosts")
--   local list = hosts.new(records, dead_host_retry)  -- records: { { url =, ... }, ... }
--   list:pick(now) -> index    list:get(i) -> record    list:count()
--   list:add(record) -> index  (pinned only; a known url returns its index)
--   list:set_aside(i, now)     list:revive(i)           list:urls() -> { url, ... }
--   hosts.query(q, level) -> "a=1&b=x%20y" | nil
local type, pairs, ipairs, tostring, error, setmetatable = type, pairs, ipairs, tostring, error, setmetatable
local concat, sort, format, floor = table.concat, table.sort, string.format, math.floor

local M = {}
local List = {}
List.__index = List

function M.new(records, dead_host_retry)
  return setmetatable({ records = records, next = 1, dead_host_retry = dead_host_retry }, List)
end

function List:count()
  return #self.records
end

function List:get(i)
  return self.records[i]
end

function List:urls()
  local out = {}
  for i, h in ipairs(self.records) do out[i] = h.url end
  return out
end

-- Round-robin over live hosts; when all are dead, the one dead longest.
-- Hosts added by add() only take requests pinned to them.
function List:pick(now)
  local records = self.records
  local n = #records
  local oldest, oldest_since
  for step = 0, n - 1 do
    local i = (self.next - 1 + step) % n + 1
    local h = records[i]
    if not h.pinned_only then
      if not h.dead_until or h.dead_until <= now then
        self.next = i % n + 1
        return i
      end
      if not oldest_since or h.dead_since < oldest_since then
        oldest, oldest_since = i, h.dead_since
      end
    end
  end
  self.next = oldest % n + 1
  return oldest
end

-- A node found later (shard-aware bulk): it joins no round-robin; a URL
-- already known returns its index.
function List:add(record)
  for i, known in ipairs(self.records) do
    if known.url == record.url then return i end
  end
  record.pinned_only = true
  self.records[#self.records + 1] = record
  return #self.records
end

-- The host did not answer: skipped for dead_host_retry seconds. dead_since
-- is when this run of failures began (the one dead longest is tried first
-- when all are set aside).
function List:set_aside(i, now)
  local h = self.records[i]
  h.dead_since = h.dead_until and h.dead_until > now and h.dead_since or now
  h.dead_until = now + self.dead_host_retry
end

-- The host answered: live again.
function List:revive(i)
  local h = self.records[i]
  h.dead_until, h.dead_since = nil, nil
end

----------------------------------------------------------------------------
-- Query strings

local function escape(s)
  return (s:gsub("[^%w%-%._~,*]", function(c) return format("%%%02X", c:byte()) end))
end

-- A value the way Elasticsearch parses it: true/false, integers without
-- ".0", arrays joined by commas.
local function value_string(v, key, level)
  local t = type(v)
  if t == "string" then return v end
  if t == "boolean" then return v and "true" or "false" end
  if t == "number" then
    return (v == floor(v) and v > -2^63 and v < 2^63) and format("%d", v) or tostring(v)
  end
  if t == "table" then
    local parts = {}
    for i = 1, #v do parts[i] = value_string(v[i], key, level + 1) end
    return concat(parts, ",")
  end
  error("query." .. tostring(key) .. " must be a string, number, boolean or array, got " .. t, level + 1)
end

-- q: nil, a string (sent as it is) or a table of parameters; keys sorted,
-- so the same request gives the same URL. level: whose caller is wrong.
function M.query(q, level)
  level = (level or 1) + 1
  if q == nil then return nil end
  if type(q) == "string" then return q ~= "" and q or nil end
  if type(q) ~= "table" then error("query must be a string or a table", level) end
  local keys = {}
  for k in pairs(q) do
    if type(k) ~= "string" then error("query keys must be strings", level) end
    keys[#keys + 1] = k
  end
  sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = escape(k) .. "=" .. escape(value_string(q[k], k, level)) end
  return #parts > 0 and concat(parts, "&") or nil
end

return M
