-- The release of each cluster a job talks to, read before its first data
-- request (GET /, once per client: espipe.client.version keeps it), so that
-- request is already the one that release speaks (a 7.10 PIT, a 6.x _type)
-- instead of being learnt from a refusal; and the `_type` a 6.x destination
-- index wants.
--
--   versions.read(policy, client, ...) -> true | nil, err   (policy: espipe.client.retry's)
--   versions.doc_type(setup, index) -> "_doc" or the index's own type (6.x) | nil | nil, err
--     (index nil: "_doc" on 6.x, for indices bulk creates)
local version = require "espipe.client.version"
local wire = require "espipe.client.wire"
local segment = require("espipe.client.url").segment

local M = {}

function M.read(policy, ...)
  for i = 1, select("#", ...) do
    local v, err = version.of((select(i, ...)), policy)
    if not v then return nil, err end
  end
  return true
end

-- The single type under the mappings of a 6.x index (GET /{index}/_mapping
-- answers { index = { mappings = { type = {...} } } }), else "_doc": what a
-- new index gets. nil where the cluster has no types.
function M.doc_type(setup, index)
  local own = wire.bulk_type(version.known(setup.client))
  if not own or index == nil then return own end -- (nil: the indices of a pattern, made by bulk)
  local exists, eerr = setup:exists(index)
  if exists == nil then return nil, eerr end
  if not exists then return own end
  -- (as sent, with its type level: setup:get takes that away)
  local answer, err = setup.client:json_request_retrying({ method = "GET",
    path = "/" .. segment(index, "index", 3) .. "/_mapping" }, setup.policy)
  if not answer then return nil, err end
  local _, entry = next(answer)
  local name = entry and type(entry.mappings) == "table" and next(entry.mappings)
  return name or own
end

return M
