-- Credentials never reach the disk: real jobs run with a password in the
-- cluster URL, then every file they produced (and their stdout/stderr) is
-- searched for it, and every file that names a cluster is mode 0600.
local devserver = require "support.devserver"
local S = require "pipeline.support"
local J = require "pipeline.jobs"
local C = require "cli.support"

local function mode(path)
  return (S.sh("stat -c %a " .. S.q(path)):gsub("%s+$", ""))
end

-- every regular file under dir, relative names sorted
local function files_under(dir)
  local out = {}
  for name in S.sh("cd " .. S.q(dir) .. " && find . -type f | sort"):gmatch("[^\n]+") do
    out[#out + 1] = name:gsub("^%./", "")
  end
  return out
end

local function holding(dir, secret)
  local found = {}
  for _, name in ipairs(files_under(dir)) do
    if S.read(dir .. "/" .. name):find(secret, 1, true) then found[#found + 1] = name end
  end
  return found
end

describe("credentials in the cluster URL #server", function()
  local env = devserver.env {}
  setup(env.start) teardown(env.stop) before_each(env.fresh)
  local secret, url

  setup(function()
    secret = "pw-" .. tostring(os.time()) .. "-" .. tostring(math.random(1e6))
    url = env.server.url:gsub("^http://", "http://elastic:" .. secret .. "@")
  end)
  local pid -- a job running in the background
  after_each(function()
    if pid and J.alive(pid) then J.exec("kill " .. pid) end
    pid = nil
  end)

  -- bin/espipe args run in dir; -> code, stdout, stderr
  local function espipe(args) return C.espipe_in(env.dir, args) end

  it("load with a dead letter: no file and no output holds the password; the dead letter is 0600", function()
    assert(env.client.indices:create { index = "cred-load",
      mappings = { dynamic = "strict", properties = { id = { type = "keyword" }, n = { type = "long" } } } })
    S.write(env.dir .. "/in.ndjson", '{"id":"a","n":1}\n{"id":"b","n":2,"extra":true}\n{"id":"c","n":3}\n')
    local code, out, err = espipe("load in.ndjson --index cred-load --id-field id --dead-letter dl.ndjson"
      .. " --url " .. url)
    assert.equal(1, code, err)
    assert.is_true(S.read(env.dir .. "/dl.ndjson"):find('"b"', 1, true) ~= nil)
    assert.equal("600", mode(env.dir .. "/dl.ndjson"))
    assert.same({}, holding(env.dir, secret))
    assert.is_nil(out:find(secret, 1, true))
    assert.is_nil(err:find(secret, 1, true))
  end)

  it("reindex --tune-dest --checkpoint: the checkpoint and the tune state are 0600 and hold no password", function()
    J.write_docs(env.dir .. "/src.ndjson", 2000)
    assert.equal(0, (espipe("load src.ndjson --index cred-src --id-field id --quiet --url " .. url)))
    pid = J.spawn("reindex " .. S.q(url .. "/cred-src") .. " " .. S.q(url .. "/cred-dst")
      .. " --tune-dest --checkpoint " .. S.q(env.dir .. "/ck.json") .. " --rate 1000 --batch-docs 100"
      .. " --dead-letter " .. S.q(env.dir .. "/dl.ndjson"), env.dir .. "/log")
    local state = env.dir .. "/ck.json.tune"
    -- the state file exists while the copy runs (it is removed once restored)
    J.wait_for(function() return io.open(state) ~= nil end, 20, "the tune state file")
    assert.equal("600", mode(state))
    assert.is_nil(S.read(state):find(secret, 1, true))
    assert.is_not_nil(S.read(state):find(env.server.url, 1, true), "the state names its cluster")
    J.wait_for(function() return not J.alive(pid) end, 60, "the reindex to end")
    -- (the job's own output, when its checkpoint is missing: a failure once seen in CI)
    assert.equal("600", mode(env.dir .. "/ck.json"), S.read(env.dir .. "/log"))
    assert.same({}, holding(env.dir, secret))
    assert.is_nil(S.read(env.dir .. "/log"):find(secret, 1, true))
    assert.equal(2000, env.client:count { index = "cred-dst" }.count)
  end)

  it("reindex --tune-dest without a checkpoint: the temp-dir state file is 0600, no password", function()
    J.write_docs(env.dir .. "/src.ndjson", 2000)
    assert.equal(0, (espipe("load src.ndjson --index cred-src2 --id-field id --quiet --url " .. url)))
    pid = J.spawn("reindex " .. S.q(url .. "/cred-src2") .. " " .. S.q(url .. "/cred-dst2")
      .. " --tune-dest --rate 1000 --batch-docs 100 --dead-letter " .. S.q(env.dir .. "/dl.ndjson"), env.dir .. "/log")
    local state = J.wait_for(function()
      return (S.read_if(env.dir .. "/log") or ""):match("settings saved in (%S+)")
    end, 20, "the tune state path")
    local body = S.read_if(state)
    if body then -- (the job may already have restored it and removed it)
      assert.equal("600", mode(state))
      assert.is_nil(body:find(secret, 1, true))
    end
    J.wait_for(function() return not J.alive(pid) end, 60, "the reindex to end")
    assert.is_nil(io.open(state), "the state file is removed once restored")
    assert.is_nil(S.read(env.dir .. "/log"):find(secret, 1, true))
  end)

  it("export --checkpoint: the manifest names the source without the password; it and the checkpoint are 0600",
     function()
    J.write_docs(env.dir .. "/src.ndjson", 300)
    assert.equal(0, (espipe("load src.ndjson --index cred-exp --id-field id --quiet --url " .. url)))
    local code, out, err = espipe("export " .. S.q(url .. "/cred-exp") .. " --to out --checkpoint ck-exp.json")
    assert.equal(0, code, err)
    local manifest = S.read(env.dir .. "/out/manifest.json")
    assert.is_not_nil(manifest:find(env.server.url .. "/cred-exp", 1, true), manifest)
    assert.equal("600", mode(env.dir .. "/out/manifest.json"))
    assert.equal("600", mode(env.dir .. "/ck-exp.json"))
    assert.same({}, holding(env.dir, secret))
    assert.is_nil(out:find(secret, 1, true))
    assert.is_nil(err:find(secret, 1, true))
  end)
end)
