-- What each load server spec sets up: devserver.env, and the documents an
-- index holds.
--   local env = require("pipeline.load_env").new()
--   setup(env.start) teardown(env.stop) before_each(env.fresh)
--   env.server.url, env.client, env.dir, env.count(index) (after a refresh)
--   env.versions(index) -> { [id] = { version =, n = } }, count: every document's _version
local devserver = require "support.devserver"

local M = {}

function M.new(opts)
  local env = devserver.env(opts or { nodes = 1 })
  function env.count(index)
    env.client:refresh { index = index }
    return env.client:count { index = index }.count
  end
  function env.versions(index)
    env.client:refresh { index = index }
    local r = assert(env.client:json_request { method = "POST", path = "/" .. index .. "/_search",
      body = require("espipe.json").encode { size = 10000, version = true } })
    local out, n = {}, 0
    for _, h in ipairs(r.hits.hits) do
      out[h._id] = { version = h._version, n = h._source.n }
      n = n + 1
    end
    return out, n
  end
  return env
end

return M
