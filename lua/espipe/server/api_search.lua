-- _search, _count, scroll and point-in-time. Searches see refreshed
-- documents only; scroll and PIT contexts keep their own snapshot and expire
-- after their keep_alive (checked against ngx.now() on every use).
local json = require("espipe.server.json")
local es = require("espipe.server.es_errors")
local cluster = require("espipe.server.cluster")
local params = require("espipe.server.params")
local query = require("espipe.server.query")
local stats = require("espipe.server.stats")

local M = {}

local MAX_KEEP_ALIVE = 24 * 3600
local contexts = {} -- n -> { kind = "scroll"|"pit", expires =, ... }
local next_ctx = 0

-- URL-safe base64, as ES's ids, so they can travel in a query string
local function encode_id(kind, n)
  return (ngx.encode_base64("espipe:" .. kind .. ":" .. n, true):gsub("[+/]", { ["+"] = "-", ["/"] = "_" }))
end

local function decode_id(kind, id)
  if type(id) ~= "string" then return nil end
  id = id:gsub("[-_]", { ["-"] = "+", ["_"] = "/" }):gsub("=+$", "")
  id = id .. string.rep("=", (4 - #id % 4) % 4)
  local s = ngx.decode_base64(id)
  local n = s and s:match("^espipe:" .. kind .. ":(%d+)$")
  return n and tonumber(n)
end

local function sweep()
  local t = ngx.now()
  for n, c in pairs(contexts) do
    if c.expires < t then contexts[n] = nil end
  end
end

local function keep_alive(v, name)
  local secs, err = query.parse_time(v)
  if not secs then return nil, es.bad_request("failed to parse setting [" .. name .. "] with value ["
    .. tostring(v) .. "] as a time value: " .. tostring(err and err.reason or err)) end
  if secs > MAX_KEEP_ALIVE then
    return nil, es.bad_request("Keep alive for request (" .. tostring(v) .. ") is too large. It must be less than (1d). "
      .. "This limit can be set by changing the [search.max_keep_alive] cluster level setting.")
  end
  return secs
end

local function context(kind, id)
  local n = decode_id(kind, id)
  if not n then
    return nil, es.bad_request("Cannot parse " .. (kind == "pit" and "point in time" or "scroll") .. " id")
  end
  local c = contexts[n]
  if not c or c.expires < ngx.now() then
    contexts[n] = nil
    return nil, es.context_missing(n)
  end
  return c, n
end

local function query_error(err)
  return es.fail(err.status or 400, err.type or "parsing_exception", err.reason or tostring(err))
end

local function is_trivial(q)
  if q == nil then return true end
  local k, v = next(q)
  return k == "match_all" and next(q, k) == nil and (type(v) ~= "table" or next(v) == nil or v.boost)
end

-- Snapshot of the documents a search reaches: list of { idx, shard_ord, rec }.
local function collect(indices, route)
  local out, ord = {}, 0
  for _, idx in ipairs(indices) do
    cluster.lazy_refresh(idx)
    local only = route and cluster.search_shards(idx, route)
    for i = 0, idx.nshards - 1 do
      if not only or only[i] then
        for _, rec in pairs(idx.shards[i].visible) do
          out[#out + 1] = { idx = idx, ord = ord, shard = i, rec = rec }
        end
      end
      ord = ord + 1
    end
  end
  return out, ord
end

-- Runs query/sort/slice over docs -> sorted hits, sorter | nil, status, body
local function run(docs, body, nshards, implicit_tiebreak)
  local sort_spec = body.sort
  if implicit_tiebreak then
    local list = json.array()
    if sort_spec ~= nil then
      if type(sort_spec) == "table" and (json.is_array(sort_spec) or sort_spec[1] ~= nil) then
        for _, s in ipairs(sort_spec) do list[#list + 1] = s end
      else
        list[1] = sort_spec
      end
    end
    local has = false
    for _, s in ipairs(list) do
      if s == "_shard_doc" or (type(s) == "table" and s._shard_doc) then has = true end
    end
    if not has then list[#list + 1] = "_shard_doc" end
    sort_spec = list
  end
  local matchers, sorters = {}, {}
  local need_source = not is_trivial(body.query)
  local first_mapping
  local hits = {}
  local slice = body.slice
  if slice ~= nil then
    if type(slice) ~= "table" or type(slice.id) ~= "number" or type(slice.max) ~= "number" then
      return nil, es.bad_request("[slice] needs numeric id and max")
    end
    if slice.max <= 1 then return nil, es.bad_request("max must be greater than 1") end
    if slice.id >= slice.max then return nil, es.bad_request("id must be lower than max") end
  end
  for _, d in ipairs(docs) do
    local idx = d.idx
    local m = matchers[idx]
    if not m then
      cluster.settle_mapping(idx)
      local mp = require("espipe.server.mapping").to_table(idx.mapping)
      first_mapping = first_mapping or mp
      local err
      m, err = query.compile(body.query, mp)
      if not m then return nil, query_error(err) end
      matchers[idx] = m
      local srt
      srt, err = query.compile_sort(sort_spec, mp)
      if not srt then return nil, query_error(err) end
      sorters[idx] = srt
      for _, k in ipairs(srt.keys) do
        if k.field ~= "_doc" and k.field ~= "_shard_doc" and k.field ~= "_score" then need_source = true end
      end
    end
    local rec = d.rec
    if not slice or query.slice_of(rec.id, d.shard, slice.max, idx.nshards) == slice.id then
      local src
      if need_source then src = json.decode(rec.src) end
      local hit = { _id = rec.id, _index = idx.name, _routing = rec.r, _source = src, _doc = rec.s,
                    _shard = d.ord, _score = 1.0, rec = rec }
      local ok, err = true, nil
      if need_source then ok, err = m(src or {}, hit) end
      if ok == nil and err then return nil, query_error(err) end
      if ok then hits[#hits + 1] = hit end
    end
  end
  local sorter = next(sorters) and select(2, next(sorters))
  if not sorter then
    local err
    sorter, err = query.compile_sort(sort_spec, first_mapping)
    if not sorter then return nil, query_error(err) end
  end
  table.sort(hits, sorter.compare)
  return hits, sorter, sort_spec ~= nil
end

local function total_of(n, track, as_int)
  if track == false then return as_int and -1 or nil end
  if track == true then
    if as_int then return n end
    return { value = n, relation = "eq" }
  end
  if n > track then
    if as_int then return n end
    return { value = track, relation = "gte" }
  end
  if as_int then return n end
  return { value = n, relation = "eq" }
end

local function render(page, sorter, sorted, spec)
  local out = json.array()
  for _, hit in ipairs(page) do
    local h = { _index = hit._index, _id = hit._id, _score = sorted and json.null or hit._score }
    if hit._routing then h._routing = hit._routing end
    if spec ~= false then
      h._source = query.source_filter(json.raw(hit.rec.src), spec)
    end
    if sorted then h.sort = sorter.values(hit) end
    out[#out + 1] = h
  end
  return out
end

local function shards_header(n)
  return { total = n, successful = n, skipped = 0, failed = 0 }
end

-- query-string parameters folded into the body (the body wins)
local function merged_body(req)
  local body, s, e = params.body(req)
  if body == false then return nil, s, e end
  body = body or {}
  local a = req.args
  if body.size == nil and a.size then body.size = tonumber(a.size) end
  if body.from == nil and a.from then body.from = tonumber(a.from) end
  if body.sort == nil and type(a.sort) == "string" then
    local list = json.array()
    for p in a.sort:gmatch("[^,]+") do list[#list + 1] = p end
    body.sort = list
  end
  if body.track_total_hits == nil and a.track_total_hits ~= nil then
    local v = a.track_total_hits
    body.track_total_hits = (v == "true" or v == true) and true or (v == "false" and false) or tonumber(v)
  end
  if body._source == nil then
    local spec = require("espipe.server.api_docs").source_spec(a)
    if spec ~= nil then body._source = spec end
  end
  if body.query == nil and type(a.q) == "string" then
    local f, v = a.q:match("^([^:]+):(.+)$")
    body.query = f and { match = { [f] = v } } or { match_all = {} }
  end
  return body
end

local function search_chaos(req)
  local ch, rng = require("espipe.server.api_bulk").chaos_state(req.opts)
  if not ch then return nil end
  if rng:hit(ch.search_429) then
    stats.chaos("search_429")
    return es.fail(429, "es_rejected_execution_exception",
      "rejected execution of search (injected by espipe serve --chaos)")
  end
  if rng:hit(ch.search_503) then
    stats.chaos("search_503")
    return es.fail(503, "search_phase_execution_exception", "all shards failed (injected by espipe serve --chaos)")
  end
  return nil
end

function M.search(req)
  local started = ngx.now()
  local cs, ce = search_chaos(req)
  if cs then return cs, ce end
  local body, s, e = merged_body(req)
  if not body then return s, e end
  local size = body.size or 10
  local from = body.from or 0
  if type(size) ~= "number" or size < 0 then return es.bad_request("[size] parameter cannot be negative, found [" .. tostring(size) .. "]") end
  if type(from) ~= "number" or from < 0 then return es.bad_request("[from] parameter cannot be negative, found [" .. tostring(from) .. "]") end
  local track = body.track_total_hits
  if track == nil then track = 10000 end
  if type(track) == "number" and track < -1 then
    return es.bad_request("[track_total_hits] parameter must be positive or equals to -1, got " .. track)
  end
  local as_int, astatus, abody = params.flag(req.args, "rest_total_hits_as_int", false)
  if as_int == nil then return astatus, abody end
  if as_int and type(body.track_total_hits) == "number" then
    return es.bad_request("[rest_total_hits_as_int] cannot be used if the tracking of total hits is not accurate, got " .. track)
  end
  if track == -1 or (as_int and track ~= false) then track = true end
  local scroll = params.str(req.args, "scroll")

  local docs, nshards, pit_ctx, pit_n
  if body.pit ~= nil then
    if req.params.index then
      return es.validation({ "[indices] cannot be used with point in time. Do not specify any index with point in time." })
    end
    if scroll then return es.validation({ "using [point in time] is not allowed in a scroll context" }) end
    if type(body.pit) ~= "table" then return es.bad_request("[pit] must be an object") end
    local c, n, cb = context("pit", body.pit.id)
    if not c then return n, cb end
    pit_ctx, pit_n = c, n
    if body.pit.keep_alive then
      local secs, kerr = keep_alive(body.pit.keep_alive, "keep_alive")
      if not secs then return 400, kerr end
      c.expires = ngx.now() + secs
    end
    docs, nshards = c.docs, c.nshards
  else
    local indices
    indices, s, e = cluster.resolve(req.params.index, { ignore_unavailable = req.args.ignore_unavailable == "true" })
    if not indices then return s, e end
    docs, nshards = collect(indices, params.str(req.args, "routing"))
  end

  local hits, sorter, sorted = run(docs, body, nshards, pit_ctx ~= nil)
  if not hits then return sorter, sorted end
  if body.search_after ~= nil then
    if type(body.search_after) ~= "table" then return es.bad_request("[search_after] must be an array") end
    local kept = {}
    for _, h in ipairs(hits) do
      local after, err = sorter.after(sorter.values(h), body.search_after)
      if after == nil and err then return query_error(err) end
      if after then kept[#kept + 1] = h end
    end
    hits = kept
    if from > 0 then return es.bad_request("`from` parameter must be set to 0 when `search_after` is used.") end
  end
  local total = #hits
  local spec = body._source
  local resp = { took = 0, timed_out = false, _shards = shards_header(nshards) }

  if scroll then
    if size == 0 then return es.fail(400, "action_request_validation_exception", "Validation Failed: 1: [size] cannot be [0] in a scroll context;") end
    local secs, kerr = keep_alive(scroll, "scroll")
    if not secs then return 400, kerr end
    sweep()
    next_ctx = next_ctx + 1
    contexts[next_ctx] = { kind = "scroll", expires = ngx.now() + secs, hits = hits, pos = from + size, size = size,
                           total = total_of(total, true, as_int), spec = spec, sorter = sorter, sorted = sorted,
                           nshards = nshards }
    resp._scroll_id = encode_id("scroll", next_ctx)
    track = true
  end

  local page = {}
  for i = from + 1, math.min(from + size, #hits) do page[#page + 1] = hits[i] end
  resp.hits = { total = total_of(total, track, as_int), max_score = (sorted or #page == 0) and json.null or 1.0,
                hits = render(page, sorter, sorted, spec) }
  if pit_ctx then resp.pit_id = encode_id("pit", pit_n) end
  resp.took = math.floor((ngx.now() - started) * 1000)
  return 200, resp
end

function M.scroll(req)
  local body, s, e = params.body(req)
  if body == false then return s, e end
  body = body or {}
  local id = body.scroll_id or req.params.scroll_id or params.str(req.args, "scroll_id")
  local ka = body.scroll or params.str(req.args, "scroll")
  if not id then return es.validation({ "scroll id is missing" }) end
  local c, n, cb = context("scroll", id)
  if not c then return n, cb end
  if ka then
    local secs, kerr = keep_alive(ka, "scroll")
    if not secs then return 400, kerr end
    c.expires = ngx.now() + secs
  end
  local page = {}
  for i = c.pos + 1, math.min(c.pos + c.size, #c.hits) do page[#page + 1] = c.hits[i] end
  c.pos = c.pos + c.size
  return 200, { _scroll_id = id, took = 0, timed_out = false, _shards = shards_header(c.nshards),
                hits = { total = c.total, max_score = c.sorted and json.null or (#page > 0 and 1.0 or json.null),
                         hits = render(page, c.sorter, c.sorted, c.spec) } }
end

local function free(kind, ids)
  local freed = 0
  for _, id in ipairs(ids) do
    if id == "_all" then
      for n, c in pairs(contexts) do
        if c.kind == kind then contexts[n] = nil freed = freed + 1 end
      end
    else
      local n = decode_id(kind, id)
      if n and contexts[n] and contexts[n].kind == kind then
        if contexts[n].expires >= ngx.now() then freed = freed + 1 end
        contexts[n] = nil
      end
    end
  end
  return freed
end

local function id_list(v)
  if type(v) == "table" then return v end
  local out = {}
  for p in tostring(v):gmatch("[^,]+") do out[#out + 1] = p end
  return out
end

function M.clear_scroll(req)
  local body, s, e = params.body(req)
  if body == false then return s, e end
  local ids = (body and body.scroll_id) or req.params.scroll_id or params.str(req.args, "scroll_id")
  if ids == nil then return es.validation({ "no scroll ids specified" }) end
  local freed = free("scroll", id_list(ids))
  return freed > 0 and 200 or 404, { succeeded = true, num_freed = freed }
end

function M.open_pit(req)
  local ka = params.str(req.args, "keep_alive")
  if not ka then return es.validation({ "[keep_alive] is not specified" }) end
  local secs, kerr = keep_alive(ka, "keep_alive")
  if not secs then return 400, kerr end
  local indices, s, e = cluster.resolve(req.params.index)
  if not indices then return s, e end
  local docs, nshards = collect(indices, params.str(req.args, "routing"))
  sweep()
  next_ctx = next_ctx + 1
  contexts[next_ctx] = { kind = "pit", expires = ngx.now() + secs, docs = docs, nshards = nshards }
  return 200, { id = encode_id("pit", next_ctx), _shards = shards_header(nshards) }
end

function M.close_pit(req)
  local body, s, e = params.body(req, true)
  if not body then return s, e end
  if body.id == nil then return es.validation({ "point in time id is missing" }) end
  local freed = free("pit", id_list(body.id))
  return freed > 0 and 200 or 404, { succeeded = true, num_freed = freed }
end

function M.count(req)
  local body, s, e = params.body(req)
  if body == false then return s, e end
  body = { query = body and body.query }
  if body.query == nil and type(req.args.q) == "string" then
    local f, v = req.args.q:match("^([^:]+):(.+)$")
    body.query = f and { match = { [f] = v } } or nil
  end
  local indices
  indices, s, e = cluster.resolve(req.params.index)
  if not indices then return s, e end
  local docs, nshards = collect(indices, params.str(req.args, "routing"))
  local hits, serr, sbody
  if is_trivial(body.query) then
    return 200, { count = #docs, _shards = shards_header(nshards) }
  end
  hits, serr, sbody = run(docs, body, nshards, false)
  if not hits then return serr, sbody end
  return 200, { count = #hits, _shards = shards_header(nshards) }
end

return M
