-- What a cluster's wire looks like, read once from its `GET /` answer, so one
-- job can read from one version and write to another. Each field names a
-- difference a data mover meets; the versions are the first release that has
-- the newer behaviour:
--   total_hits   "object" ({value, relation}, Elasticsearch 7.0+, every
--                OpenSearch) or "integer" (6.x)
--   bulk_type    the `_type` bulk actions must carry ("_doc" on 6.x), or nil:
--                8.x and OpenSearch 2.x reject it, 7.x only deprecates it
--   typed_responses  whether answers still carry "_type" (6.x, 7.x, OpenSearch 1.x)
--   pit          "elasticsearch" (POST /{i}/_pit, 7.10+), "opensearch"
--                (POST /{i}/_search/point_in_time, 2.4+) or nil: scroll
--   pit_slices   slicing inside a point in time (Elasticsearch 7.15+, after
--                the 7.x backport of #74457; OpenSearch 2.4+); otherwise a
--                sliced read uses sliced scrolls
--   pit_sort     the cheapest sort that makes search_after in a PIT total:
--                { "_shard_doc" } (Elasticsearch 7.12+, OpenSearch 3.3+ after
--                OpenSearch#18924); before those { "_doc", "_id" }: _doc alone
--                is a per-shard Lucene id, so a page ending on id N would skip
--                another shard's hits with that same N
local M = {}

local tonumber, type = tonumber, type

local function at_least(v, major, minor)
  return v.major > major or (v.major == major and v.minor >= minor)
end

local function capabilities(v)
  local es = v.distribution == "elasticsearch"
  v.total_hits = (es and v.major < 7) and "integer" or "object"
  v.bulk_type = (es and v.major < 7) and "_doc" or nil
  v.typed_responses = (es and v.major < 8) or (not es and v.major < 2)
  if es then
    v.pit = at_least(v, 7, 10) and "elasticsearch" or nil
    v.pit_slices = at_least(v, 7, 15)
    v.pit_sort = at_least(v, 7, 12) and { "_shard_doc" } or { "_doc", "_id" }
  else
    v.pit = at_least(v, 2, 4) and "opensearch" or nil
    v.pit_slices = at_least(v, 2, 4)
    v.pit_sort = at_least(v, 3, 3) and { "_shard_doc" } or { "_doc", "_id" }
  end
  return v
end

-- version.parse(number, distribution) -> profile, or nil and a message.
-- number: "8.15.0", "7.17.22", "6.8.23", "2.11.1", "9.0.0-SNAPSHOT".
function M.parse(number, distribution)
  if type(number) ~= "string" then
    return nil, "version.number is " .. type(number) .. ", not a string"
  end
  local major, minor, patch = number:match("^(%d+)%.(%d+)%.?(%d*)")
  if not major then return nil, "unreadable version number '" .. number .. "'" end
  distribution = distribution or "elasticsearch"
  if distribution ~= "elasticsearch" and distribution ~= "opensearch" then
    return nil, "unknown distribution '" .. tostring(distribution) .. "'"
  end
  return capabilities {
    number = number, distribution = distribution,
    major = tonumber(major), minor = tonumber(minor), patch = tonumber(patch) or 0,
  }
end

-- version.from_info(decoded GET / body) -> profile, or nil and a message.
-- OpenSearch says so in version.distribution; Elasticsearch has no such field.
function M.from_info(info)
  if type(info) ~= "table" or type(info.version) ~= "table" then
    return nil, "the root endpoint's answer has no version object"
  end
  return M.parse(info.version.number, info.version.distribution)
end

-- Each client's cluster profile, read once (weak keys: a dropped client
-- takes its entry with it).
local known = setmetatable({}, { __mode = "k" })

-- version.of(client[, policy]) -> profile, or nil and err: GET / on first
-- use, retried as the policy (espipe.client.retry) says when one is given.
function M.of(client, policy)
  local v = known[client]
  if v then return v end
  local info, err
  if policy then
    info, err = client:json_request_retrying({ method = "GET", path = "/" }, policy)
  else
    info, err = client:info {}
  end
  if not info then return nil, err end
  local msg
  v, msg = M.from_info(info)
  if not v then
    return nil, require("espipe.client.errors").new { kind = "http", message = "GET /: " .. msg }
  end
  known[client] = v
  return v
end

-- The profile if this client has read it already, else nil (Elasticsearch 8
-- is then assumed: the pipelines and a scan read it before their first
-- request, a bulk indexer made before that names no 6.x type).
function M.known(client)
  return known[client]
end

-- "elasticsearch 8.15.0" / "opensearch 2.11.1": for summaries and errors.
function M.describe(v)
  return v.distribution .. " " .. v.number
end

return M
