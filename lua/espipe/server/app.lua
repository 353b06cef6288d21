-- The dev server inside nginx: configuration from `espipe serve`, worker
-- start-up (state restored from --data), and the request cycle: read and
-- check the body, route to an API handler, filter_path, respond.
local json = require("espipe.server.json")
local es = require("espipe.server.es_errors")
local cluster = require("espipe.server.cluster")
local cluster_restore = require("espipe.server.cluster_restore")
local persist = require("espipe.server.persist")
local stats = require("espipe.server.stats")
local router = require("espipe.server.router")

local M = {}

local opts = {}
M.opts = opts

function M.configure(o)
  for k, v in pairs(o) do opts[k] = v end
  cluster.configure(opts)
  stats.configure(opts)
end

function M.init_worker()
  math.randomseed(math.floor(ngx.now() * 1000) + ngx.worker.pid())
  if opts.data then
    persist.open(opts.data)
    local ok, err = pcall(cluster_restore.restore)
    if not ok then ngx.log(ngx.ERR, "espipe serve: restoring ", opts.data, " failed: ", err) end
  end
end

local ACCEPTED = {
  ["application/json"] = true, ["application/x-ndjson"] = true,
  ["application/vnd.elasticsearch+json"] = true, ["application/vnd.elasticsearch+x-ndjson"] = true,
}
local VENDOR_JSON = "application/vnd.elasticsearch+json;compatible-with=8"

local function media_type(ct)
  return (ct:match("^%s*([^;%s]+)") or ""):lower()
end

local function read_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body then return body end
  local file = ngx.req.get_body_file()
  if not file then return nil end
  local f = io.open(file, "rb")
  if not f then return nil end
  body = f:read("*a")
  f:close()
  return body
end

-- _bulk bodies with a Content-Length are read from the request socket in
-- pieces of this size (nginx_conf sets lua_socket_buffer_size to match)
-- instead of as one string: LuaJIT maps every allocation of 128 KB and more
-- afresh, and faulting in an 8 MB body string cost as much CPU as parsing
-- it; the pieces come from (and go back to) LuaJIT's heap.
local PIECE = 65536

local function read_pieces(len)
  local sock, err = ngx.req.socket()
  if not sock then return nil, err end
  local pieces, got = {}, 0
  while got < len do
    local data, rerr = sock:receive(math.min(PIECE, len - got))
    if not data then return nil, rerr end
    pieces[#pieces + 1] = data
    got = got + #data
  end
  return pieces
end

local api_bulk = require("espipe.server.api_bulk")
local BUFFERED_MT = api_bulk.BUFFERED_MT
-- Slices of a buffered response: small enough to come from LuaJIT's heap
-- (128 KB and up is mapped and unmapped per allocation).
local SLICE = 65536

local function send(status, body, content_type, head)
  ngx.status = status
  ngx.header["Content-Type"] = content_type
  if type(body) == "table" and getmetatable(body) == BUFFERED_MT then
    -- bulk responses: never built as one 3 MB string
    local text, buf = body[1], body[2]
    ngx.header["Content-Length"] = #text + #buf
    ngx.print(text)
    while #buf > 0 do ngx.print(buf:get(SLICE)) end
    if body.free then buf:free() end
    return ngx.eof()
  end
  if type(body) == "table" then body = json.encode(body) end
  body = body or ""
  ngx.header["Content-Length"] = #body
  -- never ngx.exit(status): nginx closes silently on some codes (408, 444)
  if not head and #body > 0 then
    ngx.print(body)
  else
    ngx.send_headers()
  end
  return ngx.eof()
end

local function filter(body, spec)
  local fp = require("espipe.server.filter_path")
  if getmetatable(body) == BUFFERED_MT then body = api_bulk.text(body) end
  if type(body) == "string" then
    local decoded = json.decode_exact(body)
    if decoded == nil then return body end
    body = decoded
  end
  local out = fp.apply(body, spec)
  if out == nil then return json.object() end
  return out
end

-- nginx's own 413 (body over client_max_body_size): ES sends an empty body
function M.too_large()
  ngx.status = 413
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Content-Length"] = 0
  ngx.send_headers()
  return ngx.eof()
end

local function first(v)
  if type(v) == "table" then return v[1] end
  return v
end

-- the response's content type: ES's vendor type when the request uses it
local function response_type(headers)
  local accept, ctype = first(headers["accept"]), first(headers["content-type"])
  if (accept and accept:find("vnd.elasticsearch", 1, true))
      or (ctype and ctype:find("vnd.elasticsearch", 1, true)) then
    return VENDOR_JSON
  end
  return "application/json"
end

local function unsupported_type(ctype)
  return 406, { error = "Content-Type header [" .. (ctype or "") .. "] is not supported", status = 406 }
end

-- a whole body, inflated when gzip/deflate -> true, body (nil: none) | false, status, response
local function whole_body(headers, ctype)
  local body = read_body()
  if not body or #body == 0 then return true, nil end
  if not ctype or not ACCEPTED[media_type(ctype)] then return false, unsupported_type(ctype) end
  local enc = headers["content-encoding"]
  if enc ~= "gzip" and enc ~= "deflate" then return true, body end
  local inflated, err = require("espipe.server.gzip").inflate(body, opts.max_content_length)
  if inflated then return true, inflated end
  if err == "too_large" then return false, 413, "" end
  return false, es.parse_error("cannot decompress the request body: " .. tostring(err))
end

-- the request body: a plain _bulk body is read in pieces from the socket
-- -> true, body | false, status, response
local function request_body(method, path, headers)
  local ctype = first(headers["content-type"])
  local length = tonumber(headers["content-length"] or 0) or 0
  local chunked = headers["transfer-encoding"] ~= nil
  if length > 0 and not chunked and headers["content-encoding"] == nil
      and (method == "POST" or method == "PUT") and path:find("/_bulk/?$") then
    local pieces, err = read_pieces(length)
    if not pieces then return false, es.parse_error("cannot read the request body: " .. tostring(err)) end
    if not ctype or not ACCEPTED[media_type(ctype)] then return false, unsupported_type(ctype) end
    return true, pieces
  end
  if length > 0 or chunked then return whole_body(headers, ctype) end
  return true, nil
end

-- routes the request and writes what it changed to --data -> status, response, type
local function run(req)
  local ok, status, resp, rtype = pcall(router.dispatch, req)
  if not ok then
    ngx.log(ngx.ERR, "espipe serve: ", status)
    cluster.state.pending = {}
    status, resp = es.fail(500, "exception", "espipe serve internal error: " .. tostring(status))
  end
  local wok, werr = cluster.flush()
  if not wok then
    ngx.log(ngx.ERR, "espipe serve: writing --data failed: ", werr)
    status, resp = es.fail(500, "io_exception", "cannot persist the change: " .. tostring(werr))
  end
  return status, resp, rtype
end

function M.handle()
  local method = ngx.req.get_method()
  local headers = ngx.req.get_headers()
  local out_type = response_type(headers)
  local path = ngx.var.request_uri:match("^[^?]*")
  local args = ngx.req.get_uri_args(0)
  local node = tonumber(ngx.var.server_port) - (opts.port or 9200)
  local read, body, bad = request_body(method, path, headers)
  if not read then return send(body, bad, out_type) end
  local req = { method = method, path = path, args = args, body = body, node = node, headers = headers,
                opts = opts }
  if opts.auth then
    local principal, s, b, challenge = require("espipe.server.api_security").authenticate(req, opts.auth)
    if not principal then
      ngx.header["WWW-Authenticate"] = challenge
      return send(s, b, out_type, method == "HEAD")
    end
    req.principal = principal
  end
  local status, resp, rtype = run(req)
  if status == 444 then return ngx.exit(444) end
  local fp = args.filter_path
  if fp and type(fp) == "string" and fp ~= "" and (type(resp) == "table" or rtype == nil) and resp ~= nil
      and resp ~= "" and not (getmetatable(resp) == BUFFERED_MT and resp.filtered) then
    resp = filter(resp, fp)
  end
  return send(status, resp, rtype or out_type, method == "HEAD")
end

return M
