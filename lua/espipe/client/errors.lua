-- The one error shape of espipe: runtime failures return nil, err where err
-- is a table with these fields (each optional but message/kind):
--   kind     "json" | "http" | "transport" | "input" | "config" | "systemic" | ...
--            ("systemic": the cluster cannot be used at all — 401/403, TLS,
--            unknown host, refused at start; a job stops at once; the
--            original kind is in cause)
--   host     the cluster URL a transport or systemic error concerns
--   message  the human text
--   status   HTTP status, type/reason from an Elasticsearch error envelope
--   request  { method =, path = } (never credentials)
--   offset, line, field  where in the input the problem is
-- and whose tostring is one readable line.
--
-- The client's constructors live here too: transport_error (a failed
-- exchange) and systemic (mark an error as stopping the job); the error of an
-- HTTP response needs its body decoded, so it is espipe.client.dispatch's
-- http_error. Pure Lua: the dev server uses this module inside nginx.
local type, tostring, setmetatable, getmetatable = type, tostring, setmetatable, getmetatable

local M = {}

local mt = {}
mt.__index = mt

local function where(e)
  local parts = {}
  if e.line then parts[#parts + 1] = "line " .. e.line end
  if e.field then parts[#parts + 1] = "field " .. e.field end
  if e.offset then parts[#parts + 1] = "byte " .. e.offset end
  return #parts > 0 and (" at " .. table.concat(parts, ", ")) or ""
end

function mt.__tostring(e)
  local s = ""
  if e.status then s = s .. e.status .. " " end
  if e.type then s = s .. e.type .. ": " end
  s = s .. (e.reason or e.message or e.kind or "error")
  s = s .. where(e)
  if e.request and e.request.method then
    s = s .. " (" .. e.request.method .. " " .. (e.request.path or "") .. ")"
  end
  -- a job stopped by its cluster names the cluster (never with credentials)
  local host = e.host
  if host and (e.kind == "systemic" or e.kind == "transport") and not s:find(host, 1, true) then
    s = s .. " on " .. host
  end
  return s
end

-- errors.new{ kind = ..., message = ..., ... } -> err
function M.new(fields)
  if type(fields) ~= "table" then
    error("errors.new expects a table, got " .. type(fields), 2)
  end
  return setmetatable(fields, mt)
end

function M.is(v)
  return getmetatable(v) == mt
end

-- What an error says about its request (never credentials).
function M.request_of(req)
  return { method = req.method, path = req.path }
end

-- A transport error with its request attached.
function M.transport_error(err, req)
  if type(err) ~= "table" then
    err = { kind = "transport", message = tostring(err) }
  end
  if not err.request then err.request = M.request_of(req) end
  if not M.is(err) then err = M.new(err) end
  return err
end

-- Mark err as systemic (the job must stop): kind becomes "systemic", the
-- original kind is kept in err.cause.
function M.systemic(err)
  if err.kind ~= "systemic" then err.cause, err.kind = err.kind, "systemic" end
  return err
end

return M
