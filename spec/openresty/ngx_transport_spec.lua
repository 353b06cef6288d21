-- The client, the bulk indexer and scan running unchanged inside an nginx
-- worker on the cosocket transport. Each test posts a Lua chunk to a test
-- nginx that runs it in a content handler and answers with its JSON result.
local devserver = require "support.devserver"
local echo_server = require "support.echo_server"
local http = require "support.http"
local nginx = require "support.nginx"
local cjson = require "cjson"
local example = require "openresty.example"

local ROOT = os.getenv("PWD") or "."

local function conf(trusted_ca)
  return function(port)
    return table.concat({
      "load_module /usr/lib/nginx/modules/ndk_http_module.so;",
      "load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;",
      "worker_processes 1;",
      example.user_line(),
      "error_log logs/error.log warn;",
      "pid logs/nginx.pid;",
      "events { worker_connections 256; }",
      "http {",
      "  access_log off;",
      "  client_body_temp_path logs/body;",
      "  client_body_buffer_size 1m;",
      '  lua_package_path "' .. ROOT .. "/lua/?.lua;" .. ROOT .. '/lua/?/init.lua;;";',
      '  lua_package_cpath "' .. ROOT .. '/build/luajit/?.so;;";',
      trusted_ca and ("  lua_ssl_trusted_certificate " .. trusted_ca .. ";") or "",
      "  lua_ssl_verify_depth 2;",
      "  server {",
      "    listen 127.0.0.1:" .. port .. ";",
      "    location = /run {",
      "      content_by_lua_block {",
      "        ngx.req.read_body()",
      "        local chunk = assert(load(ngx.req.get_body_data(), 'spec chunk'))",
      "        local ok, res = pcall(chunk)",
      "        ngx.header['content-type'] = 'application/json'",
      "        ngx.say(require('cjson').encode(ok and { ok = true, result = res } or { ok = false, error = tostring(res) }))",
      "      }",
      "    }",
      "  }",
      "}",
    }, "\n")
  end
end

local function run_in(app, es_url, code)
  local chunk = "local ES = " .. string.format("%q", es_url or "") .. "\n" .. code
  local res = http.request{ method = "POST", url = app.url .. "/run", body = chunk }
  assert(res.status == 200, "nginx answered " .. tostring(res.status) .. ": " .. tostring(res.body)
    .. "\n" .. app.error_log())
  local out = cjson.decode(res.body)
  assert(out.ok, "chunk failed inside nginx: " .. tostring(out.error))
  return out.result
end

describe("cosocket transport inside nginx #server", function()
  local es, app, echo, other

  after_each(function()
    if app then app.stop() end
    if es then es.stop() end
    if echo then echo:stop() end
    if other then other:stop() end
    app, es, echo, other = nil, nil, nil, nil
  end)

  it("is picked by the client and runs the document APIs", function()
    es = devserver.start{ cluster = true }
    app = nginx.start{ conf = conf() }
    local r = run_in(app, es.url, [[
      local client = require("espipe.client").new{ hosts = { ES } }
      client.indices:delete{ index = "docs" }   -- ES_URL may be a real cluster: start empty
      local created = assert(client:index{ index = "docs", id = "a", body = { n = 1, tags = require("espipe.json").array({}) }, refresh = "true" })
      local got = assert(client:get{ index = "docs", id = "a" })
      local missing, err = client:get{ index = "docs", id = "nope" }
      return { transport = getmetatable(client.transport).__index == require("espipe.transport.ngx"),
               result = created.result, n = got._source.n,
               tags = require("espipe.json").encode(got._source.tags),
               missing = missing == nil, status = err and err.status }
    ]])
    assert.same({ transport = true, result = "created", n = 1, tags = "[]", missing = true, status = 404 }, r)
  end)

  it("bulk-indexes and scans back every document with slices", function()
    es = devserver.start{ cluster = true }
    app = nginx.start{ conf = conf() }
    local r = run_in(app, es.url, [[
      local client = require("espipe.client").new{ hosts = { ES } }
      client.indices:delete{ index = "many" }   -- ES_URL may be a real cluster: start empty
      local bi = client:bulk_indexer{ index = "many", batch_docs = 250, concurrency = 3 }
      for i = 1, 3000 do bi:index({ i = i }, { _id = tostring(i) }) end
      local stats = bi:close()
      assert(client:refresh{ index = "many" })
      local seen, dups, n = {}, 0, 0
      for hit in client:scan("many", { match_all = {} }, { slices = 2, size = 400 }) do
        if seen[hit._id] then dups = dups + 1 end
        seen[hit._id] = true
        n = n + 1
      end
      return { ok = stats.ok, failed = stats.failed, scanned = n, dups = dups }
    ]])
    assert.same({ ok = 3000, failed = 0, scanned = 3000, dups = 0 }, r)
  end)

  it("sends shard-aware bulk straight to each primary's node", function()
    es = devserver.start{ nodes = 3 }
    app = nginx.start{ conf = conf() }
    local r = run_in(app, es.url, [[
      local client = require("espipe.client").new{ hosts = { ES } }
      assert(client.indices:create{ index = "sharded", body = { settings = { number_of_shards = 6 } } })
      assert(client:perform{ method = "POST", path = "/_espipe/stats/reset" })
      local bi = client:bulk_indexer{ index = "sharded", batch_docs = 200, shard_aware = true }
      for i = 1, 3000 do bi:index({ i = i }, { id = "d" .. i }) end
      local st = bi:close()
      local stats = assert(client:json_request{ method = "GET", path = "/_espipe/stats" })
      local docs, forwarded = 0, 0
      for _, n in pairs(stats.nodes) do docs, forwarded = docs + n.docs, forwarded + n.forwarded end
      return { ok = st.ok, failed = st.failed, direct = st.direct, docs = docs, forwarded = forwarded }
    ]])
    assert.same({ ok = 3000, failed = 0, direct = 3000, docs = 3000, forwarded = 0 }, r)
  end)

  it("verifies TLS certificates through sslhandshake", function()
    echo = echo_server.start{ tls = true }
    other = echo_server.start{ tls = true }   -- its own CA, not trusted below
    app = nginx.start{ conf = conf(echo.ca_file) }
    local r = run_in(app, nil, [[
      local T = require "espipe.transport.ngx"
      local good = T.new{ hosts = { ]] .. string.format("%q", echo.tls_url) .. [[ } }
      local res, err1 = good:request{ method = "GET", path = "/hello" }
      local bad = T.new{ hosts = { ]] .. string.format("%q", other.tls_url) .. [[ } }
      local res2, err2 = bad:request{ method = "GET", path = "/hello" }
      return { status = res and res.status, scheme = res and require("cjson").decode(res.body).scheme,
               err1 = err1 and tostring(err1), bad = res2 == nil, code = err2 and err2.code }
    ]])
    assert.same({ status = 200, scheme = "https", bad = true, code = "tls" }, r)
  end)
end)
