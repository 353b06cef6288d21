-- Whole lines of a line reader (espipe.pipeline.lines) in chunks of about
-- its read size, for handing to workers over a pipe (load --workers with
-- compressed input or stdin): the text goes as it was read, up to the last
-- newline of what is buffered; a line spanning pieces is gathered by the
-- reader. A line longer than its max_line is not held: it is reported.
--
--   local chunks = line_chunks.new(reader)
--   chunks:next([stop]) -> text (whole lines, each with its "\n") | nil at the end
--                    | false, err (a line over max_line: err names its offset and length)
--     stop: a line start (input offset) the text must end at or before
local M = {}
local Chunks = {}
Chunks.__index = Chunks

function M.new(reader) return setmetatable({ reader = reader }, Chunks) end

-- The position just past the last newline of buf at or after pos, or nil.
local function last_newline(buf, pos)
  for i = #buf, pos, -1 do
    if buf:byte(i) == 10 then return i end
  end
end

-- The whole lines buffered (up to stop), or nil when there are none.
function Chunks:_buffered(stop)
  local r = self.reader
  local buf, pos = r:buffered()
  local cut = pos <= #buf and last_newline(buf, pos)
  if stop and cut and stop - r.offset < cut - pos + 1 then cut = pos + (stop - r.offset) - 1 end
  if not cut or cut < pos then return nil end
  r:consumed(cut + 1, 0)
  return buf:sub(pos, cut)
end

function Chunks:next(stop)
  local text = self:_buffered(stop)
  if text then return text end
  local line, _, _, err = self.reader:next() -- (the one spanning the buffer's end)
  if line == nil then return nil end
  if line == false then return false, err end
  -- with the whole lines of the piece it ended in
  return line .. "\n" .. (self:_buffered(stop) or "")
end

return M
