-- Counters behind GET /_espipe/stats: per node (requests, documents
-- received, documents for shards the node does not hold = "forwarded"), bulk
-- shape (documents per shard per bulk request) and injected faults.
local M = {}

local nodes_n = 1
local s

function M.reset()
  s = { nodes = {}, chaos = {}, bulk = { requests = 0, items = 0, shard_batches = 0 } }
  for i = 1, nodes_n do
    s.nodes[i] = { requests = 0, bulk_requests = 0, docs = 0, forwarded = 0 }
  end
end

function M.configure(opts)
  nodes_n = opts.nodes or 1
  M.reset()
end

function M.request(node)
  local n = s.nodes[node + 1]
  if n then n.requests = n.requests + 1 end
end

-- a write of `count` documents received by `node`, `foreign` of them for
-- shards held by other nodes
function M.docs(node, count, foreign)
  local n = s.nodes[node + 1]
  if n then
    n.docs = n.docs + count
    n.forwarded = n.forwarded + foreign
  end
end

-- per_shard: shard key -> documents of one bulk request
function M.bulk(node, items, per_shard)
  local n = s.nodes[node + 1]
  if n then n.bulk_requests = n.bulk_requests + 1 end
  local b = s.bulk
  b.requests = b.requests + 1
  b.items = b.items + items
  for _ in pairs(per_shard) do b.shard_batches = b.shard_batches + 1 end
end

function M.chaos(kind, n)
  s.chaos[kind] = (s.chaos[kind] or 0) + (n or 1)
end

function M.snapshot(port)
  local json = require("espipe.server.json")
  local nodes = json.object()
  for i, n in ipairs(s.nodes) do
    nodes["node-" .. (i - 1)] = { port = port + i - 1, requests = n.requests, bulk_requests = n.bulk_requests,
                                  docs = n.docs, forwarded = n.forwarded }
  end
  local b = s.bulk
  local chaos = json.object()
  for k, v in pairs(s.chaos) do chaos[k] = v end
  return {
    nodes = nodes,
    bulk = { requests = b.requests, items = b.items, shard_batches = b.shard_batches,
             docs_per_shard_batch = b.shard_batches > 0 and b.items / b.shard_batches or 0 },
    chaos = chaos,
  }
end

M.reset()
return M
