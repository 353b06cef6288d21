-- One access-log event per request, queued for the shipper (log phase: no I/O here).
local shipper = require "espipe.ngx.log_shipper"

local M = {}

local function iso8601(t)
  return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t)) .. string.format(".%03dZ", math.floor((t % 1) * 1000))
end

function M.push()
  local var = ngx.var
  shipper.push{
    ["@timestamp"] = iso8601(ngx.req.start_time()),
    method = ngx.req.get_method(),
    uri = var.uri,
    args = var.args,
    status = ngx.status,
    bytes_sent = tonumber(var.bytes_sent),
    request_time = tonumber(var.request_time),
    remote_addr = var.remote_addr,
    user_agent = var.http_user_agent,
    request_id = var.request_id,
    worker = ngx.worker.id(),
  }
end

return M
