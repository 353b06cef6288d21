-- Bulk request bodies, built in C (see csrc/bulk.c).
--
--   local b = bulk.new([{ max_depth =, utf8 = "error"|"replace", auto_ids =,
--                         doc_type = "_doc" (every action line names this _type: 6.x) }])
--   b:index(meta, source)    b:create(meta, source)
--   b:update(meta, body)     b:delete(meta)        b:add(action, meta, source)
--
-- meta: nil or a table of _index, _id, routing, pipeline, if_seq_no,
-- if_primary_term, version, version_type, require_alias, retry_on_conflict,
-- dynamic_templates. _id and routing are non-empty strings or integers (an
-- integer is written as its decimal string, which is how Elasticsearch reads a
-- numeric _id). update and delete need _id.
-- source: a table (encoded straight into the body; it must encode as an
-- object, an empty plain table gives {}) or a raw JSON object string, copied
-- untouched after checking it holds no CR/LF byte.
-- update body: a raw JSON string, or a table of doc, doc_as_upsert, script
-- (a string with optional lang/params beside it, or a table), scripted_upsert,
-- upsert, detect_noop, _source; doc and upsert may be raw JSON strings.
--
-- Bad input raises and leaves the buffer exactly as it was. Appends return
-- the buffer, so calls chain.
--
--   b:body() -> the NDJSON string (each line ends in "\n")
--   #b, b:count(), b:bytes(), b:capacity()
--   b:reset([release])       empty it; keeps its memory unless release
--   b:item(i) -> action line, source line (nil for delete), action name
--   b:span(i) -> 0-based byte offset and length of item i in the body
--   b:slice(i, j), b:subset{ i, ... }, b:split() -> new buffers
--   b:append_from(other, i) append item i of another buffer
--   b:put(action, meta, source) -> count, bytes   the indexer's one-call append
--   b:raw(action_line [, source_line]) -> count, bytes   pre-encoded lines, checked
--   b:sort_by_shard(params | shards, rotation [, want_order]) -> distinct shards [, order]
--       reorders the items in place by destination shard (a counting sort, stable
--       within a shard): params = { shards =, routing_shards =, func =,
--       partition_size = } as for espipe.routing, read from each action line's
--       _id / routing; or shards = { shard of item 1, ... } (nil: unrouted).
--       Shards ascending from the (rotation mod present)-th present one;
--       unrouted items last. order[k] = the former position of item k. Raises
--       (buffer unchanged) on an _id/routing that is not UTF-8 or a bad entry.
-- meta also accepts id / index for _id / _index (giving both raises).
local core = require "espipe.core"

local M = {}

function M.new(opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("bulk.new: opts must be a table, got " .. type(opts), 2)
  end
  return core.bulk_new(opts)
end

local mt = getmetatable(core.bulk_new())

-- true when v is a bulk buffer
function M.is(v)
  return type(v) == "userdata" and getmetatable(v) == mt
end

return M
