-- Elasticsearch shard routing, computed exactly as the server does (the C
-- core does the hashing; this module only names things and adds detection).
--
--   routing.hash(s)                       -> signed 32-bit Murmur3 of s's UTF-16LE code units
--   routing.shard{ id=, routing=, shards=, routing_shards=, partition_size=,
--                  func = "legacy"|"modulo", es_major= }  -> shard number (0-based)
--   routing.shards_of(ids, params [, routings]) -> { shard, ... } for a whole batch in one C call
--   routing.default_routing_shards(n [, es_major]) -> index.number_of_routing_shards default
--   routing.detect(observed, params)      -> "legacy" | "modulo" | nil
--
-- Ids and routing values are strings or integers (an integer routes like its
-- decimal string, as Elasticsearch reads a numeric _id). Invalid UTF-8 and bad
-- parameters raise.
local core = require "espipe.core"

local M = {
  hash = core.routing_hash,
  shard = core.routing_shard,
  shards_of = core.routing_shards_of,
  default_routing_shards = core.default_routing_shards,
}

-- Routing values whose shards tell the two functions apart for most shard
-- counts: ask the cluster (GET /{index}/_search_shards?routing=<v>) for each.
M.probes = { "a", "b", "c", "d", "e", "f", "g", "h", "espipe-0", "espipe-1", "espipe-2", "espipe-3" }

-- observed: { [routing value] = shard number as the cluster reported it }.
-- Returns the function name both the cluster and this module agree on, or nil
-- when neither reproduces every observation (or both do, so it is ambiguous).
function M.detect(observed, params)
  if type(observed) ~= "table" then
    error("routing.detect: observed must be a table of routing value -> shard, got " .. type(observed), 2)
  end
  if type(params) ~= "table" then
    error("routing.detect: params must be a table, got " .. type(params), 2)
  end
  local matches = {}
  for _, func in ipairs { "legacy", "modulo" } do
    local p = {}
    for k, v in pairs(params) do p[k] = v end
    p.func = func
    local all = next(observed) ~= nil
    for value, shard in pairs(observed) do
      p.routing = value
      if M.shard(p) ~= shard then
        all = false
        break
      end
    end
    if all then matches[#matches + 1] = func end
  end
  if #matches == 1 then return matches[1] end
  return nil
end

return M
