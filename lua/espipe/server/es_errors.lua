-- Elasticsearch error bodies: the envelope every API answers with on failure,
-- and the exceptions the dev server raises, with ES's types and reasons.
local errors = require("espipe.client.errors")

local M = {}

-- The error a query, sort or time value fails to parse with: an espipe error
-- (status 400, parsing_exception unless typ says otherwise) that search code
-- returns as nil, err and the APIs turn into the envelope.
function M.query(reason, typ)
  return errors.new{ kind = "query", status = 400, type = typ or "parsing_exception",
    reason = reason, message = reason }
end

-- cause = { type =, reason =, <extra keys> } -> status, envelope table
function M.envelope(status, cause, root)
  local err = {}
  for k, v in pairs(cause) do err[k] = v end
  err.root_cause = { root or cause }
  return status, { error = err, status = status }
end

function M.fail(status, type_, reason, extra)
  local cause = { type = type_, reason = reason }
  if extra then for k, v in pairs(extra) do cause[k] = v end end
  return M.envelope(status, cause)
end

function M.bad_request(reason)
  return M.fail(400, "illegal_argument_exception", reason)
end

function M.parse_error(reason)
  return M.fail(400, "parse_exception", reason)
end

function M.validation(msgs)
  local parts = {}
  for i, m in ipairs(msgs) do parts[#parts + 1] = i .. ": " .. m .. ";" end
  return M.fail(400, "action_request_validation_exception", "Validation Failed: " .. table.concat(parts))
end

function M.index_not_found_cause(name)
  return { type = "index_not_found_exception", reason = "no such index [" .. name .. "]",
           ["resource.type"] = "index_or_alias", ["resource.id"] = name,
           index_uuid = "_na_", index = name }
end

function M.index_not_found(name)
  return M.envelope(404, M.index_not_found_cause(name))
end

function M.context_missing(id)
  local cause = { type = "search_context_missing_exception",
                  reason = "No search context found for id [" .. tostring(id) .. "]" }
  local err = {
    root_cause = { cause }, type = "search_phase_execution_exception", reason = "all shards failed",
    phase = "query", grouped = true,
    failed_shards = { { shard = -1, index = require("espipe.server.json").null, reason = cause } },
    caused_by = cause,
  }
  return 404, { error = err, status = 404 }
end

function M.version_conflict_cause(idx, shard, id, detail)
  return { type = "version_conflict_engine_exception", reason = "[" .. id .. "]: version conflict, " .. detail,
           index_uuid = idx.uuid, shard = tostring(shard), index = idx.name }
end

function M.rejected_coordinating(bytes)
  return M.fail(429, "es_rejected_execution_exception",
    "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, "
    .. "all_bytes=0, coordinating_operation_bytes=" .. bytes .. ", max_coordinating_and_primary_bytes=53687091]")
end

function M.unavailable()
  return M.fail(503, "unavailable_shards_exception",
    "[chaos] primary shard is not active Timeout: [1m], injected by espipe serve --chaos")
end

return M
