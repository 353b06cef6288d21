-- Cluster-wide definitions that are not indices (index and component
-- templates, stored scripts) in the --data metadata log, written with the
-- request's other metadata, and read back by cluster.restore.
--   queue(rec)   rec = { op = "template" | "stored_script", ... }; no-op without --data
local json = require("espipe.server.json")

local M = {}

-- (persist and cluster are loaded on use: this module stays loadable
-- outside nginx, for the unit specs of the modules that write records)
function M.queue(rec)
  if not require("espipe.server.persist").enabled() then return end
  local pending = require("espipe.server.cluster").state.pending
  local list = pending["cluster.log"] or {}
  pending["cluster.log"] = list
  list[#list + 1] = json.encode(rec) .. "\n"
end

return M
