-- POST /_bulk and /{index}/_bulk. The hot path of the server: action lines
-- of the common shapes are parsed with byte comparisons and string patterns
-- (anything else goes through the JSON decoder), sources are stored as the
-- raw bytes received,
-- and the response is written into one reused string.buffer. Chaos decisions
-- are all drawn before anything is applied, so an item is never half-applied.
local json = require("espipe.server.json")
local es = require("espipe.server.es_errors")
local cluster = require("espipe.server.cluster")
local cluster_indices = require("espipe.server.cluster_indices")
local cluster_shards = require("espipe.server.cluster_shards")
local params = require("espipe.server.params")
local writes = require("espipe.server.writes")
local source_syntax = require("espipe.server.source_syntax")
local stats = require("espipe.server.stats")
local source_filter = require("espipe.server.source_filter")
local chaos_mod = require("espipe.server.chaos")
local capacity = require("espipe.server.capacity")
local doc_types = require("espipe.server.doc_types")

-- LuaJIT 2.1's string.buffer (OpenResty's LuaJIT, which the nginx Lua
-- module runs): items are formatted into it without interning a string each.
local strbuf = require("string.buffer")
local ffi = require("ffi")

pcall(ffi.cdef, "int memcmp(const void *a, const void *b, size_t n);")
local memcmp, cast = ffi.C.memcmp, ffi.cast

local find, sub, match, byte = string.find, string.sub, string.match, string.byte
local concat = table.concat

local M = {}

-- A response as { head, buffer, filtered =, free = }: app.lua sends the
-- head and then the buffer in slices, with a Content-Length, and frees the
-- buffer's memory when free is set; M.text() joins them only when
-- filter_path needs the whole text. One buffer serves every request (a
-- worker runs one handler at a time, and nothing yields between building a
-- response and sending it), so its memory is not allocated and faulted in
-- again for each 3 MB response, unless a response was unusually large.
local BUFFERED_MT = { __name = "espipe.server.buffered" }
M.BUFFERED_MT = BUFFERED_MT
local KEEP_BYTES = 32 * 1024 * 1024
local ob = strbuf.new()
local nitems = 0 -- items written to ob for the request being answered
function M.text(resp) return resp[1] .. resp[2]:tostring() end

local function buffered(head, filtered)
  return setmetatable({ head, ob, filtered = filtered, free = #ob > KEEP_BYTES }, BUFFERED_MT)
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

-- Per request (nothing yields from parse to response): whether actions may
-- name a _type and answers carry one (6.x, 7.x), and whether an index holds
-- a single type (6.x).
local accept_type, answer_type, one_type = false, false, false

-- Fast shapes: {"op":{"_index":"i","_id":"x"}} / {"op":{"_id":"x"}} /
-- {"op":{"_index":"i"}} / {"op":{}}; ids and names without escapes or
-- control characters, so the response can quote them as they are.
local function fast_action(line)
  local op, rest = match(line, '^{"(%l+)":{(.*)}}$')
  if not op then return nil end
  if rest == "" then return op, {} end
  local a, b = match(rest, '^"_index":"([^"\\%c]*)","_id":"([^"\\%c]*)"$')
  if a then return op, { _index = a, _id = b } end
  a, b = match(rest, '^"_id":"([^"\\%c]*)","_index":"([^"\\%c]*)"$')
  if a then return op, { _index = b, _id = a } end
  a = match(rest, '^"_id":"([^"\\%c]*)"$')
  if a then return op, { _id = a } end
  a = match(rest, '^"_index":"([^"\\%c]*)"$')
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
    if not META_KEYS[k] and not (k == "_type" and accept_type) then
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
-- the request's _source/_source_includes/_source_excludes (the "get" of
-- update items): false when the URL has none
local url_source = false

local function parse_item_filter(spec)
  if type(spec) ~= "string" or spec == "" then return nil end
  local f = { took = false, errors = false, fields = {}, ok_any = false }
  for path in spec:gmatch("[^,]+") do
    path = path:match("^%s*(.-)%s*$")
    local field = path:match("^items%.%*%.([%w_]+)$")
    if path == "took" or path == "errors" then
      f[path] = true
    elseif field and ITEM_FIELDS[field] then
      f.fields[field] = true
      -- forced_refresh alone shows only on items of a refresh=true request
      if field ~= "forced_refresh" and field ~= "error" then f.ok_any = true end
    else
      return nil
    end
  end
  return f
end

-- the separator before the next item
local function sep()
  nitems = nitems + 1
  return nitems > 1 and "," or ""
end

local function item_error(op, index, id, status, cause)
  local f = item_filter
  if f then
    local inner, any = {}, false
    if f.fields._index then inner._index, any = index, true end
    if f.fields._id then inner._id, any = id == nil and json.null or id, true end
    if f.fields.status then inner.status, any = status, true end
    if f.fields.error then inner.error, any = cause, true end
    if any then ob:put(sep(), json.encode({ [op] = inner })) end
    return
  end
  ob:put(sep(), json.encode({ [op] = { _index = index, _type = answer_type and "_doc" or nil,
    _id = id == nil and json.null or id, status = status, error = cause } }))
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

-- An acknowledged item with only the fields filter_path keeps (in ES's order).
local function filtered_ok_item(f, op, index, id, version, result, forced, shards, seq, term, status)
  local w = f.fields
  if not (f.ok_any or (w.forced_refresh and forced)) then return end
  ob:put(sep(), '{"', op, '":{')
  local c = "" -- "," once a field is written
  if w._index then ob:put('"_index":', jstr(index)) c = "," end
  if w._id then ob:put(c, '"_id":', jstr(id)) c = "," end
  if w._version then ob:put(c, '"_version":', version) c = "," end
  if w.result then ob:put(c, '"result":"', result, '"') c = "," end
  if w.forced_refresh and forced then ob:put(c, '"forced_refresh":true') c = "," end
  if w._shards then ob:put(c, shards) c = "," end
  if w._seq_no then ob:put(c, '"_seq_no":', seq) c = "," end
  if w._primary_term then ob:put(c, '"_primary_term":', term) c = "," end
  if w.status then ob:put(c, '"status":', status) end
  ob:put("}}")
end

-- ',"_type":"..."' where answers carry the index's type (6.x, 7.x), else ""
local function type_json(idx)
  if not answer_type then return "" end
  return ',"_type":' .. jstr(doc_types.type_of(idx))
end

local function ok_item(op, idx, rec, result, status, forced, get)
  if item_filter then
    return filtered_ok_item(item_filter, op, idx.name, rec.id, rec.v, result, forced,
                            shards_json(idx), rec.s, rec.t, status)
  end
  ob:put(sep(), '{"', op, '":{"_index":', jstr(idx.name), type_json(idx), ',"_id":', jstr(rec.id), ',"_version":', rec.v,
    ',"result":"', result, forced and '","forced_refresh":true,' or '",', shards_json(idx),
    ',"_seq_no":', rec.s, ',"_primary_term":', rec.t, ',"status":', status,
    get and (',"get":' .. json.encode(get) .. '}}') or '}}')
end

-- the "get" of an update item when its action, its body or the URL asks
-- for the source: { _seq_no, _primary_term, found, _source }
local function update_get(idx, sh, id, meta, body)
  local spec = meta._source
  if spec == nil and type(body) == "table" then spec = body._source end
  if spec == nil then spec = url_source end
  if spec == false or spec == nil then return nil end
  local rec = idx.shards[sh].docs[id]
  if not rec then return nil end
  if spec == true then spec = nil end
  local src = source_filter.filter(json.raw(rec.src), spec)
  return { _seq_no = rec.s, _primary_term = rec.t, found = true, _source = src or json.object() }
end

local function num(v)
  if v == nil then return nil end
  return tonumber(v)
end

-- One pass over the body: every action with its metadata and source, or
-- the error that fails the whole request. Items are in flat arrays (no
-- table per item on the common path); meta is false for the fast shapes.
-- The arrays are kept from request to request (entries past n are stale),
-- so 20 000-item bodies do not regrow five tables each time: nothing yields
-- between parsing a body and applying its last item.
-- A bulk body repeats one action prefix ({"index":{"_index":"i","_id":")
-- with different ids: once FAST_FULL has matched a line, the next lines are
-- checked against that prefix with memcmp and a byte loop over the id, a
-- tenth of what the pattern match costs. No string is made on the way:
-- each new string is a lookup in LuaJIT's string table, a cache miss.
-- Without sources (--blackhole) an id matched so is not made a string
-- either: ids[n] is true and id_in[n], id_at[n], id_len[n] locate its bytes.
local FAST_FULL = '^{"(%l+)":{"_index":"([^"\\%c]*)","_id":"()([^"\\%c]*)"}}\r?\n'
-- the same without _index: the index comes from the URL (POST /i/_bulk),
-- as clients that batch for one index send it
local FAST_ID = '^{"(%l+)":{"_id":"()([^"\\%c]*)"}}\r?\n'
local ops, indices, ids, srcs, metas = {}, {}, {}, {}, {}
local id_in, id_at, id_len = {}, {}, {}
-- the UTF-8 error of source i (status 400's cause) | nil; nbad items set
local bad_utf8, bad_at, nbad = {}, {}, 0
local first_high, check_utf8 = writes.first_high, writes.check_utf8

-- end of an id in body from position j (the closing quote) and of its
-- line ("}}" and the newline) | nil when the line is not of the fast shape
local function fast_id_end(body, j)
  local c = byte(body, j)
  while c and c ~= 34 and c ~= 92 and c >= 32 do
    j = j + 1
    c = byte(body, j)
  end
  if c ~= 34 or byte(body, j + 1) ~= 125 or byte(body, j + 2) ~= 125 then return nil end
  local k = j + 3
  if byte(body, k) == 13 then k = k + 1 end
  if byte(body, k) ~= 10 then return nil end
  return j, k
end

-- Parses the complete action/source pairs of one piece of the body from
-- position pos, appending to the arrays after item n and line line_no.
-- Returns n, line_no, and the position where an incomplete pair starts
-- (the rest of it is in the next piece) | nil, status, body.
local function parse(body, pos, skip_sources, n, line_no, last)
  local len = #body
  local ptr = cast("const char *", body)
  local pfx, plen, pfx_op, pfx_index -- the last FAST_FULL line up to its id
  local ref_at, ref_len -- an id left in body (skip_sources)
  -- the next byte >= 0x80: one scan of the piece, so that only the sources
  -- holding one are checked for UTF-8 (nil: the rest is ASCII)
  local high = not skip_sources and first_high(body, pos)
  while pos <= len do
    local s, e, op, index, id
    if pfx and pos + plen <= len and memcmp(ptr + pos - 1, pfx, plen) == 0 then
      local q, k = fast_id_end(body, pos + plen)
      if q then
        s, e, op, index = pos, k, pfx_op, pfx_index
        if skip_sources then
          id, ref_at, ref_len = true, pos + plen - 1, q - pos - plen
        else
          id = sub(body, pos + plen, q - 1)
        end
      end
    end
    if not s then
      local at
      s, e, op, index, at, id = find(body, FAST_FULL, pos)
      if not s then
        s, e, op, at, id = find(body, FAST_ID, pos)
        index = nil
      end
      if s then pfx, plen, pfx_op, pfx_index = sub(body, pos, at - 1), at - pos, op, index end
    end
    local meta = false
    local ln = line_no + 1
    if not s then
      local nl = find(body, "\n", pos, true)
      if not nl then return n, line_no, pos end -- (a whole body ends with a newline)
      local line_end = nl - 1
      if byte(body, line_end) == 13 then line_end = line_end - 1 end
      e = nl
      if line_end >= pos then
        local line = sub(body, pos, line_end)
        local m
        op, m = fast_action(line)
        if not op then
          local st, eb
          op, st, eb = slow_action(line, ln)
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
      local src = false
      if op ~= "delete" then
        local nl2 = find(body, "\n", e + 1, true)
        if not nl2 then
          if not last then return n, line_no, pos end
          return nil, es.validation({ "source is missing" })
        end
        if known and not skip_sources then
          local send = nl2 - 1
          if byte(body, send) == 13 then send = send - 1 end
          src = sub(body, e + 1, send)
          if high and high <= e then high = first_high(body, e + 1) end
          if high and high <= send then
            local _, cause = check_utf8(src)
            if cause then nbad = nbad + 1; bad_at[nbad] = n + 1; bad_utf8[n + 1] = cause end
            high = first_high(body, send + 1)
          end
        end
        e = nl2
        ln = ln + 1
      end
      if known then
        n = n + 1
        ops[n], indices[n], ids[n], metas[n], srcs[n] = op, index or false, id or false, meta, src
        if id == true then id_in[n], id_at[n], id_len[n] = body, ref_at, ref_len end
      end
    end
    line_no = ln
    pos = e + 1
  end
  return n, line_no, nil
end

-- The body as read: one string, or the 64 KB pieces app.lua read from the
-- request socket. A pair cut by a piece boundary is completed line by line
-- from the next piece(s) (copying only that pair), then the rest of the
-- piece is parsed in place. -> n, ops, indices, ids, srcs, metas | nil,
-- status, body
local held = {} -- the text of an incomplete pair, in parts
local function parse_pieces(pieces, skip_sources)
  local n, line_no, nheld, count = 0, 0, 0, #pieces
  for i = 1, nbad do bad_utf8[bad_at[i]] = nil end
  nbad = 0
  local a, b
  for i = 1, count do
    local piece = pieces[i]
    local last, from, plen = i == count, 1, #piece
    while nheld > 0 do
      local nl = find(piece, "\n", from, true)
      if not nl then -- no end of line in the whole piece: keep it all
        nheld = nheld + 1
        held[nheld] = from == 1 and piece or sub(piece, from)
        from = plen + 1
        break
      end
      nheld = nheld + 1
      held[nheld] = sub(piece, from, nl)
      from = nl + 1
      local w = concat(held, "", 1, nheld)
      n, a, b = parse(w, 1, skip_sources, n, line_no, last and from > plen)
      if not n then return nil, a, b end
      line_no, nheld = a, 0
      if b then
        nheld = 1
        held[1] = sub(w, b)
      end
    end
    if from <= plen then
      n, a, b = parse(piece, from, skip_sources, n, line_no, last)
      if not n then return nil, a, b end
      line_no = a
      if b then
        nheld = 1
        held[1] = sub(piece, b)
      end
    end
  end
  for i = 1, #held do held[i] = nil end
  return n, ops, indices, ids, srcs, metas
end

local bh_seq = 0
local BH_SHARDS = '"_shards":{"total":1,"successful":1,"failed":0},"_seq_no":'
local BH_MID = {
  index = ',"_version":1,"result":"created",' .. BH_SHARDS, create = ',"_version":1,"result":"created",' .. BH_SHARDS,
  delete = ',"_version":1,"result":"deleted",' .. BH_SHARDS, update = ',"_version":2,"result":"updated",' .. BH_SHARDS,
}
local BH_END = { index = ',"_primary_term":1,"status":201}}', create = ',"_primary_term":1,"status":201}}',
                 delete = ',"_primary_term":1,"status":200}}', update = ',"_primary_term":1,"status":200}}' }

-- The response around the items written to ob, filtered or not.
local function bulk_response(took, errors)
  local f = item_filter
  if not f then
    ob:put("]}")
    return 200, buffered('{"took":' .. took .. ',"errors":' .. tostring(errors) .. ',"items":[', false)
  end
  local head = {}
  if f.took then head[#head + 1] = '"took":' .. took end
  if f.errors then head[#head + 1] = '"errors":' .. tostring(errors) end
  if nitems == 0 then
    -- every item filtered away: ES drops the emptied array
    return 200, buffered("{" .. concat(head, ",") .. "}", true)
  end
  head[#head + 1] = '"items":['
  ob:put("]}")
  return 200, buffered("{" .. concat(head, ","), true)
end
M.parse_item_filter = parse_item_filter

local function blackhole(pieces, default_index, started)
  local n, ops, indices, ids, _, metas = parse_pieces(pieces, true) -- luacheck: ignore 431 (the reused parse tables, returned)
  if not n then return ops, indices end
  if n == 0 then return es.validation({ "no requests added" }) end
  local last_op, last_index, pfx -- the response prefix of the previous item
  local f = item_filter
  for i = 1, n do
    local op, index, id = ops[i], indices[i] or default_index or "blackhole", ids[i]
    bh_seq = bh_seq + 1
    local id_body = id == true and id_in[i]
    if id_body then
      id = nil
      id_in[i] = false -- the body can go once answered
    end
    if f then
      local created = op == "index" or op == "create"
      if id_body then id = sub(id_body, id_at[i] + 1, id_at[i] + id_len[i]) end
      filtered_ok_item(f, op, index, id or ("bh" .. bh_seq), op == "update" and 2 or 1,
                       created and "created" or (op == "delete" and "deleted" or "updated"), false,
                       '"_shards":{"total":1,"successful":1,"failed":0}', bh_seq, 1, created and 201 or 200)
    else
      if op ~= last_op or index ~= last_index then
        last_op, last_index = op, index
        pfx = '{"' .. op .. '":{"_index":' .. jstr(index) .. ',"_id":'
      end
      ob:put(i > 1 and "," or "", pfx)
      if id_body then
        ob:put('"'):putcdata(cast("const char *", id_body) + id_at[i], id_len[i]):put('"')
      elseif not id then
        ob:put('"bh', bh_seq, '"')
      elseif metas[i] then -- decoded from JSON: may need escapes
        ob:put(jstr(id))
      else
        ob:put('"', id, '"')
      end
      ob:put(BH_MID[op], bh_seq, BH_END[op])
    end
  end
  nitems = f and nitems or n
  ngx.update_time()
  stats.bulk(0, n, {})
  return bulk_response(math.floor((ngx.now() - started) * 1000), false)
end

local EMPTY, CREATE = {}, { create = true }

-- Per request and index: the write target and the constant response parts.
local function target_entry(cache, index, url_routing, require_alias)
  local t = cache[index]
  if t == nil then
    local idx, alias, c = cluster_indices.index_for_write(index, true)
    if idx and require_alias and not cluster_indices.alias_indices(index) then idx = nil end
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

-- nil, or why the pieces of a body are no bulk request
local function refuse_body(pieces)
  local tail = pieces and pieces[#pieces]
  if not tail or tail == "" then
    return es.validation({ "no requests added" })
  end
  if byte(tail, #tail) ~= 10 then
    return es.bad_request("The bulk request must be terminated by a newline [\\n]")
  end
end

-- --chaos on a whole request: nil, or the failure it answers with (after
-- an injected latency, the request goes on)
local function request_chaos(ch, pieces)
  if rng:hit(ch.reset) then
    stats.chaos("reset")
    return 444
  end
  if rng:hit(ch.bulk_429) then
    stats.chaos("bulk_429")
    local bytes = 0
    for _, p in ipairs(pieces) do bytes = bytes + #p end
    return es.rejected_coordinating(bytes)
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

-- filter_path and the URL's _source options, for every item of this request
local function read_url_options(a)
  item_filter = parse_item_filter(a.filter_path)
  url_source = false
  if a._source ~= nil or a._source_includes ~= nil or a._source_excludes ~= nil then
    url_source = require("espipe.server.api_docs").source_spec(a)
    if url_source == nil then url_source = true end
  end
end

local function chaos_item_error(op, index, id, src)
  stats.chaos("item_429")
  item_error(op, index or json.null, id or nil, 429, { type = "es_rejected_execution_exception",
    reason = "rejected execution of primary operation [coordinating_and_primary_bytes=0, replica_bytes=0, "
      .. "all_bytes=0, primary_operation_bytes=" .. #(src or "") .. ", max_coordinating_and_primary_bytes=0] "
      .. "(injected by espipe serve --chaos)" })
end

-- after the items: refresh=, the stats, and the response (at the capacity
-- model's time with --capacity)
local function finish(req, w, n, refresh, plan, started)
  if refresh then
    for shard in pairs(w.per_shard) do cluster_shards.refresh_shard(shard) end
  end
  local written = 0
  for _, c in pairs(w.per_shard) do written = written + c end
  stats.docs(req.node, written, w.foreign)
  stats.bulk(req.node, n, w.per_shard)
  ngx.update_time()
  local st, resp = bulk_response(math.floor((ngx.now() - started) * 1000), w.errors)
  if plan then return capacity.respond_at(plan:finish(w.per_shard), st, resp) end
  return st, resp
end

-- req.body: a string, or a list of the pieces read from the request socket
function M.bulk(req)
  ngx.update_time()
  local started = ngx.now()
  local pieces = req.body
  if type(pieces) == "string" then pieces = { pieces } end
  local bs, bb = refuse_body(pieces)
  if bs then return bs, bb end
  local default_index = req.params.index
  local ch = chaos_setup(req.opts)
  if ch then
    local cs, cb = request_chaos(ch, pieces)
    if cs then return cs, cb end
  end
  read_url_options(req.args)
  accept_type = doc_types.answers_typed(req.opts)
  answer_type, one_type = accept_type, doc_types.typed(req.opts)
  -- from here to the response nothing yields: ob is this request's
  ob:reset()
  nitems = 0
  if req.opts.blackhole then return blackhole(pieces, default_index, started) end

  local refresh, rs, re = params.refresh(req.args)
  if refresh == nil and rs then return rs, re end
  local url_routing = params.str(req.args, "routing")
  local require_alias = params.flag(req.args, "require_alias", false)

  -- parse everything first: a malformed line fails the whole request
  local n, ops, indices, ids, srcs, metas = parse_pieces(pieces, false) -- luacheck: ignore 431 (the reused parse tables, returned)
  if not n then return ops, indices end
  if n == 0 then return es.validation({ "no requests added" }) end
  local ts, tb = doc_types.missing(req.opts, n, metas, req.args.type or req.params.type)
  if ts then return ts, tb end

  local errors = false
  local per_shard = {}
  local foreign = 0
  local node = req.node
  local cache = {}
  local forced = refresh == "true"
  local item_429 = ch and ch.item_429
  local f = item_filter
  local plan = capacity.plan(req.opts, cluster.state.node_count, node)
  for i = 1, n do
    local op, index, id, meta, src = ops[i], indices[i], ids[i], metas[i], srcs[i]
    if not index then index = default_index end
    local t = index and not meta and id and (op == "index" or op == "create") and not forced
      and target_entry(cache, index, url_routing, require_alias)
    if item_429 and rng:hit(item_429) then
      errors = true
      chaos_item_error(op, index, id, src)
    elseif t and t.fast and id ~= "" then
      -- the common case: index/create with _index and _id only
      local idx = t.idx
      local sh, herr = cluster_shards.shard_for(idx, id, nil)
      local s, c = writes.check_id(id)
      if s == nil then
        if not sh then
          s, c = 400, { type = "illegal_argument_exception", reason = herr }
        elseif plan and not plan:admit(idx.shards[sh]) then
          s, c = 429, capacity.REJECTION
        elseif idx.mapping.check then
          s, c = writes.check_source(idx, id, src, nil)
        elseif bad_utf8[i] then
          s, c = 400, bad_utf8[i]
        else
          s, c = source_syntax.screen(src)
          if not s and #idx.pending_sources < 10000 then cluster_shards.defer_mapping(idx, src) end
        end
      end
      local rec, created, cause
      if not s then
        rec, created, cause = cluster_shards.put(idx, sh, id, src, op == "create" and CREATE or EMPTY)
        if not rec then s, c = created, cause end
      end
      if s then
        errors = true
        item_error(op, idx.name, id, s, c)
      else
        local shard = idx.shards[sh]
        per_shard[shard] = (per_shard[shard] or 0) + 1
        if shard.node ~= node then foreign = foreign + 1 end
        if f then
          filtered_ok_item(f, op, idx.name, id, rec.v, created and "created" or "updated", false,
                           shards_json(idx), rec.s, rec.t, created and 201 or 200)
        else
          local pfx = t.pfx[op]
          if not pfx then
            pfx = '{"' .. op .. '":{"_index":' .. jstr(idx.name) .. type_json(idx) .. ',"_id":"'
            t.pfx[op] = pfx
          end
          nitems = nitems + 1
          ob:put(nitems > 1 and "," or "", pfx, id, '","_version":', rec.v, created and t.created or t.updated,
                 rec.s, ',"_primary_term":', rec.t, created and ',"status":201}}' or ',"status":200}}')
        end
      end
    else
      local shard, ok = M.general_item(op, index, id, meta or EMPTY, src, url_routing, require_alias, forced)
      if ok then
        per_shard[shard] = (per_shard[shard] or 0) + 1
        if shard.node ~= node then foreign = foreign + 1 end
      else
        errors = true
      end
    end
  end
  return finish(req, { per_shard = per_shard, foreign = foreign, errors = errors }, n, refresh, plan, started)
end

function M.nodes_stats(req) return capacity.nodes_stats(req.opts, cluster.state.node_count) end

local function validation(reason)
  return { type = "action_request_validation_exception", reason = "Validation Failed: 1: " .. reason .. ";" }
end

-- Each action below answers status, rec, cause, result, get (result on success).

local function run_update(idx, sh, id, meta, src, o)
  if o.version ~= nil or o.version_type ~= nil then
    return 400, nil, validation("Update requests do not support versioning. "
      .. "Please use `if_seq_no` and `if_primary_term` instead")
  end
  local ub, derr = json.decode(src)
  if ub == nil then
    return 400, nil, { type = "x_content_parse_exception", reason = "[1:1] " .. tostring(derr) }
  end
  local status, res = writes.update(idx, sh, id, ub, o)
  if status >= 300 then return status, nil, res end
  local rec = { id = id, v = res._version, s = res._seq_no, t = res._primary_term }
  return status, rec, nil, res.result, update_get(idx, sh, id, meta, ub)
end

-- a cluster_shards write's rec, flag (found / created), cause as an outcome;
-- without rec, flag is the failure's status
local function outcome(rec, flag, cause, yes, no)
  if not rec then return flag, nil, cause end
  if flag then return yes[1], rec, nil, yes[2] end
  return no[1], rec, nil, no[2]
end

local DELETED, NOT_FOUND = { 200, "deleted" }, { 404, "not_found" }
local CREATED, UPDATED = { 201, "created" }, { 200, "updated" }

local function run_delete(idx, sh, id, o)
  local rec, found, cause = cluster_shards.remove(idx, sh, id, o)
  return outcome(rec, found, cause, DELETED, NOT_FOUND)
end

local function run_index(op, idx, sh, id, src, o)
  if o.version ~= nil and (o.version_type == nil or o.version_type == "internal") then
    return 400, nil, validation("internal versioning can not be used for optimistic concurrency control. "
      .. "Please use `if_seq_no` and `if_primary_term` instead")
  end
  local s, c = writes.check_source(idx, id, src, nil)
  if s then return s, nil, c end
  o.create = op == "create"
  local rec, created, cause = cluster_shards.put(idx, sh, id, src, o)
  return outcome(rec, created, cause, CREATED, UPDATED)
end

-- the reason an item's index or id refuses it, before any lookup | nil
local function refused(op, index, id)
  if not index then return json.null, 400, validation("index is missing") end
  if id == "" then
    return index, 400, { type = "illegal_argument_exception", reason = "if _id is specified it must not be empty" }
  end
  if id then
    local s, c = writes.check_id(id)
    if s then return index, s, c end
  end
  if not id and op ~= "index" and op ~= "create" then
    return index, 400, validation("id is missing")
  end
end

-- Any other item: routing, versions, concurrency, update, delete, aliases
-- with routing, auto ids. Appends the item; returns shard, true on success.
function M.general_item(op, index, id, meta, src, url_routing, require_alias, forced)
  local shown, rs, rc = refused(op, index, id)
  if shown then
    item_error(op, shown, id or nil, rs, rc)
    return nil, false
  end
  -- an index action with op_type create is a create, and answered as one
  if op == "index" and meta.op_type == "create" then op = "create" end
  local out_op = op
  if not id then id, op = cluster.auto_id(), "create" end
  local route = meta.routing ~= nil and tostring(meta.routing) or url_routing
  local idx, sh, r2 = writes.target { index = index, id = id, routing = route, auto_create = op ~= "delete",
    require_alias = meta.require_alias == true or require_alias }
  if not idx then
    item_error(out_op, index, id, sh, r2)
    return nil, false
  end
  local ts, tc = doc_types.admit(one_type, idx, meta._type)
  if ts then
    item_error(out_op, idx.name, id, ts, tc)
    return nil, false
  end
  local o = { routing = r2, if_seq_no = num(meta.if_seq_no), if_primary_term = num(meta.if_primary_term),
              version = num(meta.version), version_type = meta.version_type }
  local status, rec, cause, result, get
  if op == "update" then status, rec, cause, result, get = run_update(idx, sh, id, meta, src, o)
  elseif op == "delete" then status, rec, cause, result = run_delete(idx, sh, id, o)
  else status, rec, cause, result = run_index(op, idx, sh, id, src, o) end
  if result then
    ok_item(out_op, idx, rec, result, status, forced, get)
    return idx.shards[sh], true
  end
  item_error(out_op, idx.name, id, status, cause)
  return nil, false
end

return M
