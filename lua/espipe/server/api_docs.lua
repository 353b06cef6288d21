-- Single-document APIs: _doc (index, get, exists, delete), _create,
-- _source, _update and _mget.
local json = require("espipe.server.json")
local es = require("espipe.server.es_errors")
local cluster = require("espipe.server.cluster")
local cluster_indices = require("espipe.server.cluster_indices")
local cluster_shards = require("espipe.server.cluster_shards")
local params = require("espipe.server.params")
local writes = require("espipe.server.writes")
local stats = require("espipe.server.stats")
local doc_fields = require("espipe.server.doc_fields")
local source_filter = require("espipe.server.source_filter")
local mapping = require("espipe.server.mapping")

local M = {}

local function cause_reply(status, cause)
  return es.envelope(status, cause)
end

-- if_seq_no / if_primary_term / version / version_type from the query string
local function concurrency(args, op)
  local o = {}
  local seq, pt = args.if_seq_no, args.if_primary_term
  if (seq ~= nil) ~= (pt ~= nil) then
    return nil, es.validation({ seq and "ifSeqNo is set, but primary term is [0]" or "ifSeqNo is unassigned, but primary term is [" .. pt .. "]" })
  end
  if seq ~= nil then
    o.if_seq_no, o.if_primary_term = tonumber(seq), tonumber(pt)
    if not o.if_seq_no or not o.if_primary_term then
      return nil, es.bad_request("if_seq_no and if_primary_term must be numbers")
    end
  end
  local vt = params.str(args, "version_type")
  local v = args.version
  if vt ~= nil and vt ~= "internal" and vt ~= "external" and vt ~= "external_gte" and vt ~= "external_gt" then
    return nil, es.bad_request("No version type match [" .. vt .. "]")
  end
  if v ~= nil then
    o.version = tonumber(v)
    if not o.version then return nil, es.bad_request("Failed to parse version [" .. tostring(v) .. "]") end
    if (vt == nil or vt == "internal") and op == "index" then
      return nil, es.validation({ "internal versioning can not be used for optimistic concurrency control. "
        .. "Please use `if_seq_no` and `if_primary_term` instead" })
    end
  end
  if vt and vt ~= "internal" and v == nil then
    return nil, es.validation({ "an external version must be provided with version_type [" .. vt .. "]" })
  end
  o.version_type = vt
  return o
end

local function count_write(req, idx, sh)
  stats.docs(req.node, 1, idx.shards[sh].node ~= req.node and 1 or 0)
end

local function after_write(req, idx, sh, result)
  local refresh, s, e = params.refresh(req.args)
  if refresh == nil and s then return s, e end
  if refresh then
    cluster_shards.refresh_shard(idx.shards[sh])
    if refresh == "true" then result.forced_refresh = true end
  end
  return nil
end

local function do_index(req, id, create)
  local src = req.body
  if not src or src:match("^%s*$") then return es.parse_error("request body is required") end
  local o, s, e = concurrency(req.args, "index")
  if not o then return s, e end
  local op_type = params.str(req.args, "op_type")
  if op_type == "create" then create = true
  elseif op_type ~= nil and op_type ~= "index" then
    return es.bad_request("opType must be 'create' or 'index', found: [" .. op_type .. "]")
  end
  if id == "" then return es.bad_request("if _id is specified it must not be empty") end
  if #id > 512 then
    return es.validation({ "id [" .. id .. "] is too long, must be no longer than 512 bytes but was: " .. #id })
  end
  local doc, derr = json.decode(src)
  if type(doc) ~= "table" or json.is_array(doc) then
    return es.fail(400, "document_parsing_exception", "[1:1] failed to parse: " .. tostring(derr or "the document must be a JSON object"))
  end
  local idx, sh, route = writes.target { index = req.params.index, id = id, routing = params.str(req.args, "routing"),
    auto_create = true, require_alias = params.flag(req.args, "require_alias", false) }
  if not idx then return cause_reply(sh, route) end
  s, e = writes.check_source(idx, id, src, doc)
  if s then return cause_reply(s, e) end
  o.create, o.routing = create, route
  local rec, created
  rec, created, e = cluster_shards.put(idx, sh, id, src, o)
  if not rec then return cause_reply(created, e) end
  count_write(req, idx, sh)
  local result = writes.result(idx, rec, created and "created" or "updated")
  s, e = after_write(req, idx, sh, result)
  if s then return s, e end
  if created then
    -- as Elasticsearch: where the new document lives
    ngx.header["Location"] = "/" .. ngx.escape_uri(idx.name) .. "/_doc/" .. ngx.escape_uri(id)
      .. (route and ("?routing=" .. ngx.escape_uri(route)) or "")
  end
  return created and 201 or 200, result
end

function M.index(req) return do_index(req, req.params.id, false) end
function M.create(req) return do_index(req, req.params.id, true) end
function M.index_auto(req) return do_index(req, cluster.auto_id(), true) end

local function source_spec(args)
  local spec = args._source
  if spec == "false" then return false end
  if spec == "true" then spec = nil end
  local inc, exc = args._source_includes or args._source_include, args._source_excludes or args._source_exclude
  if type(spec) == "string" then
    local list = {}
    for p in spec:gmatch("[^,]+") do list[#list + 1] = p end
    spec = list
  end
  if inc or exc then
    local t = { includes = {}, excludes = {} }
    for p in tostring(inc or ""):gmatch("[^,]+") do t.includes[#t.includes + 1] = p end
    for p in tostring(exc or ""):gmatch("[^,]+") do t.excludes[#t.excludes + 1] = p end
    spec = t
  end
  return spec
end
M.source_spec = source_spec

-- body of a found document
-- stored_fields: "a,b" / ["a", "b"] -> list | nil
local function stored_list(v)
  if v == nil then return nil end
  if type(v) == "table" then return v end
  local out = {}
  for p in tostring(v):gmatch("[^,]+") do out[#out + 1] = p end
  return out
end

-- the values of the stored fields asked for (mapped with store: true)
local function stored_fields(idx, rec, list)
  local props = mapping.to_table(idx.mapping)
  local fields, src = json.object(), nil
  for _, f in ipairs(list) do
    local ty, path = doc_fields.resolve_field(props, f)
    local def = props.properties and props.properties[path]
    if ty and type(def) == "table" and def.store == true then
      src = src or json.decode(rec.src)
      local vals = json.array()
      for _, v in ipairs(doc_fields.field_values(src, path)) do
        if v ~= json.null then vals[#vals + 1] = v end
      end
      if #vals > 0 then fields[f] = vals end
    end
  end
  return fields
end

-- get_result(idx, rec, spec[, stored, asked]) -> a GET answer for rec;
-- with stored fields the source comes only when listed or asked for (_source=)
local function get_result(idx, rec, spec, stored, asked)
  local r = { _index = idx.name, _id = rec.id, _version = rec.v, _seq_no = rec.s, _primary_term = rec.t,
              found = true }
  if rec.r then r._routing = rec.r end
  local with_source = spec ~= false and mapping.source_enabled(idx.mapping)
  if stored then
    local keep = asked == true
    for _, f in ipairs(stored) do if f == "_source" then keep = true end end
    with_source = with_source and keep
    local fields = stored_fields(idx, rec, stored)
    if next(fields) then r.fields = fields end
  end
  if with_source then r._source = source_filter.filter(json.raw(rec.src), spec) end
  return r
end

-- realtime reads see every acknowledged write; realtime=false only what was
-- refreshed (refresh=true refreshes the shard first)
local function read_mode(args)
  local realtime, s, e = params.flag(args, "realtime", true)
  if realtime == nil then return nil, s, e end
  local refresh
  refresh, s, e = params.flag(args, "refresh", false)
  if refresh == nil then return nil, s, e end
  return { realtime = realtime, refresh = refresh }
end

-- finds a document for reading: idx, rec | nil, status, body
local function lookup(index_name, id, route, mode)
  local indices, s, e = cluster_indices.resolve(index_name)
  if not indices then return nil, s, e end
  local idx = indices[1]
  if #indices ~= 1 then
    return nil, es.bad_request("alias [" .. index_name .. "] has more than one index associated with it ["
      .. #indices .. "], can't execute a single index op")
  end
  local name_alias = not cluster.state.indices[index_name] and idx.aliases[index_name]
  if name_alias and name_alias.search_routing and not route then route = tostring(name_alias.search_routing) end
  local sh, herr = cluster_shards.shard_for(idx, id, route)
  if not sh then return nil, es.bad_request(herr) end
  local shard = idx.shards[sh]
  if mode and mode.refresh then cluster_shards.refresh_shard(shard) end
  if mode and not mode.realtime then return idx, shard.visible[id], sh end
  return idx, shard.docs[id], sh
end

-- GET with ?version=: the stored version must be that one
local function version_check(req, idx, sh, rec)
  local v = req.args.version
  if v == nil or not rec then return nil end
  local want = tonumber(v)
  if not want then
    return es.bad_request("Failed to parse long parameter [version] with value [" .. tostring(v) .. "]")
  end
  if rec.v ~= want then
    return es.envelope(409, es.version_conflict_cause(idx, sh, rec.id,
      "current version [" .. rec.v .. "] is different than the one provided [" .. want .. "]"))
  end
  return nil
end

-- the index, record (nil: missing) and shard of the document a GET names
-- | nil, status, error body
local function requested_doc(req)
  local mode, ms, me = read_mode(req.args)
  if not mode then return nil, ms, me end
  return lookup(req.params.index, req.params.id, params.str(req.args, "routing"), mode)
end

function M.get(req)
  local idx, rec, e = requested_doc(req)
  if not idx then return rec, e end
  if not rec then return 404, { _index = idx.name, _id = req.params.id, found = false } end
  local vs, vb = version_check(req, idx, e, rec)
  if vs then return vs, vb end
  if req.method == "HEAD" then return 200, "" end
  return 200, get_result(idx, rec, source_spec(req.args), stored_list(req.args.stored_fields),
    req.args._source ~= nil or req.args._source_includes ~= nil)
end

function M.source(req)
  local idx, rec, e = requested_doc(req)
  if not idx then return rec, e end
  if not rec then
    return es.fail(404, "resource_not_found_exception",
      "Document not found [" .. idx.name .. "]/[" .. req.params.id .. "]")
  end
  if not mapping.source_enabled(idx.mapping) then
    return es.fail(404, "resource_not_found_exception",
      "Source not available [" .. idx.name .. "]/[" .. req.params.id .. "]")
  end
  local vs, vb = version_check(req, idx, e, rec)
  if vs then return vs, vb end
  if req.method == "HEAD" then return 200, "" end
  local spec = source_spec(req.args)
  if spec == nil then return 200, rec.src end
  return 200, source_filter.filter(json.raw(rec.src), spec) or json.object()
end

function M.delete(req)
  local o, s, e = concurrency(req.args, "delete")
  if not o then return s, e end
  local idx, sh, route = writes.target { index = req.params.index, id = req.params.id,
    routing = params.str(req.args, "routing"), auto_create = false }
  if not idx then return cause_reply(sh, route) end
  o.routing = route
  local rec, found
  rec, found, e = cluster_shards.remove(idx, sh, req.params.id, o)
  if not rec then return cause_reply(found, e) end
  count_write(req, idx, sh)
  local result = writes.result(idx, rec, found and "deleted" or "not_found")
  s, e = after_write(req, idx, sh, result)
  if s then return s, e end
  return found and 200 or 404, result
end

function M.update(req)
  local body, s, e = params.body(req, true)
  if not body then return s, e end
  local o
  o, s, e = concurrency(req.args, "update")
  if not o then return s, e end
  if o.version or o.version_type then
    return es.validation({ "Update requests do not support versioning. Please use `if_seq_no` and `if_primary_term` instead" })
  end
  local idx, sh, route = writes.target { index = req.params.index, id = req.params.id,
    routing = params.str(req.args, "routing"), auto_create = true,
    require_alias = params.flag(req.args, "require_alias", false) }
  if not idx then return cause_reply(sh, route) end
  o.routing = route
  -- a scripted update lets other requests run between its read and its write (conflicts happen, as in ES)
  o.retry_on_conflict, o.pause = tonumber(req.args.retry_on_conflict), function() ngx.sleep(0) end
  local status, result = writes.update(idx, sh, req.params.id, body, o)
  if status >= 300 then return cause_reply(status, result) end
  count_write(req, idx, sh)
  local spec = body._source
  if spec == nil then spec = source_spec(req.args) end
  if spec ~= nil and spec ~= false and result.result ~= "deleted" then
    local rec = idx.shards[sh].docs[req.params.id]
    result.get = { _seq_no = rec.s, _primary_term = rec.t, found = true,
                   _source = source_filter.filter(json.raw(rec.src), spec) }
  end
  s, e = after_write(req, idx, sh, result)
  if s then return s, e end
  return status, result
end

function M.mget(req)
  local body, s, e = params.body(req, true)
  if not body then return s, e end
  local default_index = req.params.index
  local items = {}
  if type(body.docs) == "table" then
    for _, d in ipairs(body.docs) do items[#items + 1] = d end
  elseif type(body.ids) == "table" then
    if not default_index then return es.validation({ "index is missing for doc 0" }) end
    for _, id in ipairs(body.ids) do items[#items + 1] = { _id = id } end
  end
  if #items == 0 then return es.validation({ "no documents to get" }) end
  local missing = {}
  for i, d in ipairs(items) do
    if (d._index or default_index) == nil then missing[#missing + 1] = "index is missing for doc " .. (i - 1) end
    if d._id == nil then missing[#missing + 1] = "id is missing for doc " .. (i - 1) end
  end
  if #missing > 0 then return es.validation(missing) end
  local default_spec = source_spec(req.args)
  local mode, ms, me = read_mode(req.args)
  if not mode then return ms, me end
  local default_stored = stored_list(req.args.stored_fields)
  local docs = json.array()
  for _, d in ipairs(items) do
    local name, id = d._index or default_index, tostring(d._id)
    local route = d.routing and tostring(d.routing) or params.str(req.args, "routing")
    local idx, rec, eb = lookup(name, id, route, mode)
    if not idx then
      local cause = eb.error and eb.error.root_cause and eb.error.root_cause[1] or { type = "exception", reason = "failed" }
      docs[#docs + 1] = { _index = name, _id = id, error = cause }
    elseif not rec then
      docs[#docs + 1] = { _index = idx.name, _id = id, found = false }
    else
      local spec = d._source
      if spec == nil then spec = default_spec end
      docs[#docs + 1] = get_result(idx, rec, spec, stored_list(d.stored_fields) or default_stored,
        d._source ~= nil or req.args._source ~= nil)
    end
  end
  return 200, { docs = docs }
end

return M
