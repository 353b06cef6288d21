-- A text sparkline of an auto run's trace (lines "t concurrency batch_bytes"):
--   lua5.4 bench/adaptive/sparkline.lua TRACE
-- Two rows, one character a sample, scaled to the row's own range.
local BARS = { "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█" }
local cs, bs = {}, {}
for line in io.lines(arg[1]) do
  local _, c, b = line:match("^(%S+) (%d+) (%d+)")
  if c then
    cs[#cs + 1] = tonumber(c)
    bs[#bs + 1] = tonumber(b) / 1048576
  end
end
local function row(values)
  local lo, hi = math.huge, -math.huge
  for _, v in ipairs(values) do lo, hi = math.min(lo, v), math.max(hi, v) end
  local out = {}
  for i, v in ipairs(values) do
    local k = hi > lo and math.floor((v - lo) / (hi - lo) * 7 + 0.5) + 1 or 1
    out[i] = BARS[k]
  end
  return table.concat(out), lo, hi
end
local line, lo, hi = row(cs)
io.write(string.format("concurrency %s  (%g..%g, one sample a second)\n", line, lo, hi))
line, lo, hi = row(bs)
io.write(string.format("batch MB    %s  (%.1f..%.1f)\n", line, lo, hi))
