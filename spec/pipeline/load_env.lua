-- What each load server spec sets up: one dev server for the file, a client
-- on it, a fresh temporary directory per test, all removed again.
--   local env = require("pipeline.load_env").new()
--   setup(env.start) teardown(env.stop) before_each(env.fresh)
--   env.server.url, env.client, env.dir, env.count(index) (after a refresh)
local devserver = require "support.devserver"
local client_mod = require "espipe.client"
local S = require "pipeline.support"

local M = {}

function M.new(opts)
  local env = {}
  function env.start()
    env.server = devserver.start(opts or { nodes = 1 })
    env.client = client_mod.new { hosts = { env.server.url } }
  end
  function env.stop()
    if env.client then env.client:close() end
    if env.server then env.server.stop() end
    S.cleanup()
  end
  function env.fresh() env.dir = S.tmpdir() end
  function env.count(index)
    env.client:refresh { index = index }
    return env.client:count { index = index }.count
  end
  return env
end

return M
