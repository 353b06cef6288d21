-- A line reader over a file or stream, transparently decompressing gzip and
-- zstd input (detected by its magic bytes, not by its name). Memory stays
-- bounded: input is read in chunk-sized pieces and a line longer than
-- max_line bytes is an error rather than an ever-growing buffer.
--
--   local r, err = lines.open(path_or_"-"_or_file, { chunk = 65536, max_line = 64 MiB })
--   for line, lineno, offset in r:iter() do ... end   -- offset: byte of the line start
--   r.error   -- set (an errors.new table) when iteration stopped on bad input
--   r:close()
local codec = require "espipe.pipeline.codec"
local errors = require "espipe.errors"

local M = {}
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
    f = f, owned = owned, name = name,
    chunk = opts.chunk or 65536, max_line = opts.max_line or 64 * 1024 * 1024,
    buf = "", pos = 1, offset = 0, lineno = 0, eof = false,
  }, Reader)
  local first = f:read(self.chunk) or ""
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

-- Next piece of decompressed input, or nil at the end (or on error: self.error).
function Reader:more()
  if not self.dec then
    local s = self.f:read(self.chunk)
    return s
  end
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
    local s = self.f:read(self.chunk)
    if s then self.dec:push(s) else self.raw_eof = true end
  end
end

-- Returns line (without "\n" or "\r\n"), line number, byte offset; nil at the end.
function Reader:next()
  while true do
    local nl = self.buf:find("\n", self.pos, true)
    if nl then
      local line = self.buf:sub(self.pos, nl - 1)
      local at = self.offset
      self.offset = self.offset + (nl - self.pos + 1)
      self.pos = nl + 1
      self.lineno = self.lineno + 1
      if line:byte(-1) == 13 then line = line:sub(1, -2) end
      return line, self.lineno, at
    end
    if #self.buf - self.pos + 1 > self.max_line then
      self.error = errors.new { kind = "input", line = self.lineno + 1, offset = self.offset,
        message = self.name .. ": line longer than " .. self.max_line .. " bytes" }
      return nil
    end
    local s = not self.eof and self:more()
    if not s then
      self.eof = true
      if self.pos <= #self.buf and not self.error then
        -- a last line without its newline
        local line = self.buf:sub(self.pos)
        local at = self.offset
        self.offset = self.offset + #line
        self.pos = #self.buf + 1
        self.lineno = self.lineno + 1
        if line:byte(-1) == 13 then line = line:sub(1, -2) end
        return line, self.lineno, at
      end
      return nil
    end
    self.buf = self.buf:sub(self.pos) .. s
    self.pos = 1
  end
end

function Reader:iter()
  return function() return self:next() end
end

function Reader:close()
  if self.owned and self.f then self.f:close() end
  self.f = nil
end

return M
