-- `espipe serve` in the foreground: it answers, and a SIGTERM to the espipe
-- process stops nginx and removes the private prefix and pid file.
local http = require("spec.support.http")

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

describe("espipe serve #server: foreground", function()
  it("stops nginx and cleans up when the espipe process gets SIGTERM", function()
    local tmp = sh("mktemp -d ${TMPDIR:-/tmp}/espipe-spec.XXXXXX"):match("%S+")
    local pid_file = tmp .. "/serve.pid"
    local port, lua_pid, url, prefix, master
    for _ = 1, 10 do
      port = math.random(20000, 59000)
      url = "http://127.0.0.1:" .. port
      lua_pid = tonumber(sh("./bin/espipe serve --port " .. port .. " --pid-file " .. pid_file
        .. " > " .. tmp .. "/out 2>&1 & echo $!"))
      local up = poll(15, function()
        if http.request { url = url .. "/", timeout = 1 }.status == 200 then return true end
        if sh("kill -0 " .. lua_pid .. " && echo alive"):find("alive") == nil then return false end
      end)
      if up then break end
      lua_pid = nil
    end
    assert.truthy(lua_pid, "the server did not start: " .. sh("cat " .. tmp .. "/out"))
    local ok, err = pcall(function()
      assert.truthy(poll(10, function()
        return sh("cat " .. tmp .. "/out"):find("listening on http://127.0.0.1:" .. port, 1, true)
      end), "no banner")
      master = tonumber(sh("cat " .. pid_file))
      prefix = sh("tr '\\0' ' ' < /proc/" .. master .. "/cmdline"):match("%-p (%S+)")
      assert.truthy(exists(prefix .. "/nginx.conf"))
      sh("kill -TERM " .. lua_pid)
      assert.truthy(poll(15, function() return not sh("kill -0 " .. master .. " && echo alive"):find("alive") end),
        "nginx outlived espipe")
      assert.truthy(poll(15, function() return not exists(prefix .. "/nginx.conf") and not exists(pid_file) end),
        "the prefix or pid file was left behind")
      assert.equal(0, http.request { url = url .. "/", timeout = 2 }.status)
    end)
    if master then sh("kill -TERM " .. master) end
    sh("rm -rf " .. tmp)
    assert(ok, err)
  end)

  it("explains itself with --help", function()
    local out = sh("./bin/espipe serve --help")
    assert.matches("usage: espipe serve", out)
    assert.matches("libnginx%-mod%-http%-lua", out)
  end)
end)
