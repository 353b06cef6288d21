-- `espipe serve --auth user:password` and `--tls`: what an ES 8 node with
-- security on answers (401 + WWW-Authenticate, API keys, HTTPS with its own CA).
local devserver = require("spec.support.devserver")
local http = require("spec.support.http")
local json = require("espipe.server.json")

-- RFC 4648 base64, written here rather than taken from the code under test
local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(s)
  return ((s:gsub(".", function(c)
    local bits, b = "", c:byte()
    for i = 8, 1, -1 do bits = bits .. (math.floor(b / 2 ^ (i - 1)) % 2) end
    return bits
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local n = tonumber(x, 2)
    return ALPHABET:sub(n + 1, n + 1)
  end) .. ({ "", "==", "=" })[#s % 3 + 1])
end

describe("espipe serve #server: --auth", function()
  local server, url
  setup(function()
    server = devserver.start{ auth = "elastic:s3cret" }
    url = server.url
  end)
  teardown(function() server.stop() end)

  it("answers 401 with WWW-Authenticate and ES's security_exception without credentials", function()
    local res = http.request{ url = url .. "/" }
    assert.equal(401, res.status)
    -- two WWW-Authenticate headers (Basic, ApiKey); the helper keeps the last
    assert.equal("ApiKey", res.headers["www-authenticate"])
    local body = json.decode(res.body)
    assert.same({ 'Basic realm="security", charset="UTF-8"', "ApiKey" }, body.error.header["WWW-Authenticate"])
    assert.equal("security_exception", body.error.type)
    assert.equal("missing authentication credentials for REST request [/]", body.error.reason)
    assert.equal(401, body.status)
  end)

  it("refuses a wrong password and accepts the right one", function()
    local res = http.request{ url = url .. "/", headers = { Authorization = "Basic " .. b64("elastic:nope") } }
    assert.equal(401, res.status)
    assert.equal("unable to authenticate user [elastic] for REST request [/]", json.decode(res.body).error.reason)
    res = http.request{ url = url .. "/", headers = { Authorization = "Basic " .. b64("elastic:s3cret") } }
    assert.equal(200, res.status)
  end)

  it("creates API keys that authenticate, and refuses them once invalidated", function()
    local basic = { Authorization = "Basic " .. b64("elastic:s3cret") }
    local status, key = http.json("POST", url .. "/_security/api_key", { name = "loader" }, basic)
    assert.equal(200, status)
    assert.equal("loader", key.name)
    assert.equal(b64(key.id .. ":" .. key.api_key), key.encoded)
    local apikey = { Authorization = "ApiKey " .. key.encoded }
    local body
    status, body = http.json("GET", url .. "/_security/_authenticate", nil, apikey)
    assert.equal(200, status)
    assert.equal("elastic", body.username)
    assert.equal("api_key", body.authentication_type)
    status = http.json("DELETE", url .. "/_security/api_key", { ids = { key.id } }, basic)
    assert.equal(200, status)
    status = http.json("GET", url .. "/", nil, apikey)
    assert.equal(401, status)
  end)
end)

describe("espipe serve #server: --tls", function()
  local server
  setup(function() server = devserver.start{ tls = true, auth = "elastic:s3cret" } end)
  teardown(function() server.stop() end)

  it("serves HTTPS with a certificate its printed CA verifies", function()
    assert.matches("^https://", server.url)
    assert.is_string(server.ca)
    local res = http.request{ url = server.url .. "/", cacert = server.ca,
                              headers = { Authorization = "Basic " .. b64("elastic:s3cret") } }
    assert.equal(200, res.status)
    assert.equal("8.15.0", json.decode(res.body).version.number)
    -- without the CA, verification fails (curl exit 60)
    res = http.request{ url = server.url .. "/" }
    assert.equal(60, res.curl_exit)
  end)
end)
