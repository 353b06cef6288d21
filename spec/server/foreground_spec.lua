-- `espipe serve` in the foreground: it answers, and a SIGTERM to the espipe
-- process stops nginx and removes the private prefix and pid file.
local http = require("spec.support.http")
local devserver = require("spec.support.devserver")

local function sh(cmd)
  local p = io.popen("{ " .. cmd .. "; } 2>&1")
  local out = p:read("*a")
  p:close()
  return out
end

local function poll(seconds, fn)
  local deadline = os.time() + seconds
  repeat
    local v = fn()
    if v then return v end
    os.execute("sleep 0.05")
  until os.time() > deadline
  return nil
end

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

local function alive(pid)
  return sh("kill -0 " .. pid .. " && echo alive"):find("alive") ~= nil
end

describe("espipe serve #server: foreground", function()
  it("stops nginx and cleans up when the espipe process gets SIGTERM", function()
    local server = devserver.start { foreground = true }
    local ok, err = pcall(function()
      assert.truthy(poll(10, function()
        return server.output():find("listening on " .. server.url, 1, true)
      end), "no banner")
      local master = server.pid
      local prefix = sh("tr '\\0' ' ' < /proc/" .. master .. "/cmdline"):match("%-p (%S+)")
      assert.truthy(exists(prefix .. "/nginx.conf"))
      sh("kill -TERM " .. server.lua_pid)
      assert.truthy(poll(15, function() return not alive(master) end), "nginx outlived espipe")
      assert.truthy(poll(15, function() return not exists(prefix .. "/nginx.conf") and not exists(server.pid_file) end),
        "the prefix or pid file was left behind")
      assert.equal(0, http.request { url = server.url .. "/", timeout = 2 }.status)
    end)
    server.stop()
    assert(ok, err)
  end)

  it("explains itself with --help", function()
    local out = sh("./bin/espipe serve --help")
    assert.matches("usage: espipe serve", out)
    assert.matches("libnginx%-mod%-http%-lua", out)
  end)

  it("reports an nginx.conf it cannot write in one line, without a traceback", function()
    local dir = sh("mktemp -d ${TMPDIR:-/tmp}/espipe-spec-conf.XXXXXX"):match("%S+")
    -- a directory where nginx.conf should go: opening it for writing fails
    sh("mkdir -p " .. dir .. "/.nginx/nginx.conf")
    local out = sh("./bin/espipe serve --data " .. dir .. " --pid-file " .. dir .. "/pid; echo \"exit=$?\"")
    sh("rm -rf " .. dir)
    assert.matches("espipe serve: cannot write [^\n]*nginx.conf[^\n]*\nexit=1\n$", out)
    assert.not_matches("traceback", out)
  end)
end)
