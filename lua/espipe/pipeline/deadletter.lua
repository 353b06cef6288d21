-- The pipelines' own dead letter for input that never reached Elasticsearch
-- (unparseable lines, transforms that raised). One JSON object per line:
--   {"line":N,"offset":B,"error":"...","bytes":L,"raw_base64":"<the line>"}   (load)
--   {"_id":"...","_index":"...","error":"...","source":<hit _source>}         (reindex)
-- A bad input line is kept exactly, whatever its bytes (invalid UTF-8
-- included), as base64; offset is the byte where the line starts in the
-- (decompressed) input. A line over max_line has no raw_base64 (it was never
-- held in memory): line and offset say where to find it. A bad CSV row
-- keeps its cells re-encoded as one CSV record (a row the parser could not
-- split has none).
-- Opened lazily: no file appears unless something is written.
--   local dl = deadletter.new(path); dl:add(record) / dl:append(bytes) -> true | nil, err
--   dl.count, dl.path; dl:close()
--   deadletter.merge(path, from) -> records moved | nil, err: appends the files
--     of the list from (the workers' dead letters) to path, removing each one
local M = {}
local DL = {}
DL.__index = DL

function M.new(path)
  return setmetatable({ path = path, count = 0 }, DL)
end

-- The record of a bad input line; raw may be nil (a line too long to keep).
function M.bad_line(lineno, offset, why, raw, bytes)
  return { line = lineno, offset = offset, error = why, bytes = raw and #raw or bytes,
           raw_base64 = raw and require("espipe.core").base64_encode(raw) or nil }
end

-- A record M.bad_line wrote (or the older {"raw": ...} form): input, not a document.
function M.is_bad_line(rec)
  return type(rec) == "table" and rec.action == nil and rec.line ~= nil and rec.error ~= nil
end

local function output_error(msg)
  return require("espipe.client.errors").new { kind = "output", message = msg }
end

-- Appends bytes (whole records, newline included) -> true | nil, err.
function DL:append(bytes)
  if not self.f then
    local f, err = require("espipe.pipeline.private_file").open(self.path, "ab")
    if not f then return nil, output_error("cannot open dead letter " .. self.path .. ": " .. tostring(err)) end
    self.f = f
  end
  local ok, err = self.f:write(bytes)
  if ok then ok, err = self.f:flush() end
  if not ok then return nil, output_error("cannot write dead letter " .. self.path .. ": " .. tostring(err)) end
  self.count = self.count + 1
  return true
end

-- One record as a JSON line -> true | nil, err.
function DL:add(entry)
  return self:append(require("espipe.json").encode(entry) .. "\n")
end

function DL:close()
  if self.f then self.f:close() end
  self.f = nil
end

-- Copies one file's lines to dl (a missing file holds nothing), then removes it.
local function move_lines(dl, from)
  local f = io.open(from, "rb")
  if not f then return true end
  for line in f:lines() do
    local ok, err = dl:append(line .. "\n")
    if not ok then f:close() return nil, err end
  end
  f:close()
  os.remove(from)
  return true
end

function M.merge(path, from)
  local dl = M.new(path)
  for _, p in ipairs(from) do
    local ok, err = move_lines(dl, p)
    if not ok then dl:close() return nil, err end
  end
  dl:close()
  return dl.count
end

return M
