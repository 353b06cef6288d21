-- A line reader over a file or stream, transparently decompressing gzip and
-- zstd input (detected by its magic bytes, not by its name). Memory stays
-- bounded and time linear: input is read in chunk-sized pieces, a line that
-- spans pieces is gathered in a list and joined once, and a line longer than
-- max_line bytes is skipped to its newline (never held whole) and reported.
--
--   local r, err = lines.open(path_or_"-"_or_file, { chunk = 65536, max_line = 100 MiB,
--                                                   stop = function() -> reason|nil,
--                                                   stop_at = byte (a plain file ends there) })
--   for line, lineno, offset, err in r:iter() do ... end  -- offset: byte of the line start
--     line == false: the line was longer than max_line; err says so (kind "input")
--   r.error    -- set (an errors.new table) when iteration stopped on bad input
--   r.stopped  -- the reason stop() gave, when reading ended because of it
--                 (checked before each read: Ctrl-C ends a job between chunks)
--   r:close()
-- A consumer that splits lines itself (load's C line path) reads the buffer:
--   local buf, pos = r:buffered()   -- the input read so far, unread from pos
--   r:consumed(next_pos, n)         -- it took buf up to next_pos, n whole lines
-- Resuming at a line start a checkpoint saved (offset in the decompressed input):
--   r:skip_to(offset, lineno) -> true | nil, err   -- a plain file is seeked, compressed
--     input is decompressed and dropped up to there; err when the byte before
--     offset is not a newline or the input ends first
local codec = require "espipe.pipeline.codec"
local errors = require "espipe.client.errors"

local find, sub, concat = string.find, string.sub, table.concat

local M = {}
-- Elasticsearch's default http.max_content_length: a longer line cannot be indexed.
M.MAX_LINE = 100 * 1024 * 1024
local Reader = {}
Reader.__index = Reader

function M.open(src, opts)
  opts = opts or {}
  local f, owned, name
  if src == "-" then
    f, name = io.stdin, "stdin"
  elseif type(src) == "string" then
    local err
    f, err = io.open(src, "rb")
    if not f then return nil, errors.new { kind = "input", message = "cannot open " .. src .. ": " .. tostring(err) } end
    owned, name = true, src
  elseif io.type(src) == "file" then
    f, name = src, opts.name or "input"
  else
    error("lines.open: expected a path, \"-\" or a file, got " .. type(src), 2)
  end
  local self = setmetatable({
    f = f, owned = owned, name = name, stop = opts.stop, stop_at = opts.stop_at,
    chunk = opts.chunk or 65536, max_line = opts.max_line or M.MAX_LINE,
    buf = "", pos = 1, offset = 0, lineno = 0, eof = false,
  }, Reader)
  local first = self:_read()
  if self.error and not self.stopped then
    self:close()
    return nil, self.error
  end
  first = first or ""
  self.compression = codec.detect(first)
  if self.compression then
    self.dec = codec.decoder(self.compression)
    self.dec:push(first)
  else
    self.buf = first
    if first == "" then self.eof = true end
  end
  return self
end

-- One read of the underlying file; a read error (EINTR on a signal
-- included) ends the input with self.error.
function Reader:_read()
  if self.stop then
    local why = self.stop()
    if why then self.stopped = why return nil end
  end
  local want = self.chunk
  if self.stop_at then -- (a range of a file: a worker's share)
    want = math.min(want, self.stop_at - (self.f:seek("cur") or 0))
    if want <= 0 then return nil end
  end
  local s, err = self.f:read(want)
  if s == nil and err then
    self.error = errors.new { kind = "input", message = self.name .. ": " .. tostring(err), offset = self.offset }
  end
  if self.stop and not self.stopped then self.stopped = self.stop() end
  return s
end

-- Next piece of decompressed input, or nil at the end (or on error: self.error).
function Reader:more()
  if not self.dec then return self:_read() end
  while true do
    local out, msg, at = self.dec:pull(self.chunk)
    if not out then
      self.error = errors.new { kind = "input", message = self.name .. ": " .. msg, offset = at }
      return nil
    end
    if out ~= "" then return out end
    if self.raw_eof then
      local ok, fmsg, fat = self.dec:finish()
      if not ok then
        self.error = errors.new { kind = "input", message = self.name .. ": " .. fmsg, offset = fat }
      end
      return nil
    end
    local s = self:_read()
    if s then self.dec:push(s) elseif self.error or self.stopped then return nil else self.raw_eof = true end
  end
end

-- A line of len bytes (its "\n" not counted) has been consumed: number it.
function Reader:_took(len, newline)
  local at = self.offset
  self.offset = at + len + (newline and 1 or 0)
  self.lineno = self.lineno + 1
  return self.lineno, at
end

function Reader:_too_long(len, newline)
  local lineno, at = self:_took(len, newline)
  return false, lineno, at, errors.new { kind = "input", line = lineno, offset = at, bytes = len,
    message = self.name .. ": line longer than " .. self.max_line .. " bytes (--max-line-bytes)" }
end

local function chomp(line)
  if line:byte(-1) == 13 then return sub(line, 1, -2) end
  return line
end

-- Returns line (without "\n" or "\r\n"), line number, byte offset; nil at the end.
function Reader:next()
  local buf, pos = self.buf, self.pos
  local nl = find(buf, "\n", pos, true)
  if not nl then return self:_spanning() end
  self.pos = nl + 1
  local len = nl - pos
  if len > self.max_line then return self:_too_long(len, true) end
  local lineno, at = self:_took(len, true)
  return chomp(sub(buf, pos, nl - 1)), lineno, at
end

-- A line that continues past the current piece: gather its parts (or, past
-- max_line, only count them) until its newline or the end of the input.
function Reader:_spanning()
  local parts, len = {}, 0
  while true do
    local tail = self.pos == 1 and self.buf or sub(self.buf, self.pos)
    len = len + #tail
    if parts and len > self.max_line then parts = nil end
    if parts and tail ~= "" then parts[#parts + 1] = tail end
    local s = not self.eof and self:more()
    self.buf, self.pos = s or "", 1
    if not s then
      self.eof = true
      if len == 0 or self.error or self.stopped then return nil end
      if not parts then return self:_too_long(len, false) end
      local lineno, at = self:_took(len, false) -- a last line without its newline
      return chomp(concat(parts)), lineno, at
    end
    local nl = find(s, "\n", 1, true)
    if nl then
      self.pos = nl + 1
      len = len + nl - 1
      if not parts or len > self.max_line then return self:_too_long(len, true) end
      parts[#parts + 1] = sub(s, 1, nl - 1)
      local lineno, at = self:_took(len, true)
      return chomp(concat(parts)), lineno, at
    end
  end
end

function Reader:buffered()
  return self.buf, self.pos
end

function Reader:consumed(next_pos, n)
  self.offset = self.offset + (next_pos - self.pos)
  self.lineno = self.lineno + n
  self.pos = next_pos
end

local function not_a_line_start(self, offset, why)
  return nil, errors.new { kind = "input", offset = offset,
    message = self.name .. ": cannot resume at byte " .. offset .. ": " .. why }
end

-- A plain file jumps straight there (the byte before it read to check it).
function Reader:_seek_to(offset)
  if not self.f:seek("set", offset - 1) then return false end
  local before = self.f:read(1)
  if before == nil then return nil, "the input ends before it" end
  if before ~= "\n" then return nil, "it is not the start of a line" end
  self.buf, self.pos, self.eof, self.offset = "", 1, false, offset
  return true
end

function Reader:skip_to(offset, lineno)
  if offset <= 0 then return true end
  local buffered = #self.buf - self.pos + 1
  if not self.dec and offset > self.offset + buffered then
    local ok, why = self:_seek_to(offset)
    if ok then self.lineno = lineno return true end
    if ok == nil then return not_a_line_start(self, offset, why) end
  end
  local last -- the byte before offset
  while offset - self.offset > #self.buf - self.pos + 1 do
    if #self.buf >= self.pos then last = self.buf:byte(-1) end
    self.offset = self.offset + #self.buf - self.pos + 1
    local s = not self.eof and self:more()
    if not s then
      self.eof, self.buf, self.pos = true, "", 1
      return not_a_line_start(self, offset, self.error and tostring(self.error) or "the input ends before it")
    end
    self.buf, self.pos = s, 1
  end
  local left = offset - self.offset
  if left > 0 then last = self.buf:byte(self.pos + left - 1) end
  self.pos, self.offset, self.lineno = self.pos + left, offset, lineno
  if last ~= 10 then return not_a_line_start(self, offset, "it is not the start of a line") end
  return true
end

function Reader:iter()
  return function() return self:next() end
end

function Reader:close()
  if self.owned and self.f then self.f:close() end
  self.f = nil
end

return M
