-- The --tune-dest watchdog of a reindex killed with kill -9: it restores the
-- destination's settings with the job's own credentials (they reach it on a
-- pipe, never on disk), on a cluster that refuses requests without them.
local devserver = require "support.devserver"
local client_mod = require "espipe.client"
local S = require "pipeline.support"
local J = require "pipeline.jobs"

describe("reindex --tune-dest killed with kill -9 #server", function()
  local server, client, dir, url, pid

  setup(function()
    server = devserver.start { auth = "elastic:s3cret-watchdog" }
    client = client_mod.new { hosts = { server.url }, auth = { username = "elastic", password = "s3cret-watchdog" } }
    url = server.url:gsub("^http://", "http://elastic:s3cret-watchdog@")
    local bi = client:bulk_indexer { index = "wd-src", batch_docs = 500 }
    for i = 1, 4000 do bi:index({ n = i }, { id = tostring(i) }) end
    assert.equal(4000, bi:close().ok)
    client:refresh { index = "wd-src" }
    assert(client.indices:create { index = "wd-dst", settings = { number_of_replicas = 1, refresh_interval = "5s" } })
  end)
  teardown(function()
    if pid and J.alive(pid) then J.exec("kill -9 " .. pid) end
    if client then client:close() end
    if server then server.stop() end
    S.cleanup()
  end)

  local function dst_settings()
    local r = assert(client.indices:get_settings { index = "wd-dst" })
    local s = r["wd-dst"].settings.index
    return s.refresh_interval, s.number_of_replicas
  end

  it("the watchdog restores refresh_interval and replicas with the job's credentials", function()
    dir = S.tmpdir()
    pid = J.spawn("reindex " .. S.q(url .. "/wd-src") .. " " .. S.q(url .. "/wd-dst")
      .. " --tune-dest --checkpoint " .. S.q(dir .. "/ck.json") .. " --rate 400 --batch-docs 100", dir .. "/log")
    -- tuned while it runs
    J.wait_for(function() return (dst_settings()) == "-1" end, 30, "the destination to be tuned")
    J.exec("kill -9 " .. pid)
    J.wait_for(function() return not J.alive(pid) end, 10, "the job to die")
    J.wait_for(function()
      local refresh, replicas = dst_settings()
      return refresh == "5s" and replicas == "1"
    end, 30, "the watchdog to restore the settings (job log: " .. S.read(dir .. "/log") .. ")")
    assert.is_nil(io.open(dir .. "/ck.json.tune"), "the state file is removed once restored")
  end)
end)
