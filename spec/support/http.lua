-- A test-only HTTP client for specs: runs the `curl` command, so what the
-- specs observe does not depend on espipe's own C transport.
--   http.request{ method =, url =, body =, headers = {k = v}, gzip = bool, cacert = file }
--     -> { status =, body =, headers = {lowercase name = value}, curl_exit = }
--   http.json(method, url[, body]) -> status, decoded body, raw response
--     (a table body is encoded as JSON; a string is sent as is)
local json = require("espipe.server.json")

local M = {}

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end
M.slurp = slurp

function M.request(r)
  local body_file, out_file, head_file = os.tmpname(), os.tmpname(), os.tmpname()
  local args = { "curl", "-s", "--max-time", tostring(r.timeout or 30), "-o", q(out_file), "-D", q(head_file),
                 "-w", "'%{http_code}'", "-X", q(r.method or "GET") }
  if r.method == "HEAD" then args[#args] = "-I" args[#args - 1] = "" end
  local headers = r.headers or {}
  if r.cacert then args[#args + 1] = "--cacert " .. q(r.cacert) end
  if r.body ~= nil then
    local f = assert(io.open(body_file, "wb"))
    f:write(r.body)
    f:close()
    if r.gzip then
      assert(os.execute("gzip -c " .. q(body_file) .. " > " .. q(body_file .. ".gz")))
      os.rename(body_file .. ".gz", body_file)
      args[#args + 1] = "-H 'Content-Encoding: gzip'"
    end
    args[#args + 1] = "--data-binary @" .. q(body_file)
    if headers["Content-Type"] == nil then args[#args + 1] = "-H 'Content-Type: application/json'" end
  end
  for k, v in pairs(headers) do args[#args + 1] = "-H " .. q(k .. ": " .. v) end
  args[#args + 1] = q(r.url)
  local p = io.popen(table.concat(args, " ") .. "; echo \" $?\"")
  local out = p:read("*a")
  p:close()
  local code, exit = out:match("(%d+)%s+(%d+)%s*$")
  -- (with HEAD, curl -I writes the headers where the body would go)
  local res = { status = tonumber(code) or 0, curl_exit = tonumber(exit),
                body = r.method == "HEAD" and "" or slurp(out_file), headers = {} }
  for line in slurp(head_file):gmatch("[^\r\n]+") do
    local k, v = line:match("^([^:]+):%s*(.*)$")
    if k then res.headers[k:lower()] = v end
  end
  os.remove(body_file)
  os.remove(out_file)
  os.remove(head_file)
  return res
end

function M.json(method, url, body, headers)
  if type(body) == "table" then body = json.encode(body) end
  local res = M.request { method = method, url = url, body = body, headers = headers }
  local decoded = json.decode(res.body)
  return res.status, decoded, res
end

-- NDJSON body from a list of tables/strings (each line gets its newline)
function M.ndjson(lines)
  local out = {}
  for i, l in ipairs(lines) do out[i] = type(l) == "table" and json.encode(l) or l end
  return table.concat(out, "\n") .. "\n"
end

function M.bulk(url, lines, query)
  return M.json("POST", url .. "/_bulk" .. (query or ""), M.ndjson(lines),
    { ["Content-Type"] = "application/x-ndjson" })
end

return M
