-- Pre-sort for a stream of documents (load --presort, seed 003): documents
-- are held in a window of `size` (the destination's shards x batch_docs),
-- ordered by destination shard (espipe.pipeline.presort) and handed to the
-- bulk indexer a shard at a time: a request ends where the shard changes,
-- so each carries one shard's documents. Successive windows start on
-- successive shards. Memory: one window of documents.
--
--   local w = shard_window.new(ix, params, size)
--   w:add(op, source, meta) -> true | nil, err   (meta._id / meta.routing route it; op "index"|"create")
--   w:flush() -> true | nil, err                 (also what is left at the end)
local presort = require "espipe.pipeline.presort"

local M = {}
local Window = {}
Window.__index = Window

function M.new(ix, params, size)
  return setmetatable({ ix = ix, sorter = presort.new(params), size = size, items = {}, turn = 0 }, Window)
end

function Window:add(op, source, meta)
  local items = self.items
  items[#items + 1] = { op = op, source = source, meta = meta, id = meta._id, routing = meta.routing }
  if #items >= self.size then return self:flush() end
  return true
end

function Window:flush()
  local items = self.items
  if #items == 0 then return true end
  self.items = {}
  local ix, last = self.ix, nil
  self.turn = self.turn + 1
  for _, it in ipairs(self.sorter:order(items, self.turn)) do
    if it.shard ~= last then
      if last ~= nil then ix:ship() end
      last = it.shard
    end
    local ok, err
    if it.op == "create" then ok, err = ix:create(it.source, it.meta) else ok, err = ix:index(it.source, it.meta) end
    if ok == nil and err then return nil, err end
  end
  ix:ship() -- the last shard's documents do not wait for the next window
  return true
end

return M
