-- `espipe serve --tls`: a CA and a server certificate signed by it, made with
-- the openssl command at start (as an ES 8 node makes its own on first
-- start), so clients can be tested with verification on (--cacert CA).
-- Pure Lua (no ngx): used by `espipe serve` before nginx starts.
local M = {}

-- sh = { q = shell quoting, exists = file test, run = command succeeds },
-- the helpers of the command that calls this
-- ensure(dir, host, sh) -> { ca =, cert =, key = } | nil, err. Files already
-- in dir are kept (a --data server keeps the CA its clients trust).
function M.ensure(dir, host, sh)
  local q, exists = sh.q, sh.exists
  local function run(cmd) return sh.run(cmd .. " >/dev/null 2>&1") end
  local files = { ca = dir .. "/ca.crt", ca_key = dir .. "/ca.key", cert = dir .. "/server.crt",
                  key = dir .. "/server.key" }
  if exists(files.ca) and exists(files.cert) and exists(files.key) then return files end
  if not run("command -v openssl") then return nil, "--tls needs the openssl command (apt-get install openssl)" end
  if not run("mkdir -p " .. q(dir) .. " && chmod 700 " .. q(dir)) then return nil, "cannot create " .. dir end
  local san = "DNS:localhost,IP:127.0.0.1,IP:::1"
  if host:match("^%d+%.%d+%.%d+%.%d+$") then
    if host ~= "127.0.0.1" and host ~= "0.0.0.0" then san = san .. ",IP:" .. host end
  elseif host ~= "localhost" then
    san = san .. ",DNS:" .. host
  end
  local ext = dir .. "/server.ext"
  local f = io.open(ext, "w")
  if not f then return nil, "cannot write " .. ext end
  f:write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n",
    "extendedKeyUsage=serverAuth\nsubjectAltName=", san, "\n")
  f:close()
  local ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
  local steps = {
    "openssl req -x509 " .. ec .. " -days 3650 -subj '/CN=espipe serve development CA'"
      .. " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"
      .. " -keyout " .. q(files.ca_key) .. " -out " .. q(files.ca),
    "openssl req " .. ec .. " -subj '/CN=espipe serve' -keyout " .. q(files.key)
      .. " -out " .. q(dir .. "/server.csr"),
    "openssl x509 -req -days 825 -in " .. q(dir .. "/server.csr") .. " -CA " .. q(files.ca)
      .. " -CAkey " .. q(files.ca_key) .. " -CAcreateserial -out " .. q(files.cert) .. " -extfile " .. q(ext),
  }
  for _, cmd in ipairs(steps) do
    if not run(cmd) then return nil, "openssl failed: " .. cmd end
  end
  os.remove(dir .. "/server.csr")
  os.remove(dir .. "/ca.srl")
  os.remove(ext)
  return files
end

return M
