-- A restart from --data: the metadata log (index definitions, templates,
-- stored scripts) read back, then each index's document log replayed.
local persist = require("espipe.server.persist")
local index_settings = require("espipe.server.index_settings")
local cluster_indices = require("espipe.server.cluster_indices")
local cluster_shards = require("espipe.server.cluster_shards")
local templates = require("espipe.server.templates")
local api_scripts = require("espipe.server.api_scripts")

local M = {}

-- the index definitions still standing at the end of the metadata log
local function replay_meta()
  local defs = {}
  persist.replay_meta(function(rec)
    if rec.op == "index" then defs[rec.name] = rec
    elseif rec.op == "delete" and defs[rec.name] and defs[rec.name].uuid == rec.uuid then defs[rec.name] = nil
    elseif rec.op == "template" then templates.restore(rec)
    elseif rec.op == "stored_script" then api_scripts.restore(rec) end
  end)
  return defs
end

function M.restore()
  if not persist.enabled() then return end
  for name, def in pairs(replay_meta()) do
    local idx = cluster_indices.create_index(name, def, true)
    if idx then
      idx.doc_type = def.doc_type -- (a 6.x index's one type)
      idx.settings = index_settings.flat_settings(def.settings)
      index_settings.apply(idx, idx.settings, false)
      persist.replay_docs(idx.uuid .. ".log", function(...) cluster_shards.replay(idx, ...) end)
      cluster_shards.refresh(idx)
    end
  end
end

return M
