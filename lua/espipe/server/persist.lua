-- The --data store: a metadata log (index definitions, aliases) and one
-- append-only document log per index. Each request's changes to a log are
-- written with a single write(2) before the response is sent, so whatever
-- was acknowledged survives kill -9 (the page cache suffices, no fsync).
local ffi = require("ffi")
local json = require("espipe.server.json")

ffi.cdef [[
int open(const char *path, int flags, int mode);
long write(int fd, const void *buf, unsigned long n);
int close(int fd);
char *strerror(int errnum);
]]

local O_WRONLY, O_CREAT, O_APPEND, O_TRUNC = 1, 64, 1024, 512

local M = {}

local dir
local fds = {}

local function open(path, truncate)
  local fd = ffi.C.open(path, O_WRONLY + O_CREAT + (truncate and O_TRUNC or O_APPEND), 420)
  if fd < 0 then
    return nil, "cannot open " .. path .. ": " .. ffi.string(ffi.C.strerror(ffi.errno()))
  end
  return fd
end

local function write_all(fd, s)
  local off, n = 0, #s
  local p = ffi.cast("const char *", s)
  while off < n do
    local w = ffi.C.write(fd, p + off, n - off)
    if w < 0 then
      local e = ffi.errno()
      if e ~= 4 then return nil, ffi.string(ffi.C.strerror(e)) end -- EINTR: retry
    else
      off = off + tonumber(w)
    end
  end
  return true
end

function M.enabled() return dir ~= nil end

function M.open(data_dir)
  dir = data_dir
end

local function fd_for(name)
  local fd = fds[name]
  if not fd then
    local err
    fd, err = open(dir .. "/" .. name, false)
    if not fd then return nil, err end
    fds[name] = fd
  end
  return fd
end

function M.append(name, s)
  if not dir or s == "" then return true end
  local fd, err = fd_for(name)
  if not fd then return nil, err end
  return write_all(fd, s)
end

function M.remove(name)
  if not dir then return end
  if fds[name] then ffi.C.close(fds[name]) fds[name] = nil end
  os.remove(dir .. "/" .. name)
end

-- Document records: one line each, lengths first so ids may hold any byte.
--   I|shard|seq|version|idlen|routinglen|<id><routing><source>
--   D|shard|seq|version|idlen|routinglen|<id><routing>
-- (routinglen -1 = none; the source has its line breaks turned into spaces,
-- which leaves valid JSON unchanged in meaning.)
function M.doc_record(op, shard, rec)
  local r = rec.r
  local src = ""
  if op == "I" then
    src = rec.src
    if src:find("[\r\n]") then src = src:gsub("[\r\n]", " ") end
  end
  return table.concat({ op, shard, rec.s, rec.v, #rec.id, r and #r or -1, "" }, "|")
    .. rec.id .. (r or "") .. src .. "\n"
end

-- Replays a document log: calls fn(op, shard, seq, version, id, routing, src).
function M.replay_docs(name, fn)
  local f = io.open(dir .. "/" .. name, "rb")
  if not f then return 0 end
  local n = 0
  for line in f:lines() do
    local op, shard, seq, ver, idlen, rlen, pos =
      line:match("^([ID])|(%d+)|(%-?%d+)|(%d+)|(%d+)|(%-?%d+)|()")
    if op then
      idlen, rlen = tonumber(idlen), tonumber(rlen)
      local id = line:sub(pos, pos + idlen - 1)
      pos = pos + idlen
      local routing
      if rlen >= 0 then
        routing = line:sub(pos, pos + rlen - 1)
        pos = pos + rlen
      end
      fn(op, tonumber(shard), tonumber(seq), tonumber(ver), id, routing,
        op == "I" and line:sub(pos) or nil)
      n = n + 1
    end
  end
  f:close()
  return n
end

-- Metadata: JSON lines, the latest record for an index wins.
function M.meta(record)
  return M.append("cluster.log", json.encode(record) .. "\n")
end

function M.replay_meta(fn)
  local f = io.open(dir .. "/cluster.log", "rb")
  if not f then return end
  for line in f:lines() do
    local rec = json.decode(line)
    if rec then fn(rec) end
  end
  f:close()
end

return M
