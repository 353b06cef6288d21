-- A batch transform (README "Transforms"): each batch of 500 log documents
-- is enriched from the `hosts` lookup index with one ctx:mget, whose
-- requests run concurrently; ids seen before come from ctx.cache.
--   espipe load logs.ndjson --index logs-enriched --transform examples/enrich_batch.lua
--   espipe reindex logs logs-enriched --transform examples/enrich_batch.lua
-- Health checks are dropped; a document whose host the index does not know
-- is dead-lettered (DEAD-LETTER.transform) with the reason; a failed lookup
-- (after its retries) dead-letters the whole batch as it was read.
return {
  size = 500, concurrency = 8, timeout = 5, retries = 2, cache = 1000,
  batch = function(docs, ctx)
    local names = {}
    for i, doc in ipairs(docs) do names[i] = doc.host end
    local hosts, err = ctx:mget("hosts", names)
    if not hosts then error(err) end
    local out, errs = {}, {}
    for i, doc in ipairs(docs) do
      local host = hosts[doc.host]
      if doc.path == "/health" then
        out[i] = nil
      elseif not host then
        errs[i] = "unknown host " .. tostring(doc.host)
      else
        doc.host = { name = doc.host, team = host.team, datacenter = host.datacenter }
        out[i] = doc
      end
    end
    return out, errs
  end,
}
