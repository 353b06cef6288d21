-- The pipelines' own dead letter for input that never reached Elasticsearch
-- (unparseable lines, transforms that raised). One JSON object per line:
--   {"line":N,"offset":B,"error":"...","raw":"<the input line>"}      (load)
--   {"_id":"...","_index":"...","error":"...","source":<hit _source>} (reindex)
-- Opened lazily: no file appears unless something is written.
local M = {}
local DL = {}
DL.__index = DL

function M.new(path)
  return setmetatable({ path = path, count = 0 }, DL)
end

function DL:write(entry)
  local json = require "espipe.json"
  if not self.f then
    local f, err = require("espipe.private_file").open(self.path, "ab")
    -- losing a dead-letter record would break the accounting: stop the job
    if not f then error(require("espipe.errors").new { kind = "output", message = "cannot open dead letter: " .. tostring(err) }, 0) end
    self.f = f
  end
  self.f:write(json.encode(entry), "\n")
  self.f:flush()
  self.count = self.count + 1
  return true
end

function DL:close()
  if self.f then self.f:close() end
  self.f = nil
end

return M
