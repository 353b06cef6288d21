-- Sliced scrolls and point-in-time searches: which slice a document
-- belongs to, as ES assigns them.
local routing = require("espipe.server.routing")

local M = {}

local floor = math.floor

-- ES: with max <= shards each shard belongs to one slice; with more slices
-- than shards a shard's documents are split further by a hash of the _id
-- (h: the id's hash when the caller keeps it)
function M.slice_of(id, shard, max, shards, h)
  shards = shards or 1
  if max <= shards then return shard % max end
  local in_shard = floor(max / shards) + ((max % shards) > shard and 1 or 0)
  h = h or routing.hash(tostring(id)) or 0
  return shard + (h % in_shard) * shards
end

return M
