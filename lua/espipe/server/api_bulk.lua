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

local function unescape(s)
  if not find(s, "\\", 1, true) then return s end
  return json.decode('"' .. s .. '"') or s
end

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

local function item_error(out, op, index, id, status, cause)
  out[#out + 1] = json.encode({ [op] = { _index = index, _id = id == nil and json.null or id,
    status = status, error = cause } })
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

local function ok_item(out, op, idx, rec, result, status, forced)
  local n = #out
  out[n + 1] = '{"'
  out[n + 2] = op
  out[n + 3] = '":{"_index":'
  out[n + 4] = jstr(idx.name)
  out[n + 5] = ',"_id":'
  out[n + 6] = jstr(rec.id)
  out[n + 7] = ',"_version":'
  out[n + 8] = rec.v
  out[n + 9] = ',"result":"'
  out[n + 10] = result
  out[n + 11] = forced and '","forced_refresh":true,' or '",'
  out[n + 12] = shards_json(idx)
  out[n + 13] = ',"_seq_no":'
  out[n + 14] = rec.s
  out[n + 15] = ',"_primary_term":'
  out[n + 16] = rec.t
  out[n + 17] = ',"status":'
  out[n + 18] = status
  out[n + 19] = '}}'
end

local function num(v)
  if v == nil then return nil end
  return tonumber(v)
end

-- Blackhole: acknowledge without storing, as cheaply as possible.
local bh_seq = 0
local function blackhole(body, default_index, started)
  local out, n = { '{"took":0,"errors":false,"items":[' }, 1
  local pos, len, count, line_no = 1, #body, 0, 0
  while pos <= len do
    local nl = find(body, "\n", pos, true)
    if not nl then break end
    line_no = line_no + 1
    if nl > pos then
      local line = sub(body, pos, nl - 1)
      local op, meta = fast_action(line)
      if not op then
        local s, e
        op, s, e = slow_action(line, line_no)
        if not op then return s, e end
        meta = s
      end
      if op ~= "delete" then
        local nl2 = find(body, "\n", nl + 1, true)
        nl = nl2 or len
        line_no = line_no + 1
      end
      bh_seq = bh_seq + 1
      local id = meta._id and jstr(tostring(meta._id)) or ('"bh' .. bh_seq .. '"')
      local index = jstr(tostring(meta._index or default_index or "blackhole"))
      local status = op == "delete" and 200 or (op == "update" and 200 or 201)
      local result = op == "delete" and "deleted" or (op == "update" and "updated" or "created")
      count = count + 1
      n = n + 1
      out[n] = (count > 1 and ',{"' or '{"') .. op .. '":{"_index":' .. index .. ',"_id":' .. id
        .. ',"_version":1,"result":"' .. result
        .. '","_shards":{"total":1,"successful":1,"failed":0},"_seq_no":' .. bh_seq
        .. ',"_primary_term":1,"status":' .. status .. '}}'
    end
    pos = nl + 1
  end
  if count == 0 then return es.validation({ "no requests added" }) end
  out[1] = '{"took":' .. math.floor((ngx.now() - started) * 1000) .. ',"errors":false,"items":['
  out[n + 1] = "]}"
  stats.bulk(0, count, {})
  return 200, concat(out)
end

function M.bulk(req)
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
  if req.opts.blackhole then return blackhole(body, default_index, started) end

  local refresh, rs, re = params.refresh(req.args)
  if refresh == nil and rs then return rs, re end
  local url_routing = params.str(req.args, "routing")
  local require_alias = params.flag(req.args, "require_alias", false)

  -- parse every action first: a malformed line fails the whole request
  local ops = {}
  local pos, len, line_no = 1, #body, 0
  while pos <= len do
    local nl = find(body, "\n", pos, true)
    line_no = line_no + 1
    local line_end = nl - 1
    if byte(body, line_end) == 13 then line_end = line_end - 1 end
    if line_end >= pos then
      local line = sub(body, pos, line_end)
      local op, meta = fast_action(line)
      if not op then
        local s, e
        op, s, e = slow_action(line, line_no)
        if not op then return s, e end
        meta = s
      end
      local entry = { op = op, meta = meta, line = line_no }
      if op ~= "delete" and ACTIONS[op] then
        local nl2 = find(body, "\n", nl + 1, true)
        if not nl2 then
          return es.bad_request("Validation Failed: 1: source is missing;")
        end
        local send = nl2 - 1
        if byte(body, send) == 13 then send = send - 1 end
        entry.src = sub(body, nl + 1, send)
        nl = nl2
        line_no = line_no + 1
      end
      if ACTIONS[op] then ops[#ops + 1] = entry end
    end
    pos = nl + 1
  end
  if #ops == 0 then return es.validation({ "no requests added" }) end

  local out = {}
  local errors = false
  local per_shard = {}
  local foreign = 0
  local touched = {}
  local node = req.node
  for i = 1, #ops do
    local e = ops[i]
    local op, meta = e.op, e.meta
    local index = meta._index or default_index
    local id = meta._id
    if id ~= nil then id = type(id) == "string" and unescape(id) or tostring(id) end
    if i > 1 then out[#out + 1] = "," end
    if index == nil then
      errors = true
      item_error(out, op, json.null, id, 400, { type = "action_request_validation_exception",
        reason = "Validation Failed: 1: index is missing;" })
    elseif id == "" then
      errors = true
      item_error(out, op, index, id, 400, { type = "illegal_argument_exception",
        reason = "if _id is specified it must not be empty" })
    elseif ch and rng:hit(ch.item_429) then
      stats.chaos("item_429")
      errors = true
      item_error(out, op, index, id, 429, { type = "es_rejected_execution_exception",
        reason = "rejected execution of primary operation [coordinating_and_primary_bytes=0, replica_bytes=0, "
          .. "all_bytes=0, primary_operation_bytes=" .. #(e.src or "") .. ", max_coordinating_and_primary_bytes=0] "
          .. "(injected by espipe serve --chaos)" })
    else
      index = unescape(index)
      local route = meta.routing ~= nil and tostring(meta.routing) or url_routing
      if op == "index" and meta.op_type == "create" then op = "create" end
      if id == nil and op ~= "index" and op ~= "create" then
        errors = true
        item_error(out, op, index, nil, 400, { type = "action_request_validation_exception",
          reason = "Validation Failed: 1: id is missing;" })
        goto continue
      end
      if id == nil then
        id = cluster.auto_id()
        if op == "index" then op = "create" end
        e.auto = true
      end
      local idx, sh, r2 = writes.target { index = index, id = id, routing = route, auto_create = op ~= "delete",
        require_alias = meta.require_alias == true or require_alias }
      if not idx then
        errors = true
        item_error(out, e.auto and "index" or op, index, id, sh, r2)
        goto continue
      end
      route = r2
      local o = { routing = route, if_seq_no = num(meta.if_seq_no), if_primary_term = num(meta.if_primary_term),
                  version = num(meta.version), version_type = meta.version_type }
      local status, rec, res_or_cause, result
      if op == "update" then
        if o.version ~= nil or o.version_type ~= nil then
          status, res_or_cause = 400, { type = "action_request_validation_exception",
            reason = "Validation Failed: 1: Update requests do not support versioning. Please use `if_seq_no` and `if_primary_term` instead;" }
        else
          local ub = json.decode(e.src)
          status, res_or_cause = writes.update(idx, sh, id, ub, o)
          if status < 300 then
            rec = { id = id, v = res_or_cause._version, s = res_or_cause._seq_no, t = res_or_cause._primary_term }
            result = res_or_cause.result
          end
        end
      elseif op == "delete" then
        local found
        rec, found, res_or_cause = cluster.remove(idx, sh, id, o)
        if rec then
          status, result = found and 200 or 404, found and "deleted" or "not_found"
        else
          status = found
        end
      else
        if o.version ~= nil and (o.version_type == nil or o.version_type == "internal") then
          status, res_or_cause = 400, { type = "action_request_validation_exception",
            reason = "Validation Failed: 1: internal versioning can not be used for optimistic concurrency control. Please use `if_seq_no` and `if_primary_term` instead;" }
        else
          local src = e.src
          local s, c = writes.check_source(idx, id, src, nil)
          if s then
            status, res_or_cause = s, c
          else
            o.create = op == "create"
            local created
            rec, created, res_or_cause = cluster.put(idx, sh, id, src, o)
            if rec then
              status, result = created and 201 or 200, created and "created" or "updated"
            else
              status = created
            end
          end
        end
      end
      local out_op = e.auto and "index" or (meta.op_type == "create" and e.op == "index") and "index" or e.op
      if result then
        local shard = idx.shards[sh]
        local key = shard
        per_shard[key] = (per_shard[key] or 0) + 1
        if shard.node ~= node then foreign = foreign + 1 end
        touched[shard] = true
        ok_item(out, out_op, idx, rec, result, status, refresh == "true")
      else
        errors = true
        item_error(out, out_op, idx.name, id, status, res_or_cause)
      end
    end
    ::continue::
  end
  if refresh then
    for shard in pairs(touched) do cluster.refresh_shard(shard) end
  end
  local written = 0
  for _, c in pairs(per_shard) do written = written + c end
  stats.docs(node, written, foreign)
  stats.bulk(node, #ops, per_shard)
  local head = '{"took":' .. math.floor((ngx.now() - started) * 1000) .. ',"errors":' .. tostring(errors)
    .. ',"items":['
  return 200, head .. concat(out) .. "]}"
end

return M
