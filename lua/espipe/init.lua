-- espipe: move data into, through and out of Elasticsearch.
--   local espipe = require("espipe")
--   local es = espipe.client{ hosts = { "http://127.0.0.1:9200" } }
-- Submodules load on first use, so requiring espipe costs almost nothing.
local lazy = { json = "espipe.json", routing = "espipe.routing", errors = "espipe.client.errors" }

local M = { _VERSION = "espipe 0.2.0" }

function M.client(opts)
  return require("espipe.client").new(opts)
end

-- The pipelines: espipe.reindex{...}, espipe.load{...}, espipe.export{...}
-- (see README), each loaded when first run; espipe.many{...} is a
-- transform's fan-out result.
for _, name in ipairs{ "reindex", "load", "export" } do
  M[name] = function(opts)
    return require("espipe.pipeline." .. name).run(opts)
  end
end

function M.many(list)
  return require("espipe.pipeline.reindex").many(list)
end

return setmetatable(M, {
  __index = function(t, k)
    local name = lazy[k]
    if not name then return nil end
    local mod = require(name)
    rawset(t, k, mod)
    return mod
  end,
})
