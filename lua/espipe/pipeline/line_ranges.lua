-- A plain file cut into byte ranges at line boundaries, one per worker of a
-- load: each cut moves from size x k / n to just past the next newline, so
-- no line is split and the ranges cover the file exactly. Only the bytes
-- around each cut are read.
--
--   line_ranges.split(path, n) -> { { start =, stop = }, ... } (start
--     inclusive, stop exclusive, 0-based; at most n, none empty) | nil, err
local errors = require "espipe.client.errors"

local M = {}

local STEP = 65536

-- The byte just past the first newline at or after `from`, or size.
local function line_end(f, from, size)
  local at = from
  f:seek("set", at)
  while at < size do
    local s = f:read(STEP)
    if not s then break end
    local nl = s:find("\n", 1, true)
    if nl then return at + nl end
    at = at + #s
  end
  return size
end

function M.split(path, n)
  local f, err = io.open(path, "rb")
  if not f then return nil, errors.new { kind = "input", message = "cannot open " .. path .. ": " .. tostring(err) } end
  local size = f:seek("end")
  local out, start = {}, 0
  for k = 1, n do
    local stop = k == n and size or line_end(f, math.max(start, math.floor(size * k / n)), size)
    if stop > start then out[#out + 1] = { start = start, stop = stop } end
    start = stop
  end
  f:close()
  return out
end

return M
