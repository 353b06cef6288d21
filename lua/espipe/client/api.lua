-- The named-parameter API of the client: client:name{ ... } from one
-- definition per Elasticsearch API (method, path, allowed query parameters,
-- body). Every key that is not a path, body or control key must be a query
-- parameter the API allows, else it is a typo and raises.
--
--   api.define(target, name, spec)  -- used by espipe.client.indices too
--   api.methods                     -- the document and search APIs of a client
local dispatch = require("espipe.client.dispatch")
local json = require("espipe.json")
local url = require("espipe.client.url")

local type, pairs, ipairs, tostring, error = type, pairs, ipairs, tostring, error
local segment, encode_query = url.segment, url.query
local http_error = dispatch.http_error

local M = {}
local Document = {}
M.methods = Document

local COMMON = { filter_path = true, error_trace = true, human = true }
local CONTROL = { headers = true, request_timeout = true }

-- list .. more, as a new list (parameter lists share their common part).
local function plus(list, more)
  local out = {}
  for _, k in ipairs(list) do out[#out + 1] = k end
  for _, k in ipairs(more) do out[#out + 1] = k end
  return out
end
M.plus = plus

local function set_of(list)
  local s = {}
  for _, k in ipairs(list) do s[k] = true end
  return s
end


-- Build the query from p: every key that is not a path/body/control key must
-- be an allowed query parameter of the API, else it is a typo and raises.
local function build_query(name, p, taken, allowed, level)
  local q, any = {}, false
  for k, v in pairs(p) do
    if not taken[k] and not CONTROL[k] then
      if allowed[k] or COMMON[k] then
        q[k] = v
        any = true
      else
        error("client:" .. name .. ": unknown parameter '" .. tostring(k) .. "'", level + 1)
      end
    end
  end
  return any and encode_query(q, level + 1) or nil
end

local function encode_body(body, name, level)
  local t = type(body)
  if t == "string" then return body end
  if t == "table" then
    local s, err = json.encode(body)
    if not s then error("client:" .. name .. ": body cannot be encoded: " .. tostring(err), level + 1) end
    return s
  end
  error("client:" .. name .. ": body must be a table or a JSON string, got " .. t, level + 1)
end


-- Define client:name{...} from a spec:
--   method (or method(p)), path(p) -> path, taken = { keys consumed by path/body },
--   query = { allowed query params }, body(p) -> table|string|nil
function M.define(target, name, spec)
  local allowed = set_of(spec.query or {})
  local taken = set_of(spec.taken or {})
  target[name] = function(self, p)
    if type(p) ~= "table" then
      error("client:" .. name .. " expects a table of named parameters", 2)
    end
    local client = self.client or self
    local path = spec.path(p)
    local method = spec.method
    if type(method) == "function" then method = method(p) end
    local req = {
      method = method, path = path,
      query = build_query(name, p, taken, allowed, 2),
      timeout = p.request_timeout,
    }
    local body = spec.body and spec.body(p)
    local headers = {}
    if p.headers then
      if type(p.headers) ~= "table" then error("client:" .. name .. ": headers must be a table", 2) end
      for k, v in pairs(p.headers) do headers[k] = v end
    end
    if body ~= nil then
      req.body = encode_body(body, name, 2)
      headers["Content-Type"] = headers["Content-Type"] or "application/json"
    end
    req.headers = headers
    if spec.exists then
      local res, err = client:perform(req)
      if not res then return nil, err end
      if res.status == 200 then return true end
      if res.status == 404 then return false end
      return nil, http_error(res, req)
    end
    return client:json_request(req)
  end
end

local function need(p, key, name)
  local v = p[key]
  if v == nil then error("client:" .. name .. ": '" .. key .. "' is required", 4) end
  return v
end
M.need = need

local function index_path(p, name, optional)
  if optional and p.index == nil then return "" end
  return "/" .. segment(need(p, "index", name), "index", 4)
end
M.index_path = index_path

local function doc_path(p, name, kind)
  return index_path(p, name) .. "/" .. kind .. "/" .. segment(need(p, "id", name), "id", 4)
end

local WRITE = { "routing", "refresh", "timeout", "wait_for_active_shards", "pipeline",
  "require_alias", "version", "version_type", "if_seq_no", "if_primary_term" }
local READ = { "routing", "preference", "realtime", "refresh", "_source", "_source_includes",
  "_source_excludes", "stored_fields", "version", "version_type" }

local function required_body(name)
  return function(p)
    if p.body == nil then error("client:" .. name .. ": 'body' is required", 4) end
    return p.body
  end
end

-- client:index{ index=, id=, body=, routing=, refresh=, if_seq_no=, op_type=, ... }
M.define(Document, "index", {
  method = function(p) return p.id == nil and "POST" or "PUT" end, taken = { "index", "id", "body" }, query = plus(WRITE, { "op_type" }),
  path = function(p)
    if p.id == nil then return index_path(p, "index") .. "/_doc" end
    return doc_path(p, "index", "_doc")
  end,
  body = required_body("index"),
})
M.define(Document, "create", {
  method = "PUT", taken = { "index", "id", "body" }, query = WRITE,
  path = function(p) return doc_path(p, "create", "_create") end,
  body = required_body("create"),
})

M.define(Document, "get", {
  method = "GET", taken = { "index", "id" }, query = READ,
  path = function(p) return doc_path(p, "get", "_doc") end,
})

M.define(Document, "get_source", {
  method = "GET", taken = { "index", "id" }, query = READ,
  path = function(p) return doc_path(p, "get_source", "_source") end,
})

M.define(Document, "exists", {
  method = "HEAD", taken = { "index", "id" }, query = READ, exists = true,
  path = function(p) return doc_path(p, "exists", "_doc") end,
})

local UPDATE_BODY = { "doc", "upsert", "doc_as_upsert", "script", "scripted_upsert", "detect_noop" }
-- client:update{ index=, id=, doc= | script=, upsert=, doc_as_upsert=, retry_on_conflict=, ... }
M.define(Document, "update", {
  method = "POST", taken = plus({ "index", "id", "body" }, UPDATE_BODY),
  query = { "routing", "refresh", "timeout", "wait_for_active_shards", "retry_on_conflict",
    "if_seq_no", "if_primary_term", "_source", "_source_includes", "_source_excludes", "lang",
    "require_alias" },
  path = function(p) return doc_path(p, "update", "_update") end,
  body = function(p)
    if p.body ~= nil then return p.body end
    local b, any = {}, false
    for _, k in ipairs(UPDATE_BODY) do
      if p[k] ~= nil then b[k] = p[k]; any = true end
    end
    if not any then error("client:update needs doc, script, upsert or body", 4) end
    if p.doc == nil and p.script == nil and p.body == nil then
      error("client:update needs doc or script (upsert alone only applies with them)", 4)
    end
    return b
  end,
})

M.define(Document, "delete", {
  method = "DELETE", taken = { "index", "id" }, query = WRITE,
  path = function(p) return doc_path(p, "delete", "_doc") end,
})

-- client:mget{ index=?, docs = { {_index=, _id=}, ... } | ids = { ... } | body = }
M.define(Document, "mget", {
  method = "POST", taken = { "index", "docs", "ids", "body" }, query = plus(READ, {}),
  path = function(p) return index_path(p, "mget", true) .. "/_mget" end,
  body = function(p)
    if p.body ~= nil then return p.body end
    if p.docs ~= nil then return { docs = p.docs } end
    if p.ids ~= nil then
      if p.index == nil then error("client:mget: ids needs index (or use docs)", 4) end
      return { ids = p.ids }
    end
    error("client:mget needs docs, ids or body", 4)
  end,
})

local SEARCH = { "q", "size", "from", "sort", "scroll", "routing", "preference", "track_total_hits",
  "rest_total_hits_as_int", "_source", "_source_includes", "_source_excludes", "search_type",
  "request_cache", "allow_no_indices", "ignore_unavailable", "expand_wildcards", "timeout",
  "terminate_after", "typed_keys", "seq_no_primary_term", "version", "allow_partial_search_results",
  "stored_fields", "df", "default_operator", "analyzer", "lenient" }
M.define(Document, "search", {
  method = "POST", taken = { "index", "body" }, query = SEARCH,
  path = function(p) return index_path(p, "search", true) .. "/_search" end,
  body = function(p) return p.body end,
})

M.define(Document, "count", {
  method = "POST", taken = { "index", "body" },
  query = { "q", "routing", "preference", "allow_no_indices", "ignore_unavailable",
    "expand_wildcards", "terminate_after", "df", "default_operator", "analyzer", "lenient" },
  path = function(p) return index_path(p, "count", true) .. "/_count" end,
  body = function(p) return p.body end,
})

M.define(Document, "refresh", {
  method = "POST", taken = { "index" },
  query = { "allow_no_indices", "ignore_unavailable", "expand_wildcards" },
  path = function(p) return index_path(p, "refresh", true) .. "/_refresh" end,
})

M.define(Document, "info", {
  method = "GET", taken = {}, query = {},
  path = function() return "/" end,
})

return M
