-- The index-level limits Elasticsearch enforces on a search request
-- (index.max_result_window, max_slices_per_scroll, max_terms_count,
-- max_regex_length, max_docvalue_fields_search, max_rescore_window), with
-- its messages. The smallest value over the searched indices applies.
local es = require("espipe.server.es_errors")
local json = require("espipe.server.json")

local M = {}

local DEFAULTS = { max_result_window = 10000, max_slices_per_scroll = 1024, max_terms_count = 65536,
                   max_regex_length = 1000, max_docvalue_fields_search = 100, max_script_fields = 32 }

local function limit(indices, key)
  local out
  for _, idx in ipairs(indices) do
    local v = tonumber(idx.settings and idx.settings[key])
    if key == "max_rescore_window" and v == nil then v = tonumber(idx.settings and idx.settings.max_result_window) end
    v = v or DEFAULTS[key] or DEFAULTS.max_result_window
    if not out or v < out then out = v end
  end
  return out or DEFAULTS[key] or DEFAULTS.max_result_window
end
M.limit = limit

local function query_error(reason)
  return es.fail(400, "query_shard_exception", "failed to create query: " .. reason)
end

local function regex_too_long(value, indices)
  local max = limit(indices, "max_regex_length")
  if #value <= max then return nil end
  return es.fail(400, "illegal_argument_exception", "The length of regex [" .. #value .. "] used in the "
    .. "Regexp Query request has exceeded the allowed maximum of [" .. max .. "]. This maximum can be set "
    .. "by changing the [index.max_regex_length] index level setting.")
end

-- walks a query for terms/regexp/ids clauses (and query_string /regex/
-- terms) over a limit
local function check_query(q, indices)
  if type(q) ~= "table" or q == json.null then return nil end
  for name, body in pairs(q) do
    if name == "terms" and type(body) == "table" then
      for field, values in pairs(body) do
        if field ~= "boost" and field ~= "_name" and type(values) == "table" and #values > 0 then
          local max = limit(indices, "max_terms_count")
          if #values > max then
            return query_error("The number of terms [" .. #values .. "] used in the Terms Query request has "
              .. "exceeded the allowed maximum of [" .. max .. "]. This maximum can be set by changing the "
              .. "[index.max_terms_count] index level setting.")
          end
        end
      end
    elseif name == "regexp" and type(body) == "table" then
      for field, spec in pairs(body) do
        local value = type(spec) == "table" and spec.value or spec
        if field ~= "boost" and field ~= "_name" and type(value) == "string" then
          local s, e = regex_too_long(value, indices)
          if s then return s, e end
        end
      end
    elseif name == "query_string" and type(body) == "table" then
      for _, value in ipairs(require("espipe.server.lucene_query").regexps(body) or {}) do
        local s, e = regex_too_long(value, indices)
        if s then return s, e end
      end
    elseif name == "ids" and type(body) == "table" and type(body.values) == "table" then
      local max = limit(indices, "max_result_window")
      if #body.values > max then
        return query_error("Too many ids specified, allowed max result window is [" .. max .. "]")
      end
    elseif type(body) == "table" then
      local s, e = check_query(body, indices)
      if s then return s, e end
    end
  end
  return nil
end

-- check(indices, body, scroll) -> nil | status, error body
function M.check(indices, body, scroll)
  -- the query is built (and refused) on the shards before the window is checked
  local qs, qe = check_query(body.query, indices)
  if qs then return qs, qe end
  local from, size = body.from or 0, body.size or 10
  local window = limit(indices, "max_result_window")
  if scroll then
    if size > window then
      return es.bad_request("Batch size is too large, size must be less than or equal to: [" .. window
        .. "] but was [" .. size .. "]. Scroll batch sizes cost as much memory as result windows so they are "
        .. "controlled by the [index.max_result_window] index level setting.")
    end
  elseif from + size > window then
    return es.bad_request("Result window is too large, from + size must be less than or equal to: [" .. window
      .. "] but was [" .. (from + size) .. "]. See the scroll api for a more efficient way to request large data "
      .. "sets. This limit can be set by changing the [index.max_result_window] index level setting.")
  end
  if type(body.rescore) == "table" then
    local max = limit(indices, "max_rescore_window")
    local list = body.rescore[1] ~= nil and body.rescore or { body.rescore }
    for _, r in ipairs(list) do
      local w = type(r) == "table" and tonumber(r.window_size) or 10
      if w > max then
        return es.bad_request("Rescore window [" .. w .. "] is too large. It must be less than [" .. max
          .. "]. This prevents allocating massive heaps for storing the results to be rescored. This limit can "
          .. "be set by changing the [index.max_rescore_window] index level setting.")
      end
    end
  end
  if type(body.docvalue_fields) == "table" then
    local max = limit(indices, "max_docvalue_fields_search")
    if #body.docvalue_fields > max then
      return es.bad_request("Trying to retrieve too many docvalue_fields. Must be less than or equal to: [" .. max
        .. "] but was [" .. #body.docvalue_fields .. "]. This limit can be set by changing the "
        .. "[index.max_docvalue_fields_search] index level setting.")
    end
  end
  if scroll and type(body.slice) == "table" and tonumber(body.slice.max) then
    local max = limit(indices, "max_slices_per_scroll")
    if tonumber(body.slice.max) > max then
      return es.bad_request("The number of slices [" .. body.slice.max .. "] is too large. It must be less than ["
        .. max .. "]. This limit can be set by changing the [index.max_slices_per_scroll] index level setting.")
    end
  end
  return nil
end

return M
