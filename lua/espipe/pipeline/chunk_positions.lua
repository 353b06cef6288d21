-- The checkpoint of a load whose input is handed to workers in chunks
-- (load --workers with compressed input): which parts of the input are
-- done (every line in them indexed or dead-lettered), as the whole job
-- saw them. Each chunk sent is remembered with where it starts in the
-- worker's stream and in the input; a worker's acknowledged stream offset
-- (its own load checkpoint, reported as a record) marks the chunks before
-- it done and the one it is in done up to there. A rerun skips what is
-- done and sends the rest: nothing done is sent again, nothing is lost.
--
--   local pos = chunk_positions.new(saved)   saved: { offset =, ranges = { {a, b}, ... } } or nil
--   pos:next_todo(offset) -> where the input goes on at or after offset (a done part
--     is jumped), and the start of the next done part after it (nil: none)
--   pos:sent(i, stream_bytes, input_offset)   bytes of worker i's stream, from the input at offset
--   pos:acked(i, stream_offset, counts)        worker i's acknowledged stream prefix, counts at it
--   pos:done(a, b)                             input bytes a..b-1 done here (a line dead-lettered)
--   pos:state() -> { offset = every byte before it done, ranges = the done parts after it,
--                    counts = the workers' (of this run) }
local M = {}
local Pos = {}
Pos.__index = Pos

function M.new(saved)
  local self = setmetatable({ parts = {}, streams = {}, acked_counts = {} }, Pos)
  saved = saved or {}
  if (tonumber(saved.offset) or 0) > 0 then self:done(0, tonumber(saved.offset)) end
  for _, r in ipairs(type(saved.ranges) == "table" and saved.ranges or {}) do self:done(r[1], r[2]) end
  return self
end

-- Done parts: sorted, disjoint, adjacent ones joined.
function Pos:done(a, b)
  if b <= a then return end
  local out, placed = {}, false
  for _, p in ipairs(self.parts) do
    if p[2] < a then out[#out + 1] = p
    elseif p[1] > b then
      if not placed then out[#out + 1], placed = { a, b }, true end
      out[#out + 1] = p
    else
      a, b = math.min(a, p[1]), math.max(b, p[2])
    end
  end
  if not placed then out[#out + 1] = { a, b } end
  self.parts = out
end

function Pos:next_todo(offset)
  for _, p in ipairs(self.parts) do
    if offset < p[1] then return offset, p[1] end
    if offset < p[2] then offset = p[2] end
  end
  return offset, nil
end

function Pos:sent(i, bytes, input_offset)
  local s = self.streams[i]
  if not s then
    s = { at = 0, chunks = {} }
    self.streams[i] = s
  end
  s.chunks[#s.chunks + 1] = { from = s.at, to = s.at + bytes, input = input_offset }
  s.at = s.at + bytes
end

function Pos:acked(i, stream_offset, counts)
  self.acked_counts[i] = counts
  local s = self.streams[i]
  if not s then return end
  local keep = {}
  for _, c in ipairs(s.chunks) do
    local upto = math.min(stream_offset, c.to)
    if upto > c.from then self:done(c.input, c.input + upto - c.from) end
    if stream_offset < c.to then keep[#keep + 1] = c end
  end
  s.chunks = keep
end

function Pos:state()
  local parts, offset, ranges = self.parts, 0, {}
  local first = 1
  if parts[1] and parts[1][1] == 0 then offset, first = parts[1][2], 2 end
  for k = first, #parts do ranges[#ranges + 1] = { parts[k][1], parts[k][2] } end
  local counts = {}
  for _, c in pairs(self.acked_counts) do
    for k, v in pairs(c) do counts[k] = (counts[k] or 0) + (tonumber(v) or 0) end
  end
  return { offset = offset, ranges = ranges, counts = counts }
end

return M
