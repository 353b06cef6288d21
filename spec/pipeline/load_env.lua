-- What each load server spec sets up: devserver.env, and the documents an
-- index holds.
--   local env = require("pipeline.load_env").new()
--   setup(env.start) teardown(env.stop) before_each(env.fresh)
--   env.server.url, env.client, env.dir, env.count(index) (after a refresh)
local devserver = require "support.devserver"

local M = {}

function M.new(opts)
  local env = devserver.env(opts or { nodes = 1 })
  function env.count(index)
    env.client:refresh { index = index }
    return env.client:count { index = index }.count
  end
  return env
end

return M
