-- Document writes shared by the single-document APIs and _bulk: index,
-- create, delete and update on one document, returning ES's result fields
-- or an ES error cause. Nothing here knows about HTTP.
local json = require("espipe.server.json")
local es = require("espipe.server.es_errors")
local cluster = require("espipe.server.cluster")
local cluster_indices = require("espipe.server.cluster_indices")
local cluster_shards = require("espipe.server.cluster_shards")
local mapping = require("espipe.server.mapping")
local source_syntax = require("espipe.server.source_syntax")

local M = {}

-- Effective routing through an alias with index_routing.
function M.routing(alias_name, alias, route)
  local ar = alias and alias.index_routing
  if ar == nil then return route end
  ar = tostring(ar)
  if ar:find(",", 1, true) then
    return nil, "Alias [" .. alias_name .. "] has index routing associated with it [" .. ar
      .. "], and was provided with routing value [" .. tostring(route) .. "], rejecting operation"
      -- ES words the comma case as "resolved to several routing values"
  end
  if route ~= nil and route ~= ar then
    return nil, "Alias [" .. alias_name .. "] has index routing associated with it [" .. ar
      .. "], and was provided with routing value [" .. route .. "], rejecting operation"
  end
  return ar
end

-- Target of a write: idx, shard number, routing | nil, status, cause
-- t: { index = name, id =, routing =, auto_create =, require_alias = }
function M.target(t)
  local name = t.index
  local idx, alias, c
  if t.require_alias and not cluster_indices.alias_indices(name) then
    return nil, 404, { type = "index_not_found_exception",
      reason = "no such index [" .. name .. "] and [require_alias] request flag is [true] and [" .. name
        .. "] is not an alias", ["resource.type"] = "index_expression", ["resource.id"] = name,
      index_uuid = "_na_", index = name }
  end
  idx, alias, c = cluster_indices.index_for_write(name, t.auto_create)
  if not idx then
    return nil, alias, c and c.error and c.error.root_cause and c.error.root_cause[1] or c
  end
  local route, rerr = M.routing(name, alias, t.routing)
  if rerr then return nil, 400, { type = "illegal_argument_exception", reason = rerr } end
  if route == nil and mapping.routing_required(idx.mapping) then
    return nil, 400, { type = "routing_missing_exception",
      reason = "routing is required for [" .. idx.name .. "]/[" .. tostring(t.id) .. "]",
      index_uuid = idx.uuid, index = idx.name }
  end
  if t.id == nil then return idx, nil, route end
  local sh, herr = cluster_shards.shard_for(idx, t.id, route)
  if not sh then return nil, 400, { type = "illegal_argument_exception", reason = herr } end
  return idx, sh, route
end

-- first_high(s, from) -> the offset of the first byte >= 0x80 in s at or
-- after from (default 1), or nil. In LuaJIT 32 bytes at a time: a pattern
-- find costs tens of instructions a byte and, being NYI, stops the JIT
-- compiling the loop that calls it (10x slower _bulk); every bulk piece
-- goes through here.
local first_high
local has_ffi, ffi = pcall(require, "ffi")
if has_ffi then
  local bor, band = require("bit").bor, require("bit").band
  local u8p, u64p = ffi.typeof("const uint8_t *"), ffi.typeof("const uint64_t *")
  local HIGH = ffi.cast("uint64_t", 0x80808080) * 0x100000001 -- 0x8080808080808080
  first_high = function(s, from)
    local i = (from or 1) - 1
    local n = #s
    local p = ffi.cast(u8p, s)
    local q = ffi.cast(u64p, p + i)
    local k = 0
    -- 64 bytes a step: eight 64-bit words or'ed, one test of their top bits
    while i + 64 <= n do
      local w = bor(q[k], q[k + 1], q[k + 2], q[k + 3], q[k + 4], q[k + 5], q[k + 6], q[k + 7])
      if band(w, HIGH) ~= 0 then break end
      i, k = i + 64, k + 8
    end
    while i < n do
      if p[i] >= 0x80 then return i + 1 end
      i = i + 1
    end
    return nil
  end
else
  first_high = function(s, from) return (s:find("[\128-\255]", from)) end
end
M.first_high = first_high

-- invalid_utf8(s) -> nil | the byte offset of the first invalid UTF-8
-- sequence in s, the byte Jackson names, and "start" or "middle" (a lead
-- byte that starts no sequence, or a bad continuation byte)
local byte = string.byte
function M.invalid_utf8(s)
  local i = first_high(s)
  if not i then return nil end
  local n = #s
  while i <= n do
    local c = byte(s, i)
    local len, min
    if c < 0x80 then len = 1
    elseif c >= 0xC2 and c <= 0xDF then len, min = 2, 0x80
    elseif c >= 0xE0 and c <= 0xEF then len, min = 3, 0x800
    elseif c >= 0xF0 and c <= 0xF4 then len, min = 4, 0x10000
    else return i, c, "start" end
    if len > 1 then
      if i + len - 1 > n then return i, c, "start" end
      local cp = c % (2 ^ (7 - len))
      for k = 1, len - 1 do
        local cc = byte(s, i + k)
        if cc < 0x80 or cc > 0xBF then return i, cc, "middle" end
        cp = cp * 64 + cc % 64
      end
      if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then return i, c, "start" end
    end
    i = i + len
  end
  return nil
end

-- ES refuses a source that is not UTF-8 (Jackson's message, inside ES's
-- document_parsing_exception): status, cause | nil
function M.check_utf8(src)
  local at, c, kind = M.invalid_utf8(src)
  if not at then return nil end
  return 400, { type = "document_parsing_exception",
                reason = string.format("[1:%d] failed to parse: Invalid UTF-8 %s byte 0x%x", at, kind, c) }
end

-- an _id ES refuses (over 512 bytes): status, cause | nil
function M.check_id(id)
  if #id <= 512 then return nil end
  return 400, { type = "action_request_validation_exception", reason = "Validation Failed: 1: id [" .. id
    .. "] is too long, must be no longer than 512 bytes but was: " .. #id .. ";" }
end

-- Checks and learns the mapping for a source about to be stored.
-- Returns nil or status, cause.
function M.check_source(idx, id, src, doc)
  local us, uc = M.check_utf8(src)
  if us then return us, uc end
  local m = idx.mapping
  if not m.check then
    if doc == nil then
      us, uc = source_syntax.check(src)
      if us then return us, uc end
      if #idx.pending_sources < 10000 then cluster_shards.defer_mapping(idx, src) end
    else
      mapping.apply(m, doc, id, src)
    end
    return nil
  end
  if doc == nil then
    -- decoded once; ES's reason for a source that is not one object comes from source_syntax
    local err
    doc, err = json.decode(src)
    if type(doc) ~= "table" or json.is_array(doc) then
      us, uc = source_syntax.check(src)
      if us then return us, uc end
      return 400, { type = "document_parsing_exception", reason = "[1:1] failed to parse: " .. tostring(err) }
    end
  end
  local limit = tonumber(idx.settings["mapping.nested_objects.limit"]) or 10000
  if mapping.nested_count(m, doc) > limit then
    return 400, { type = "document_parsing_exception", reason = "The number of nested documents has exceeded "
      .. "the allowed limit of [" .. limit .. "]. This limit can be set by changing the "
      .. "[index.mapping.nested_objects.limit] index level setting." }
  end
  local before = m.changed_marker
  local s, c = mapping.apply(m, doc, id, src)
  if s then return s, c end
  if m.changed_marker ~= before then cluster.persist_meta(idx) end
  return nil
end

-- Result fields in ES's order (encoded by hand on the bulk fast path).
function M.result(idx, rec, result, forced)
  local total, ok = cluster.shards_info(idx)
  local r = { _index = idx.name, _id = rec.id, _version = rec.v, result = result,
              _shards = { total = total, successful = ok, failed = 0 },
              _seq_no = rec.s, _primary_term = rec.t }
  if forced then r.forced_refresh = true end
  return r
end

local function missing(idx, sh, id)
  return 404, { type = "document_missing_exception", reason = "[" .. id .. "]: document missing",
                index_uuid = idx.uuid, shard = tostring(sh), index = idx.name }
end

M.missing = missing

-- Deep merge of a partial doc; returns whether anything changed.
local function merge(dst, src)
  local changed = false
  for k, v in pairs(src) do
    local old = dst[k]
    if type(v) == "table" and not json.is_array(v) and v ~= json.null
        and type(old) == "table" and not json.is_array(old) and old ~= json.null then
      if merge(old, v) then changed = true end
    else
      if old == nil or (type(v) == "table" or type(old) == "table") and json.encode(v) ~= json.encode(old)
          or (type(v) ~= "table" and type(old) ~= "table" and v ~= old) then
        changed = true
      end
      dst[k] = v
    end
  end
  return changed
end

-- update(idx, sh, id, body, o) -> status, result | status, cause
-- o: routing, if_seq_no, if_primary_term
function M.update(idx, sh, id, body, o)
  if type(body) ~= "table" then
    return 400, { type = "illegal_argument_exception", reason = "update body must be an object" }
  end
  if body.script ~= nil then return require("espipe.server.script_update").update(idx, sh, id, body, o, M) end
  local shard = idx.shards[sh]
  local cur = shard.docs[id]
  if not cur then
    if o.if_seq_no ~= nil then return missing(idx, sh, id) end
    local new = (body.doc_as_upsert == true and body.doc) or body.upsert
    if new == nil then return missing(idx, sh, id) end
    local src = json.encode(new)
    local s, c = M.check_source(idx, id, src, new)
    if s then return s, c end
    local rec, st, cause = cluster_shards.put(idx, sh, id, src, { create = true, routing = o.routing })
    if not rec then return st, cause end
    return 201, M.result(idx, rec, "created")
  end
  if o.if_seq_no ~= nil and (cur.s ~= o.if_seq_no or cur.t ~= o.if_primary_term) then
    return 409, es.version_conflict_cause(idx, sh, id, "required seqNo [" .. o.if_seq_no .. "], primary term ["
      .. o.if_primary_term .. "]. current document has seqNo [" .. cur.s .. "] and primary term [" .. cur.t .. "]")
  end
  if body.doc == nil then
    return 400, { type = "action_request_validation_exception",
                  reason = "Validation Failed: 1: script or doc is missing;" }
  end
  local doc = json.decode(cur.src)
  if type(doc) ~= "table" then doc = json.object() end
  local changed = merge(doc, body.doc)
  if not changed and body.detect_noop ~= false then
    return 200, M.result(idx, cur, "noop")
  end
  local src = json.encode(doc)
  local s, c = M.check_source(idx, id, src, doc)
  if s then return s, c end
  local rec, st, cause = cluster_shards.put(idx, sh, id, src, { routing = o.routing or cur.r })
  if not rec then return st, cause end
  return 200, M.result(idx, rec, "updated")
end

return M
