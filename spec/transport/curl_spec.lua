-- The curl transport without a server: argument checks, transport
-- selection, refused connections and secrecy of credentials. Runs on every Lua.
local curl = require "espipe.transport.curl"
local transport = require "espipe.transport"
local cm = require "espipe.curl_multi"
local errors = require "espipe.client.errors"

-- Nothing listens on port 1 of loopback: connections are refused at once.
local REFUSED = "http://127.0.0.1:1"

local function drain(t, deadline_s)
  local got, deadline = {}, cm.now() + (deadline_s or 10)
  while t:inflight() > 0 and cm.now() < deadline do
    for _, c in ipairs(t:poll(0.5)) do got[#got + 1] = c end
  end
  return got
end

-- Every string reachable from v, for "is the secret anywhere in here".
local function all_strings(v, out, seen)
  out, seen = out or {}, seen or {}
  if type(v) == "string" then
    out[#out + 1] = v
  elseif type(v) == "table" and not seen[v] then
    seen[v] = true
    for k, x in pairs(v) do
      all_strings(k, out, seen)
      all_strings(x, out, seen)
    end
    out[#out + 1] = tostring(v)
  end
  return out
end

describe("transport.curl arguments", function()
  it("requires hosts", function()
    assert.has_error(function() curl.new {} end, "hosts must be a non-empty array of URLs")
    assert.has_error(function() curl.new { hosts = { "ftp://x" } } end,
      "hosts[1] must be an http:// or https:// URL")
    assert.has_error(function() curl.new() end, "transport options must be a table, got nil")
  end)

  it("reports the caller's line for a wrong argument", function()
    local ok, err = pcall(curl.new, { hosts = { 42 } })
    assert.is_false(ok)
    assert.matches("hosts%[1%] must be a string URL, got number", err)
    local _, where = pcall(function() curl.new { hosts = {} } end)
    assert.matches("curl_spec.lua:%d+:", where)
  end)

  it("checks option types", function()
    assert.has_error(function() curl.new { hosts = { REFUSED }, max_inflight = 0 } end,
      "max_inflight must be an integer in 1..4096")
    assert.has_error(function() curl.new { hosts = { REFUSED }, timeout = "5" } end,
      "timeout must be a number >= 0")
    assert.has_error(function() curl.new { hosts = { REFUSED }, auth = { token = "x" } } end,
      "auth must have username/password, api_key or bearer")
    assert.has_error(function() curl.new { hosts = { REFUSED }, compress = 11 } end,
      "compress must be a boolean or a gzip level 1..9")
    assert.has_error(function() curl.new { hosts = { REFUSED }, tls = { ca_file = 1 } } end,
      "tls.ca_file must be a string (a file or directory path)")
  end)

  it("refuses header values that would split the request", function()
    assert.has_error(function()
      curl.new { hosts = { REFUSED }, headers = { ["x-a"] = "1\r\nx-b: 2" } }
    end, "header x-a contains a line break or NUL byte")
    local t = curl.new { hosts = { REFUSED } }
    assert.has_error(function()
      t:submit { path = "/", headers = { ["x-a"] = "1\nx" } }
    end, "header x-a contains a line break or NUL byte")
    t:close()
  end)

  it("checks requests", function()
    local t = curl.new { hosts = { REFUSED } }
    assert.has_error(function() t:submit { path = "nope" } end,
      "request path must be a string starting with '/' and without spaces")
    assert.has_error(function() t:submit { path = "/", method = "get" } end,
      "request method must be an upper-case word")
    assert.has_error(function() t:submit { path = "/", body = 12 } end,
      "request body must be a string or an espipe.bulk buffer, got number")
    assert.has_error(function() t:submit { path = "/", host = 2 } end,
      "request host must be an index into hosts (1..1)")
    assert.has_error(function() t:poll(-1) end, "poll timeout must be a number >= 0")
    t:close()
    assert.has_error(function() t:submit { path = "/" } end, "submit on a closed transport")
  end)
end)

describe("transport selection", function()
  it("is curl outside nginx", function()
    assert.equals("curl", transport.name())
    local t = transport.new { hosts = { REFUSED } }
    assert.matches("^espipe.transport.curl", tostring(t))
    t:close()
  end)

  it("refuses inside nginx in a phase without cosockets instead of blocking the worker", function()
    local saved = rawget(_G, "ngx")
    rawset(_G, "ngx", { get_phase = function() return "log" end })
    local ok, err = pcall(transport.new, { hosts = { REFUSED } })
    rawset(_G, "ngx", saved)
    assert.is_false(ok)
    assert.matches("cosockets are not available in the 'log' phase", err)
    assert.matches("ngx.timer.at", err)
  end)
end)

describe("transport.curl without a server", function()
  it("reports a refused connection as a transport error and marks the host dead", function()
    local t = curl.new { hosts = { REFUSED }, dead_host_retry = 60 }
    local id = assert(t:submit { method = "GET", path = "/x", ctx = "mine" })
    local done = drain(t)
    assert.equals(1, #done)
    local c = done[1]
    assert.equals(id, c.id)
    assert.equals("mine", c.ctx)
    assert.equals(REFUSED, c.host)
    assert.is_true(errors.is(c.err))
    assert.equals("transport", c.err.kind)
    assert.equals("connect", c.err.code)
    assert.is_true(c.err.host_dead)
    assert.same({ method = "GET", path = "/x" }, c.err.request)
    assert.is_truthy(t.hosts:get(1).dead_until)
    t:close()
  end)

  it("request() returns nil, err on a transport failure", function()
    local t = curl.new { hosts = { REFUSED } }
    local res, err = t:request { path = "/" }
    assert.is_nil(res)
    assert.equals("connect", err.code)
    assert.matches("Couldn't connect", tostring(err))
    t:close()
  end)

  it("keeps credentials out of errors, completions and tostring", function()
    local secret = "s3cr3t-Pa55"
    for _, opts in ipairs {
      { hosts = { "http://elastic:" .. secret .. "@127.0.0.1:1" } },
      { hosts = { REFUSED }, auth = { username = "elastic", password = secret } },
      { hosts = { REFUSED }, auth = { api_key = secret } },
      { hosts = { REFUSED }, auth = { bearer = secret } },
    } do
      local t = curl.new(opts)
      assert.equals(REFUSED, t.hosts:get(1).url)
      t:submit { method = "POST", path = "/_bulk", body = "{}\n" }
      local done = drain(t)
      local strings = all_strings(done)
      strings[#strings + 1] = tostring(t)
      strings[#strings + 1] = tostring(done[1].err)
      for _, s in ipairs(all_strings(t)) do strings[#strings + 1] = s end
      for _, s in ipairs(strings) do
        assert.is_nil(s:find(secret, 1, true), "secret found in: " .. s)
      end
      t:close()
    end
  end)

  it("close() is idempotent and poll after close returns nothing", function()
    local t = curl.new { hosts = { REFUSED } }
    t:submit { path = "/" }
    t:close()
    t:close()
    assert.equals(0, t:inflight())
    assert.same({}, t:poll(0))
    assert.matches("0 in flight", tostring(t))
  end)
end)

describe("transport.new", function()
  it("reports the caller's line for a wrong argument", function()
    local _, where = pcall(function() transport.new { hosts = {} } end)
    assert.matches("curl_spec.lua:%d+: hosts must be", where)
  end)
end)
