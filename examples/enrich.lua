-- An enrichment transform for `espipe reindex --transform examples/enrich.lua`:
--   * lookup-table enrichment: country code -> region and name
--   * field rename: bytes -> response_bytes
--   * drop: health checks are not worth keeping
--   * fan-out: a 5xx request also produces an "incident" document in another index
--   * a raise dead-letters just that document (here: an unknown country code)
local reindex = require "espipe.pipeline.reindex"

local COUNTRIES = {
  DE = { name = "Germany", region = "EU" },
  FR = { name = "France", region = "EU" },
  US = { name = "United States", region = "NA" },
  JP = { name = "Japan", region = "APAC" },
  BR = { name = "Brazil", region = "LATAM" },
}

return function(doc, hit)
  if doc.path == "/health" then return nil end
  local c = COUNTRIES[doc.country]
  if not c then error("unknown country code " .. tostring(doc.country)) end
  doc.country = { code = doc.country, name = c.name, region = c.region }
  doc.response_bytes, doc.bytes = doc.bytes, nil
  if doc.status >= 500 then
    local incident = { _index = "incidents", _id = "incident-" .. hit._id,
      request_id = doc.request_id, ["@timestamp"] = doc["@timestamp"], host = doc.host, status = doc.status }
    return reindex.many { doc, incident }
  end
  return doc
end
