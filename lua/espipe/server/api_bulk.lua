-- POST /_bulk and /{index}/_bulk. The hot path of the server: action lines
-- of the common shapes are parsed with string patterns (anything else goes
-- through the JSON decoder), sources are stored as the raw bytes received,
-- and the response is assembled with table.concat. Chaos decisions are all
-- drawn before anything is applied, so an item is never half-applied.
local json = require("espipe.server.json")
local es = require("espipe.server.es_errors")
local cluster = require("espipe.server.cluster")
local params = require("espipe.server.params")
local writes = require("espipe.server.writes")
local stats = require("espipe.server.stats")
local chaos_mod = require("espipe.server.chaos")

local find, sub, match, byte = string.find, string.sub, string.match, string.byte
local concat = table.concat

local M = {}

-- A response body in pieces (strings and numbers) for ngx.print; app.lua
-- concatenates it only when filter_path needs the whole text.
local CHUNKS_MT = { __name = "espipe.server.chunks" }
M.CHUNKS_MT = CHUNKS_MT
local function json_chunks(head, pieces)
  return setmetatable({ head, pieces }, CHUNKS_MT)
end

local chaos, rng
local function chaos_setup(opts)
  if chaos == nil then
    chaos = opts.chaos and chaos_mod.parse(opts.chaos) or false
    rng = chaos_mod.rng(opts.seed or 1)
  end
  return chaos
end
M.chaos_state = function(opts) return chaos_setup(opts), rng end

local ACTIONS = { index = true, create = true, update = true, delete = true }
local META_KEYS = {
  _index = true, _id = true, routing = true, op_type = true, version = true, version_type = true,
  if_seq_no = true, if_primary_term = true, retry_on_conflict = true, pipeline = true, _source = true,
  require_alias = true, dynamic_templates = true, list_executed_pipelines = true, require_data_stream = true,
}

-- Fast shapes: {"op":{"_index":"i","_id":"x"}} / {"op":{"_id":"x"}} /
-- {"op":{"_index":"i"}} / {"op":{}}; ids and names without escapes.
local function fast_action(line)
  local op, rest = match(line, '^{"(%l+)":{(.*)}}$')
  if not op then return nil end
  if rest == "" then return op, {} end
  local a, b = match(rest, '^"_index":"([^"\\]*)","_id":"([^"\\]*)"$')
  if a then return op, { _index = a, _id = b } end
  a, b = match(rest, '^"_id":"([^"\\]*)","_index":"([^"\\]*)"$')
  if a then return op, { _index = b, _id = a } end
  a = match(rest, '^"_id":"([^"\\]*)"$')
  if a then return op, { _id = a } end
  a = match(rest, '^"_index":"([^"\\]*)"$')
  if a then return op, { _index = a } end
  return nil
end

local function malformed(n, what)
  return es.bad_request("Malformed action/metadata line [" .. n .. "], " .. what)
end

-- slow path: full JSON. -> op, meta | nil, status, body
local function slow_action(line, n)
  local v = json.decode(line)
  if type(v) ~= "table" or json.is_array(v) then
    local c = sub(line, 1, 1)
    local token = c == "[" and "START_ARRAY" or (c == '"' and "VALUE_STRING") or "VALUE_NUMBER"
    if v == nil then return nil, malformed(n, "expected START_OBJECT but found [" .. token .. "]") end
    return nil, malformed(n, "expected START_OBJECT but found [" .. token .. "]")
  end
  local op, meta = next(v)
  if op == nil then return nil, malformed(n, "expected FIELD_NAME but found [END_OBJECT]") end
  if type(meta) ~= "table" or json.is_array(meta) then
    return nil, malformed(n, "expected START_OBJECT but found [" .. (json.is_array(meta) and "START_ARRAY" or "VALUE_STRING") .. "]")
  end
  for k, val in pairs(meta) do
    if not META_KEYS[k] then
      return nil, es.bad_request("Action/metadata line [" .. n .. "] contains an unknown parameter [" .. k .. "]")
    end
    if type(val) == "table" and k ~= "_source" and k ~= "dynamic_templates" then
      return nil, es.bad_request("Malformed action/metadata line [" .. n .. "], expected a simple value for field ["
        .. k .. "] but found [START_ARRAY]")
    end
  end
  return op, meta
end

-- JSON string body of an id for the response
local function jstr(s)
  if find(s, '[%c"\\]') then return json.encode(s) end
  return '"' .. s .. '"'
end

-- filter_path on _bulk: clients ask for "errors,items.*.status,items.*.error"
-- and the like on every request. Those specs are applied while the items are
-- written, instead of decoding and re-encoding the whole response afterwards;
-- any other spec goes through the generic filter (app.lua).
local ITEM_FIELDS = { _index = 1, _id = 2, _version = 3, result = 4, forced_refresh = 5,
                      _shards = 6, _seq_no = 7, _primary_term = 8, status = 9, error = 10 }
local item_filter -- the parsed spec of the request being answered, or nil
-- responses already filtered (ngx.print takes only array-like tables: no flag field)
local FILTERED = setmetatable({}, { __mode = "k" })
function M.is_filtered(resp) return FILTERED[resp] == true end

local function parse_item_filter(spec)
  if type(spec) ~= "string" or spec == "" then return nil end
  local f = { took = false, errors = false, fields = {} }
  for path in spec:gmatch("[^,]+") do
    path = path:match("^%s*(.-)%s*$")
    local field = path:match("^items%.%*%.([%w_]+)$")
    if path == "took" or path == "errors" then
      f[path] = true
    elseif field and ITEM_FIELDS[field] then
      f.fields[field] = true
    else
      return nil
    end
  end
  return f
end

local function item_error(out, op, index, id, status, cause)
  local f = item_filter
  if f then
    local inner, any = {}, false
    if f.fields._index then inner._index, any = index, true end
    if f.fields._id then inner._id, any = id == nil and json.null or id, true end
    if f.fields.status then inner.status, any = status, true end
    if f.fields.error then inner.error, any = cause, true end
    if any then
      out[#out + 1] = json.encode({ [op] = inner })
      out[#out + 1] = ","
    end
    return
  end
  out[#out + 1] = json.encode({ [op] = { _index = index, _id = id == nil and json.null or id,
    status = status, error = cause } })
  out[#out + 1] = ","
end

local function mapping_routing_required(idx)
  return require("espipe.server.mapping").routing_required(idx.mapping)
end

local SHARDS = {}
local function shards_json(idx)
  local total, ok = cluster.shards_info(idx)
  local key = total * 1000 + ok
  local s = SHARDS[key]
  if not s then
    s = '"_shards":{"total":' .. total .. ',"successful":' .. ok .. ',"failed":0}'
    SHARDS[key] = s
  end
  return s
end

local function filtered_ok_item(out, f, op, index, id, version, result, forced, shards, seq, term, status)
  local w = f.fields
  local parts = {}
  if w._index then parts[#parts + 1] = '"_index":' .. jstr(index) end
  if w._id then parts[#parts + 1] = '"_id":' .. jstr(id) end
  if w._version then parts[#parts + 1] = '"_version":' .. version end
  if w.result then parts[#parts + 1] = '"result":"' .. result .. '"' end
  if w.forced_refresh and forced then parts[#parts + 1] = '"forced_refresh":true' end
  if w._shards then parts[#parts + 1] = shards end
  if w._seq_no then parts[#parts + 1] = '"_seq_no":' .. seq end
  if w._primary_term then parts[#parts + 1] = '"_primary_term":' .. term end
  if w.status then parts[#parts + 1] = '"status":' .. status end
  if #parts > 0 then
    out[#out + 1] = '{"' .. op .. '":{' .. concat(parts, ",") .. '}},'
  end
end

local function ok_item(out, op, idx, rec, result, status, forced)
  if item_filter then
    return filtered_ok_item(out, item_filter, op, idx.name, rec.id, rec.v, result, forced,
                            shards_json(idx), rec.s, rec.t, status)
  end
  out[#out + 1] = '{"' .. op .. '":{"_index":' .. jstr(idx.name) .. ',"_id":' .. jstr(rec.id)
    .. ',"_version":' .. rec.v .. ',"result":"' .. result .. (forced and '","forced_refresh":true,' or '",')
    .. shards_json(idx) .. ',"_seq_no":' .. rec.s .. ',"_primary_term":' .. rec.t .. ',"status":' .. status .. '}},'
end

local function num(v)
  if v == nil then return nil end
  return tonumber(v)
end

-- One pass over the body: every action with its metadata and source, or
-- the error that fails the whole request. Items are in flat arrays (no
-- table per item on the common path); meta is false for the fast shapes.
local FAST_FULL = '^{"(%l+)":{"_index":"([^"\\]*)","_id":"([^"\\]*)"}}\r?\n'

local function parse(body, skip_sources)
  local ops, indices, ids, srcs, metas = {}, {}, {}, {}, {}
  local n, pos, len, line_no = 0, 1, #body, 0
  while pos <= len do
    local s, e, op, index, id = find(body, FAST_FULL, pos)
    local meta = false
    line_no = line_no + 1
    if not s then
      local nl = find(body, "\n", pos, true)
      local line_end = nl - 1
      if byte(body, line_end) == 13 then line_end = line_end - 1 end
      e = nl
      if line_end >= pos then
        local line = sub(body, pos, line_end)
        local m
        op, m = fast_action(line)
        if not op then
          local st, eb
          op, st, eb = slow_action(line, line_no)
          if not op then return nil, st, eb end
          m = st
          meta = m
        end
        index, id = m._index, m._id
        if id ~= nil and type(id) ~= "string" then id = tostring(id) end
      else
        op = nil -- blank line
      end
    end
    if op then
      local known = ACTIONS[op]
      if known then
        n = n + 1
        ops[n], indices[n], ids[n], metas[n] = op, index or false, id or false, meta
      end
      if op ~= "delete" then
        local nl2 = find(body, "\n", e + 1, true)
        if not nl2 then return nil, es.validation({ "source is missing" }) end
        if known and not skip_sources then
          local send = nl2 - 1
          if byte(body, send) == 13 then send = send - 1 end
          srcs[n] = sub(body, e + 1, send)
        end
        e = nl2
        line_no = line_no + 1
      end
    end
    pos = e + 1
  end
  return n, ops, indices, ids, srcs, metas
end

local bh_seq = 0
local BH_SHARDS = '"_shards":{"total":1,"successful":1,"failed":0},"_seq_no":'
local BH_MID = {
  index = ',"_version":1,"result":"created",' .. BH_SHARDS, create = ',"_version":1,"result":"created",' .. BH_SHARDS,
  delete = ',"_version":1,"result":"deleted",' .. BH_SHARDS, update = ',"_version":2,"result":"updated",' .. BH_SHARDS,
}
-- The response from its item pieces (each ending in ","), filtered or not.
local function bulk_response(out, took, errors)
  local f = item_filter
  if #out > 0 then
    local last = out[#out]
    out[#out] = sub(last, 1, #last - 1) .. "]}"
  end
  if not f then
    if #out == 0 then out[1] = "]}" end
    return 200, json_chunks('{"took":' .. took .. ',"errors":' .. tostring(errors) .. ',"items":[', out)
  end
  local head = {}
  if f.took then head[#head + 1] = '"took":' .. took end
  if f.errors then head[#head + 1] = '"errors":' .. tostring(errors) end
  if #out == 0 then
    -- every item filtered away: ES drops the emptied array
    local r = setmetatable({ "{" .. concat(head, ",") .. "}", {} }, CHUNKS_MT)
    FILTERED[r] = true
    return 200, r
  end
  head[#head + 1] = '"items":['
  local r = json_chunks("{" .. concat(head, ","), out)
  FILTERED[r] = true
  return 200, r
end
M.parse_item_filter = parse_item_filter

local function blackhole(body, default_index, started)
  local n, ops, indices, ids = parse(body, true)
  if not n then return ops, indices end
  if n == 0 then return es.validation({ "no requests added" }) end
  -- Pieces go straight into `out`: building one string per item would intern
  -- long strings that differ only in the middle, which LuaJIT's sparse
  -- string hash turns into long collision chains.
  local out, k = {}, 0
  local prefixes = {}
  if item_filter then
    for i = 1, n do
      local op, index, id = ops[i], indices[i] or default_index or "blackhole", ids[i]
      bh_seq = bh_seq + 1
      local created = op == "index" or op == "create"
      filtered_ok_item(out, item_filter, op, index, id or ("bh" .. bh_seq), op == "update" and 2 or 1,
                       created and "created" or (op == "delete" and "deleted" or "updated"), false,
                       '"_shards":{"total":1,"successful":1,"failed":0}', bh_seq, 1, created and 201 or 200)
    end
    ngx.update_time()
    stats.bulk(0, n, {})
    return bulk_response(out, math.floor((ngx.now() - started) * 1000), false)
  end
  for i = 1, n do
    local op, index, id = ops[i], indices[i] or default_index or "blackhole", ids[i]
    local key = op .. "\0" .. index
    local pfx = prefixes[key]
    if not pfx then
      pfx = '{"' .. op .. '":{"_index":' .. jstr(index) .. ',"_id":'
      prefixes[key] = pfx
    end
    bh_seq = bh_seq + 1
    out[k + 1] = i > 1 and "," or ""
    out[k + 2] = pfx
    out[k + 3] = id and jstr(id) or ('"bh' .. bh_seq .. '"')
    out[k + 4] = BH_MID[op]
    out[k + 5] = bh_seq
    out[k + 6] = (op == "index" or op == "create") and ',"_primary_term":1,"status":201}}' or ',"_primary_term":1,"status":200}}'
    k = k + 6
  end
  ngx.update_time()
  stats.bulk(0, n, {})
  out[k + 1] = "]}"
  return 200, json_chunks('{"took":' .. math.floor((ngx.now() - started) * 1000) .. ',"errors":false,"items":[', out)
end

local EMPTY, CREATE = {}, { create = true }

-- Per request and index: the write target and the constant response parts.
local function target_entry(cache, index, url_routing, require_alias)
  local t = cache[index]
  if t == nil then
    local idx, alias, c = cluster.index_for_write(index, true)
    if idx and require_alias and not cluster.alias_indices(index) then idx = nil end
    if not idx then
      t = false
    else
      local shards = shards_json(idx)
      t = { idx = idx,
            fast = url_routing == nil and not require_alias and idx.partition == 1
              and not (alias and alias.index_routing) and not mapping_routing_required(idx),
            created = ',"result":"created",' .. shards .. ',"_seq_no":',
            updated = ',"result":"updated",' .. shards .. ',"_seq_no":',
            pfx = {} }
    end
    cache[index] = t
    if c then t = false end
  end
  return t
end

function M.bulk(req)
  ngx.update_time()
  local started = ngx.now()
  local body = req.body
  if not body or body == "" then
    return es.validation({ "no requests added" })
  end
  if byte(body, #body) ~= 10 then
    return es.bad_request("The bulk request must be terminated by a newline [\\n]")
  end
  local default_index = req.params.index
  local ch = chaos_setup(req.opts)
  if ch then
    if rng:hit(ch.reset) then
      stats.chaos("reset")
      return 444
    end
    if rng:hit(ch.bulk_429) then
      stats.chaos("bulk_429")
      return es.rejected_coordinating(#body)
    end
    if rng:hit(ch["503"]) then
      stats.chaos("503")
      return es.unavailable()
    end
    if rng:hit(ch.latency) then
      stats.chaos("latency")
      ngx.sleep(ch.latency_seconds)
    end
  end
  item_filter = parse_item_filter(req.args.filter_path)
  if req.opts.blackhole then return blackhole(body, default_index, started) end

  local refresh, rs, re = params.refresh(req.args)
  if refresh == nil and rs then return rs, re end
  local url_routing = params.str(req.args, "routing")
  local require_alias = params.flag(req.args, "require_alias", false)

  -- parse everything first: a malformed line fails the whole request
  local n, ops, indices, ids, srcs, metas = parse(body)
  if not n then return ops, indices end
  if n == 0 then return es.validation({ "no requests added" }) end

  local out = {}
  local errors = false
  local per_shard = {}
  local foreign = 0
  local node = req.node
  local cache = {}
  local forced = refresh == "true"
  local item_429 = ch and ch.item_429
  for i = 1, n do
    local op, index, id, meta, src = ops[i], indices[i], ids[i], metas[i], srcs[i]
    if not index then index = default_index end
    local t = index and not meta and id and (op == "index" or op == "create") and not forced
      and target_entry(cache, index, url_routing, require_alias)
    if item_429 and rng:hit(item_429) then
      stats.chaos("item_429")
      errors = true
      item_error(out, op, index or json.null, id or nil, 429, { type = "es_rejected_execution_exception",
        reason = "rejected execution of primary operation [coordinating_and_primary_bytes=0, replica_bytes=0, "
          .. "all_bytes=0, primary_operation_bytes=" .. #(src or "") .. ", max_coordinating_and_primary_bytes=0] "
          .. "(injected by espipe serve --chaos)" })
    elseif t and t.fast and id ~= "" then
      -- the common case: index/create with _index and _id only
      local idx = t.idx
      local sh = cluster.shard_for(idx, id, nil)
      local s, c
      if idx.mapping.check then
        s, c = writes.check_source(idx, id, src, nil)
      elseif #idx.pending_sources < 10000 then
        cluster.defer_mapping(idx, src)
      end
      local rec, created, cause
      if not s then
        rec, created, cause = cluster.put(idx, sh, id, src, op == "create" and CREATE or EMPTY)
        if not rec then s, c = created, cause end
      end
      if s then
        errors = true
        item_error(out, op, idx.name, id, s, c)
      else
        local shard = idx.shards[sh]
        per_shard[shard] = (per_shard[shard] or 0) + 1
        if shard.node ~= node then foreign = foreign + 1 end
        if item_filter then
          filtered_ok_item(out, item_filter, op, idx.name, id, rec.v, created and "created" or "updated", false,
                           shards_json(idx), rec.s, rec.t, created and 201 or 200)
          goto next_item
        end
        local pfx = t.pfx[op]
        if not pfx then
          pfx = '{"' .. op .. '":{"_index":' .. jstr(idx.name) .. ',"_id":"'
          t.pfx[op] = pfx
        end
        -- pieces, not one string per item (see blackhole)
        local k = #out
        out[k + 1] = pfx
        out[k + 2] = id
        out[k + 3] = '","_version":'
        out[k + 4] = rec.v
        out[k + 5] = created and t.created or t.updated
        out[k + 6] = rec.s
        out[k + 7] = ',"_primary_term":'
        out[k + 8] = rec.t
        out[k + 9] = created and ',"status":201}},' or ',"status":200}},'
      end
      ::next_item::
    else
      local shard, ok = M.general_item(out, op, index, id, meta or EMPTY, src, url_routing, require_alias, forced)
      if ok then
        per_shard[shard] = (per_shard[shard] or 0) + 1
        if shard.node ~= node then foreign = foreign + 1 end
      else
        errors = true
      end
    end
  end
  if refresh then
    for shard in pairs(per_shard) do cluster.refresh_shard(shard) end
  end
  local written = 0
  for _, c in pairs(per_shard) do written = written + c end
  stats.docs(node, written, foreign)
  stats.bulk(node, n, per_shard)
  ngx.update_time()
  -- handed to ngx.print as pieces: no 3 MB string is built
  return bulk_response(out, math.floor((ngx.now() - started) * 1000), errors)
end

-- Any other item: routing, versions, concurrency, update, delete, aliases
-- with routing, auto ids. Appends the item; returns shard, true on success.
function M.general_item(out, op, index, id, meta, src, url_routing, require_alias, forced)
  if not index then
    item_error(out, op, json.null, id or nil, 400, { type = "action_request_validation_exception",
      reason = "Validation Failed: 1: index is missing;" })
    return nil, false
  end
  if id == "" then
    item_error(out, op, index, id, 400, { type = "illegal_argument_exception",
      reason = "if _id is specified it must not be empty" })
    return nil, false
  end
  local out_op = op
  if op == "index" and meta.op_type == "create" then op = "create" end
  if not id then
    if op ~= "index" and op ~= "create" then
      item_error(out, op, index, nil, 400, { type = "action_request_validation_exception",
        reason = "Validation Failed: 1: id is missing;" })
      return nil, false
    end
    id = cluster.auto_id()
    op = "create"
  end
  local route = meta.routing ~= nil and tostring(meta.routing) or url_routing
  local idx, sh, r2 = writes.target { index = index, id = id, routing = route, auto_create = op ~= "delete",
    require_alias = meta.require_alias == true or require_alias }
  if not idx then
    item_error(out, out_op, index, id, sh, r2)
    return nil, false
  end
  local o = { routing = r2, if_seq_no = num(meta.if_seq_no), if_primary_term = num(meta.if_primary_term),
              version = num(meta.version), version_type = meta.version_type }
  local status, rec, cause, result
  if op == "update" then
    if o.version ~= nil or o.version_type ~= nil then
      status, cause = 400, { type = "action_request_validation_exception",
        reason = "Validation Failed: 1: Update requests do not support versioning. Please use `if_seq_no` and `if_primary_term` instead;" }
    else
      local ub, derr = json.decode(src)
      if ub == nil then
        status, cause = 400, { type = "x_content_parse_exception", reason = "[1:1] " .. tostring(derr) }
      else
        local res
        status, res = writes.update(idx, sh, id, ub, o)
        if status < 300 then
          rec = { id = id, v = res._version, s = res._seq_no, t = res._primary_term }
          result = res.result
        else
          cause = res
        end
      end
    end
  elseif op == "delete" then
    local found
    rec, found, cause = cluster.remove(idx, sh, id, o)
    if rec then
      status, result = found and 200 or 404, found and "deleted" or "not_found"
    else
      status = found
    end
  else
    if o.version ~= nil and (o.version_type == nil or o.version_type == "internal") then
      status, cause = 400, { type = "action_request_validation_exception",
        reason = "Validation Failed: 1: internal versioning can not be used for optimistic concurrency control. Please use `if_seq_no` and `if_primary_term` instead;" }
    else
      local s, c = writes.check_source(idx, id, src, nil)
      if s then
        status, cause = s, c
      else
        o.create = op == "create"
        local created
        rec, created, cause = cluster.put(idx, sh, id, src, o)
        if rec then
          status, result = created and 201 or 200, created and "created" or "updated"
        else
          status = created
        end
      end
    end
  end
  if result then
    ok_item(out, out_op, idx, rec, result, status, forced)
    return idx.shards[sh], true
  end
  item_error(out, out_op, idx.name, id, status, cause)
  return nil, false
end

return M
