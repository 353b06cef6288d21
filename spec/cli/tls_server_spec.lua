-- TLS from the command line: the dev server behind an nginx that terminates
-- TLS with a CA made for the test (openssl, loopback), one endpoint that
-- also requires a client certificate.
local devserver = require "support.devserver"
local echo_server = require "support.echo_server"
local nginx = require "support.nginx"
local S = require "pipeline.support"
local J = require "pipeline.jobs"

-- An nginx proxying TLS on its port to the dev server at upstream_port.
local function tls_proxy(certs, upstream_port, require_client_cert)
  return nginx.start{ conf = function(port)
    return table.concat({
      "worker_processes 1;",
      -- its workers write proxy temp files in the (0700) prefix
      require("openresty.example").user_line(),
      "error_log logs/error.log warn;",
      "pid logs/nginx.pid;",
      "events { worker_connections 64; }",
      "http {",
      "  access_log off;",
      "  client_body_temp_path logs/body;",
      "  proxy_temp_path logs/proxy;",
      "  client_max_body_size 64m;",
      "  server {",
      "    listen 127.0.0.1:" .. port .. " ssl;",
      "    ssl_certificate " .. certs .. "/server.pem;",
      "    ssl_certificate_key " .. certs .. "/server.key;",
      require_client_cert and ("    ssl_client_certificate " .. certs .. "/ca.pem; ssl_verify_client on;") or "",
      "    location / {",
      "      proxy_pass http://127.0.0.1:" .. upstream_port .. ";",
      "      proxy_http_version 1.1;",
      '      proxy_set_header Connection "";',
      "    }",
      "  }",
      "}",
    }, "\n")
  end }
end

describe("espipe over TLS #server", function()
  local es = devserver.env {}
  setup(es.start) teardown(es.stop) before_each(es.fresh)
  local certs, proxy, mtls

  setup(function()
    certs = es.tmpdir()
    echo_server.make_certs(certs)
    proxy = tls_proxy(certs, es.server.port, false)
    mtls = tls_proxy(certs, es.server.port, true)
  end)
  teardown(function()
    if proxy then proxy.stop() end
    if mtls then mtls.stop() end
  end)
  before_each(function()
    S.write(es.dir .. "/in.ndjson", '{"id":"a","n":1}\n{"id":"b","n":2}\n{"id":"c","n":3}\n')
  end)

  local https = function(p) return "https://127.0.0.1:" .. p.port end
  local n = 0
  -- load the 3 documents into a fresh index through url; -> code, stderr, index
  local function load(url, flags, env)
    n = n + 1
    local index = "tls-" .. n
    local code, _, err = J.espipe("load " .. S.q(es.dir .. "/in.ndjson") .. " --index " .. index
      .. " --id-field id --retries 1 --dead-letter " .. S.q(es.dir .. "/dl.ndjson") .. " --url " .. url
      .. " " .. (flags or ""), "env -u CURL_CA_BUNDLE -u SSL_CERT_DIR -u SSL_CERT_FILE " .. (env or ""))
    return code, err, index
  end
  local function count(index)
    es.client:refresh { index = index }
    local r = es.client:count { index = index }
    return r and r.count or 0
  end

  it("refuses a server it cannot verify, with a message naming the certificate problem", function()
    local code, err, index = load(https(proxy))
    assert.equal(2, code, err)
    assert.is_truthy(err:lower():find("certificate", 1, true), err)
    assert.equal(1, select(2, err:gsub("\n", "")), "one line: " .. err)
    assert.is_nil(io.open(es.dir .. "/dl.ndjson"), "no dead letter")
    assert.equal(0, count(index))
  end)

  it("reindex and export stop the same way (exit 2) on a server they cannot verify", function()
    local env = "env -u CURL_CA_BUNDLE -u SSL_CERT_DIR -u SSL_CERT_FILE"
    local code, _, err = J.espipe("reindex " .. S.q(https(proxy) .. "/a") .. " " .. S.q(https(proxy) .. "/b"), env)
    assert.equal(2, code, err)
    assert.is_truthy(err:lower():find("certificate", 1, true), err)
    code, _, err = J.espipe("export " .. S.q(https(proxy) .. "/a") .. " --to " .. S.q(es.dir .. "/out"), env)
    assert.equal(2, code, err)
    assert.is_truthy(err:lower():find("certificate", 1, true), err)
  end)

  it("trusts the CA of --ca-file", function()
    local code, err, index = load(https(proxy), "--ca-file " .. S.q(certs .. "/ca.pem"))
    assert.equal(0, code, err)
    assert.equal(3, count(index))
  end)

  it("trusts the CA of $SSL_CERT_FILE, $CURL_CA_BUNDLE and $SSL_CERT_DIR, as curl does", function()
    local hashed = es.tmpdir()
    assert(os.execute("cp " .. S.q(certs .. "/ca.pem") .. " " .. S.q(hashed) .. " && openssl rehash " .. S.q(hashed)))
    for var, path in pairs { SSL_CERT_FILE = certs .. "/ca.pem", CURL_CA_BUNDLE = certs .. "/ca.pem",
                             SSL_CERT_DIR = hashed } do
      local code, err, index = load(https(proxy), nil, var .. "=" .. S.q(path))
      assert.equal(0, code, var .. ": " .. err)
      assert.equal(3, count(index))
    end
  end)

  it("--insecure skips verification and says so on stderr", function()
    local code, err, index = load(https(proxy), "--insecure")
    assert.equal(0, code, err)
    assert.is_truthy(err:find("warning: TLS certificate verification is disabled", 1, true), err)
    assert.equal(3, count(index))
  end)

  it("presents --cert/--key to a server that requires a client certificate", function()
    local ca = "--ca-file " .. S.q(certs .. "/ca.pem")
    local code, err0, index = load(https(mtls), ca)
    assert.is_not.equal(0, code, err0)
    assert.equal(0, count(index))
    local err
    code, err, index = load(https(mtls), ca .. " --cert " .. S.q(certs .. "/client.pem")
      .. " --key " .. S.q(certs .. "/client.key"))
    assert.equal(0, code, err)
    assert.equal(3, count(index))
  end)

  it("export and reindex take the same flags", function()
    local ca = "--ca-file " .. S.q(certs .. "/ca.pem")
    local _, _, index = load(https(proxy), ca)
    es.client:refresh { index = index }
    local code, _, err = J.espipe("reindex " .. S.q(https(proxy) .. "/" .. index) .. " "
      .. S.q(https(proxy) .. "/" .. index .. "-copy") .. " " .. ca)
    assert.equal(0, code, err)
    assert.equal(3, count(index .. "-copy"))
    code, _, err = J.espipe("export " .. S.q(https(proxy) .. "/" .. index) .. " --to " .. S.q(es.dir .. "/out")
      .. " " .. ca)
    assert.equal(0, code, err)
    assert.equal(3, require("espipe.json").decode(S.read(es.dir .. "/out/manifest.json")).total)
  end)
end)
