-- A least-recently-used cache bounded by its number of entries: lookups
-- that repeat (the same user, the same product) are answered from memory,
-- and memory stays bounded however many distinct keys a job meets.
--
--   local cache = lru.new(10000)
--   cache:get(key) -> value | nil      (a hit makes the entry the most recent)
--   cache:set(key, value)              (nil removes; over the limit the least recent goes)
--   cache.count, cache.limit, cache.hits, cache.misses
-- Values may be false (a remembered "not found").
local M = {}
local Cache = {}
Cache.__index = Cache

function M.new(limit)
  if type(limit) ~= "number" or limit < 1 or limit % 1 ~= 0 then
    error("lru.new: the limit must be a whole number of entries >= 1, got " .. tostring(limit), 2)
  end
  -- a ring with a sentinel: head.next is the most recent, head.prev the least
  local head = {}
  head.next, head.prev = head, head
  return setmetatable({ limit = limit, count = 0, hits = 0, misses = 0, nodes = {}, head = head }, Cache)
end

local function unlink(node)
  node.prev.next, node.next.prev = node.next, node.prev
end

local function push_front(head, node)
  node.next, node.prev = head.next, head
  head.next.prev = node
  head.next = node
end

function Cache:get(key)
  local node = self.nodes[key]
  if not node then
    self.misses = self.misses + 1
    return nil
  end
  self.hits = self.hits + 1
  unlink(node)
  push_front(self.head, node)
  return node.value
end

function Cache:set(key, value)
  if key == nil then error("cache:set: the key must not be nil", 2) end
  local nodes, node = self.nodes, self.nodes[key]
  if node then
    unlink(node)
    if value == nil then
      nodes[key], self.count = nil, self.count - 1
      return
    end
    node.value = value
    push_front(self.head, node)
    return
  end
  if value == nil then return end
  node = { key = key, value = value }
  nodes[key] = node
  push_front(self.head, node)
  self.count = self.count + 1
  if self.count > self.limit then
    local oldest = self.head.prev
    unlink(oldest)
    nodes[oldest.key], self.count = nil, self.count - 1
  end
end

return M
