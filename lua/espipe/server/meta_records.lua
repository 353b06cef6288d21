-- Cluster-wide definitions that are not indices (index and component
-- templates, stored scripts) in the --data metadata log, written with the
-- request's other metadata, and read back by espipe.server.cluster_restore.
--   queue(rec)   rec = { op = "template" | "stored_script", ... }; no-op without --data
local M = {}

-- (cluster is loaded on use: this module stays loadable without the
-- persistence layer, for the unit specs of the modules that write records)
function M.queue(rec)
  require("espipe.server.cluster").queue_meta(rec)
end

return M
