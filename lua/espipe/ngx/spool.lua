-- The log shipper's on-disk spool: one per nginx worker, a sequence of
-- append-only files of event lines, oldest first.
--
--   local s = spool.open{ dir =, name =, pid =, max_bytes =, file_bytes = } -> s | nil, err
--   s:append(line)        -> true | false (dropped: nothing older could go)
--   s:prepend(lines)      -- lines older than everything spooled (a failed batch)
--   s:oldest()            -> entry, lines | nil   (the oldest file, claimed)
--   s:finish(entry, rest) -- rest: lines of it still to send (nil: all sent)
--   s:rescan()            -> how many files of this name appeared (another process's)
--   s:close(), s:empty(), s.bytes, s.files, s.dropped
--
-- Files are <dir>/<name>-<sequence>-<pid>.spool (the sequence orders them;
-- the pid keeps apart the files of an exiting worker and of the worker that
-- replaces it on a reload, which share a name); a file
-- grows to about file_bytes, then the next one starts. The total stays under
-- max_bytes: past it, the oldest files not being replayed are removed and
-- their events counted in s.dropped. A file found at open() (left by an
-- earlier nginx) is replayed like any other.
local private_file = require "espipe.pipeline.private_file"

local M = {}
local Spool = {}
Spool.__index = Spool

local FIRST_SEQ = 100000000000000 -- room to prepend below and append above

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function file_size(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local n = f:seek("end")
  f:close()
  return n
end

local function read_lines(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local lines = {}
  for line in f:lines() do
    if line ~= "" then lines[#lines + 1] = line end
  end
  f:close()
  return lines
end

function Spool:_path(seq) return string.format("%s/%s-%015d-%d.spool", self.dir, self.name, seq, self.pid) end

local function before(a, b) return a.seq < b.seq or (a.seq == b.seq and a.pid < b.pid) end

-- The files of this name in dir: { seq =, pid =, path = }
local function existing(dir, name)
  local found = {}
  local p = io.popen("ls -1 " .. q(dir) .. " 2>/dev/null")
  if not p then return found end
  local pattern = "^" .. name:gsub("%p", "%%%0") .. "%-(%d+)%-(%d+)%.spool$"
  for file in p:lines() do
    local seq, pid = file:match(pattern)
    if seq then found[#found + 1] = { seq = tonumber(seq), pid = tonumber(pid), path = dir .. "/" .. file } end
  end
  p:close()
  return found
end

function Spool:rescan()
  local known, added = {}, 0
  for _, e in ipairs(self.entries) do known[e.path] = true end
  for _, f in ipairs(existing(self.dir, self.name)) do
    local size = not known[f.path] and file_size(f.path)
    if size then
      local at = #self.entries + 1
      for i, e in ipairs(self.entries) do
        if before(f, e) then at = i break end
      end
      table.insert(self.entries, at, { seq = f.seq, pid = f.pid, path = f.path, bytes = size })
      self.bytes, self.files, added = self.bytes + size, self.files + 1, added + 1
    end
  end
  return added
end

function M.open(o)
  local self = setmetatable({ dir = o.dir:gsub("/+$", ""), name = o.name, pid = o.pid or 0, max_bytes = o.max_bytes,
    file_bytes = o.file_bytes, entries = {}, bytes = 0, files = 0, dropped = 0 }, Spool)
  local probe = self.dir .. "/." .. self.name .. ".probe"
  local f = io.open(probe, "ab")
  if not f then
    os.execute("mkdir -p " .. q(self.dir) .. " 2>/dev/null")
    local err
    f, err = io.open(probe, "ab")
    if not f then return nil, "spool directory " .. self.dir .. " is not writable: " .. tostring(err) end
  end
  f:close()
  os.remove(probe)
  self:rescan()
  return self
end

function Spool:empty() return #self.entries == 0 end

function Spool:_close_tail()
  if self.tail_f then self.tail_f:close() end
  self.tail_f, self.tail = nil, nil
end

local function count_lines(path)
  local lines = read_lines(path)
  return lines and #lines or 0
end

function Spool:_remove(i)
  local e = table.remove(self.entries, i)
  if e == self.tail then self:_close_tail() end
  os.remove(e.path)
  self.bytes, self.files = self.bytes - e.bytes, self.files - 1
  return e
end

-- Makes room for n more bytes by removing the oldest files not being
-- replayed; false when that is not enough.
function Spool:_room(n)
  while self.bytes + n > self.max_bytes do
    local victim
    for i, e in ipairs(self.entries) do
      if not e.claimed then victim = i break end
    end
    if not victim then return false end
    local e = self.entries[victim]
    if e == self.tail then self:_close_tail() end
    self.dropped = self.dropped + count_lines(e.path)
    self:_remove(victim)
  end
  return true
end

local function write_all(f, lines)
  for i = 1, #lines do
    local ok, err = f:write(lines[i], "\n")
    if not ok then return nil, err end
  end
  return f:flush()
end

function Spool:_new_entry(seq, at)
  local e = { seq = seq, pid = self.pid, path = self:_path(seq), bytes = 0 }
  table.insert(self.entries, at or (#self.entries + 1), e)
  self.files = self.files + 1
  return e
end

function Spool:append(line)
  local n = #line + 1
  if not self:_room(n) then
    self.dropped = self.dropped + 1
    return false
  end
  if not self.tail or self.tail.bytes >= self.file_bytes then
    self:_close_tail()
    local last = self.entries[#self.entries]
    local e = self:_new_entry(last and last.seq + 1 or FIRST_SEQ)
    local f, err = private_file.open(e.path, "ab")
    if not f then
      self:_remove(#self.entries)
      error("espipe spool: cannot open " .. e.path .. ": " .. tostring(err), 0)
    end
    self.tail, self.tail_f = e, f
  end
  local ok, err = write_all(self.tail_f, { line })
  if not ok then error("espipe spool: cannot write " .. self.tail.path .. ": " .. tostring(err), 0) end
  self.tail.bytes, self.bytes = self.tail.bytes + n, self.bytes + n
  return true
end

local function bytes_of(lines)
  local n = 0
  for i = 1, #lines do n = n + #lines[i] + 1 end
  return n
end

-- Writes lines to a new file that replaces path (tmp + rename).
local function rewrite(path, lines)
  local tmp = path .. ".tmp"
  local f, err = private_file.open(tmp, "wb")
  if not f then return nil, err end
  local ok, werr = write_all(f, lines)
  f:close()
  if not ok then os.remove(tmp) return nil, werr end
  return os.rename(tmp, path)
end

function Spool:prepend(lines)
  if #lines == 0 then return end
  local first = self.entries[1]
  local e = self:_new_entry(first and first.seq - 1 or FIRST_SEQ, 1)
  local ok, err = rewrite(e.path, lines)
  if not ok then
    table.remove(self.entries, 1)
    self.files = self.files - 1
    error("espipe spool: cannot write " .. e.path .. ": " .. tostring(err), 0)
  end
  e.bytes = bytes_of(lines)
  self.bytes = self.bytes + e.bytes
  self:_room(0)
end

function Spool:oldest()
  local e = self.entries[1]
  if not e then return nil end
  if e == self.tail then self:_close_tail() end
  local lines, err = read_lines(e.path)
  if not lines then error("espipe spool: cannot read " .. e.path .. ": " .. tostring(err), 0) end
  e.claimed = true
  return e, lines
end

function Spool:finish(e, rest)
  e.claimed = nil
  local i
  for k, x in ipairs(self.entries) do if x == e then i = k break end end
  if not i then return end
  if not rest or #rest == 0 then self:_remove(i) return end
  local size = bytes_of(rest)
  if size == e.bytes then return end -- nothing of it went: the file stays as it is
  local ok, err = rewrite(e.path, rest)
  if not ok then error("espipe spool: cannot rewrite " .. e.path .. ": " .. tostring(err), 0) end
  self.bytes, e.bytes = self.bytes - e.bytes + size, size
end

function Spool:close() self:_close_tail() end

return M
