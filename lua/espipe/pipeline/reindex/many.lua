-- A transform's fan-out result: reindex.many{ doc, doc, ... } marks the list
-- so the copy stage emits each document instead of the list itself.
local M = {}

local many_mt = { __name = "espipe.many" }

function M.new(list)
  if type(list) ~= "table" then error("reindex.many expects a table of documents", 2) end
  return setmetatable(list, many_mt)
end

function M.is(v) return getmetatable(v) == many_mt end

return M
