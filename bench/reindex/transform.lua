-- The benchmark's transform: a lookup, a rename and an added field (cheap
-- Lua work, so the figures show the pipeline's own cost).
local REGION = { DE = "EU", FR = "EU", US = "NA", JP = "APAC", BR = "LATAM" }
return function(doc)
  doc.region = REGION[doc.country] or "other"
  doc.response_bytes, doc.bytes = doc.bytes, nil
  return doc
end
