-- Export output: files rotated by size, each written under a temporary name
-- and renamed when complete, then a manifest.json describing them.
--
--   local w = writer.new{ dir = DIR, format = "ndjson"|"csv", ext = "ndjson",
--                         file_bytes = 64 MiB, compress = nil|"gzip"|"zstd",
--                         header = function() return "a,b\n" end }     -- CSV header per file
--   w:write(text, rows)          -- text: whole serialized rows
--   w:add_file(name, rows, bytes [, extra])  -- a part some other writer completed
--   w:close(extra) -> manifest   -- extra fields merged into manifest.json
--   w:bytes_so_far()             -- bytes written, the file in progress included
-- or writer.new{ file = PATH | "-" } for one file without rotation or manifest.
-- on_file = function(w) is called each time a file is complete (renamed into
-- place or registered), e.g. to checkpoint; resume = { files =, index = } goes
-- on after the files of an earlier run (their entries, the next part number).
-- A file in progress is named ".part-00000.ndjson.inprogress"; readers that
-- list DIR only ever see complete part files.
local codec = require "espipe.pipeline.codec"
local errors = require "espipe.client.errors"

local M = {}
local Writer = {}
Writer.__index = Writer

local suffix = { gzip = ".gz", zstd = ".zst" }

function M.new(opts)
  if type(opts) ~= "table" or (not opts.dir and not opts.file) then
    error("writer.new: opts.dir or opts.file is required", 2)
  end
  if opts.compress and not suffix[opts.compress] then
    error("writer.new: compress must be gzip or zstd, got " .. tostring(opts.compress), 2)
  end
  local self = setmetatable({
    dir = opts.dir, file = opts.file, ext = opts.ext or opts.format or "ndjson",
    format = opts.format or "ndjson", file_bytes = opts.file_bytes or 64 * 1024 * 1024,
    compress = opts.compress, header = opts.header, files = {}, rows = 0, bytes = 0,
    index = 0, on_file = opts.on_file,
  }, Writer)
  if opts.resume then
    for _, f in ipairs(opts.resume.files or {}) do
      self.files[#self.files + 1] = f
      self.rows, self.bytes = self.rows + (f.rows or 0), self.bytes + (f.bytes or 0)
    end
    self.index = opts.resume.index or 0
  end
  if self.dir then
    os.execute("mkdir -p '" .. self.dir:gsub("'", "'\\''") .. "'")
  end
  return self
end

function Writer:open_next()
  local name, final, tmp
  if self.dir then
    name = string.format("part-%05d.%s%s", self.index, self.ext, suffix[self.compress] or "")
    final = self.dir .. "/" .. name
    tmp = self.dir .. "/." .. name .. ".inprogress"
  else
    name, final = self.file, self.file
    tmp = self.file ~= "-" and (self.file .. ".inprogress") or nil
  end
  local f, err
  if tmp then f, err = io.open(tmp, "wb") else f = io.stdout end
  if not f then return nil, errors.new { kind = "output", message = "cannot create " .. tmp .. ": " .. tostring(err) } end
  self.cur = { name = name, final = final, tmp = tmp, f = f, rows = 0, bytes = 0,
    enc = self.compress and codec.encoder(self.compress) or nil }
  self.index = self.index + 1
  if self.header then
    local ok, herr = self:put(self.header())
    if not ok then return nil, herr end
  end
  return true
end

function Writer:put(s)
  local c = self.cur
  if c.enc then s = c.enc:compress(s) end
  if s ~= "" then
    local ok, err = c.f:write(s)
    if not ok then return nil, errors.new { kind = "output", message = "writing " .. c.name .. ": " .. tostring(err) } end
    c.bytes = c.bytes + #s
  end
  return true
end

function Writer:close_current()
  local c = self.cur
  if not c then return true end
  self.cur = nil
  if c.enc then
    local tail = c.enc:finish()
    if tail ~= "" then
      local ok, err = c.f:write(tail)
      if not ok then return nil, errors.new { kind = "output", message = "writing " .. c.name .. ": " .. tostring(err) } end
      c.bytes = c.bytes + #tail
    end
  end
  local ok, err = c.f:flush()
  if c.f ~= io.stdout then c.f:close() end
  if not ok then return nil, errors.new { kind = "output", message = "writing " .. c.name .. ": " .. tostring(err) } end
  if c.tmp then
    local rok, rerr = os.rename(c.tmp, c.final)
    if not rok then return nil, errors.new { kind = "output", message = "renaming " .. c.tmp .. ": " .. tostring(rerr) } end
  end
  self.files[#self.files + 1] = { name = c.name, rows = c.rows, bytes = c.bytes }
  self.bytes = self.bytes + c.bytes
  if self.on_file and self.dir then return self.on_file(self) end
  return true
end

-- Bytes written so far, the file in progress included (an export's MB/s).
function Writer:bytes_so_far()
  return self.bytes + (self.cur and self.cur.bytes or 0)
end

function Writer:write(text, rows)
  if not self.cur then
    local ok, err = self:open_next()
    if not ok then return nil, err end
  end
  local ok, err = self:put(text)
  if not ok then return nil, err end
  self.cur.rows = self.cur.rows + (rows or 0)
  self.rows = self.rows + (rows or 0)
  if self.dir and self.cur.bytes >= self.file_bytes then
    return self:close_current()
  end
  return true
end

-- Registers a file some other writer (Parquet) produced, already complete;
-- the fields of extra (e.g. per-column counts) go into its manifest entry.
function Writer:add_file(name, rows, bytes, extra)
  local entry = { name = name, rows = rows, bytes = bytes }
  for k, v in pairs(extra or {}) do entry[k] = v end
  self.files[#self.files + 1] = entry
  self.rows = self.rows + rows
  self.bytes = self.bytes + bytes
  if self.on_file then return self.on_file(self) end
  return true
end

function Writer:abort()
  local c = self.cur
  self.cur = nil
  if c then
    if c.f ~= io.stdout then c.f:close() end
    if c.tmp then os.remove(c.tmp) end
  end
end

function Writer:close(extra, encode)
  if not self.dir and not self.cur and #self.files == 0 then
    -- a single-file export of nothing is still an (empty) file
    local ok, err = self:open_next()
    if not ok then return nil, err end
  end
  local ok, err = self:close_current()
  if not ok then return nil, err end
  local json = require "espipe.json"
  local manifest = { files = json.array(self.files), rows = self.rows, bytes = self.bytes,
    format = self.format, compression = self.compress }
  for k, v in pairs(extra or {}) do manifest[k] = v end
  if self.dir then
    local path = self.dir .. "/manifest.json"
    local f, ferr = require("espipe.pipeline.private_file").open(path .. ".inprogress", "wb")
    if not f then return nil, errors.new { kind = "output", message = "cannot write manifest: " .. tostring(ferr) } end
    encode = encode or json.encode
    f:write(encode(manifest), "\n")
    f:close()
    os.rename(path .. ".inprogress", path)
  end
  return manifest
end

return M
