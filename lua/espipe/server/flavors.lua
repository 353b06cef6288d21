-- The versions `espipe serve --flavor` answers as. Each flavour is the
-- version block its GET / returns (the numbers of a real release of that
-- line); what differs on the wire follows from the version number through
-- espipe.client.version, the same table the client adapts by, so the dev
-- server and the client cannot disagree about which release does what.
local version = require("espipe.client.version")

local M = {}

local ES_TAGLINE = "You Know, for Search"
local OPENSEARCH_TAGLINE = "The OpenSearch Project: https://opensearch.org/"

-- One row a flavour: the release, its Lucene, and the oldest versions it
-- talks to (wire) and reads indices of (index), as that release's GET / says.
local function release(number, lucene_version, wire, index, distribution)
  return { number = number, lucene_version = lucene_version, distribution = distribution,
           minimum_wire_compatibility_version = wire,
           minimum_index_compatibility_version = index }
end

local blocks = {
  ["es-6.8"] = release("6.8.23", "7.7.3", "5.6.0", "5.0.0"),
  -- 7.10: the first point in time, without _shard_doc; 7.12: with it; neither slices one
  ["es-7.10"] = release("7.10.2", "8.7.0", "6.8.0", "6.0.0-beta1"),
  ["es-7.12"] = release("7.12.1", "8.8.0", "6.8.0", "6.0.0-beta1"),
  ["es-7.17"] = release("7.17.22", "8.11.3", "6.8.0", "6.0.0-beta1"),
  ["es-8.15"] = release("8.15.0", "9.11.1", "7.17.0", "7.0.0"),
  ["es-9"] = release("9.0.0", "10.1.0", "8.18.0", "8.0.0"),
  ["opensearch-2"] = release("2.11.1", "9.7.0", "7.10.0", "7.0.0", "opensearch"),
}

M.DEFAULT = "es-8.15"

-- Names for --help and error messages, in a stable order.
function M.names()
  local names = {}
  for name in pairs(blocks) do names[#names + 1] = name end
  table.sort(names)
  return names
end

-- flavors.get(name) -> { name, tagline, version = GET /'s block, wire = profile },
-- or nil and a message naming the valid flavours.
function M.get(name)
  local b = blocks[name or M.DEFAULT]
  if not b then
    return nil, "unknown flavor '" .. tostring(name) .. "' (one of " .. table.concat(M.names(), ", ") .. ")"
  end
  local block = {
    number = b.number, build_type = "docker", build_hash = "espipe-dev-server",
    build_date = "2024-08-05T10:05:34.233336849Z", build_snapshot = false,
    lucene_version = b.lucene_version,
    minimum_wire_compatibility_version = b.minimum_wire_compatibility_version,
    minimum_index_compatibility_version = b.minimum_index_compatibility_version,
  }
  -- OpenSearch names its distribution and has no build_flavor
  if b.distribution then block.distribution = b.distribution else block.build_flavor = "default" end
  return {
    name = name or M.DEFAULT,
    tagline = b.distribution and OPENSEARCH_TAGLINE or ES_TAGLINE,
    version = block,
    wire = assert(version.parse(b.number, b.distribution)),
  }
end

-- The wire profile of the running server (opts.flavor from `espipe serve`),
-- cached: handlers ask on every request.
local cached_name, cached_wire
function M.wire_of(opts)
  local name = opts and opts.flavor or M.DEFAULT
  if name ~= cached_name then
    cached_wire = assert(M.get(name)).wire
    cached_name = name
  end
  return cached_wire
end

-- Whether the running server sorts on _shard_doc (a PIT's implicit
-- tiebreaker); without it `_shard_doc` is an unmapped field, as it is to
-- Elasticsearch before 7.12 and to OpenSearch before 3.3.
function M.has_shard_doc(opts)
  return M.wire_of(opts).pit_sort[1] == "_shard_doc"
end

-- Whether `_id` can be sorted on: fielddata on _id is off from
-- Elasticsearch 8.0; 7.x and OpenSearch allow it (with a deprecation warning).
function M.sorts_on_id(opts)
  local wire = M.wire_of(opts)
  return wire.distribution == "opensearch" or wire.major < 8
end

return M
