-- _search, _count, scroll and point-in-time. Searches see refreshed
-- documents only; scroll and PIT contexts keep their own snapshot and expire
-- after their keep_alive (checked against ngx.now() on every use). A
-- context evaluates its query lazily and caches what it learnt (matches,
-- totals, sorted orders), so each page of a scan costs about its size
-- (espipe.server.search_context).
local json = require("espipe.server.json")
local es = require("espipe.server.es_errors")
local cluster = require("espipe.server.cluster")
local cluster_indices = require("espipe.server.cluster_indices")
local params = require("espipe.server.params")
local date_math = require("espipe.server.date_math")
local source_filter = require("espipe.server.source_filter")
local stats = require("espipe.server.stats")
local sc = require("espipe.server.search_context")
local search_hits = require("espipe.server.search_hits")
local flavors = require("espipe.server.flavors")
local strbuf = require("string.buffer")


local M = {}

local MAX_KEEP_ALIVE = 24 * 3600
local PIT_WITH_INDICES = "[indices] cannot be used with point in time. Do not specify any index with point in time."

-- URL-safe base64, as ES's ids, so they can travel in a query string. An id
-- names this start of the server too: after a restart (--data keeps the
-- indices, not the contexts) an old id is a missing context, never the
-- context that happens to get its number again.
local boot
local function boot_id()
  if not boot then boot = string.format("%x%04x", math.floor(ngx.now() * 1000), math.random(0, 65535)) end
  return boot
end

local function encode_id(kind, n)
  return (ngx.encode_base64("espipe:" .. kind .. ":" .. boot_id() .. ":" .. n, true)
    :gsub("[+/]", { ["+"] = "-", ["/"] = "_" }))
end

-- decode_id(kind, id) -> n | false (well-formed, from another start) | nil
local function decode_id(kind, id)
  if type(id) ~= "string" then return nil end
  id = id:gsub("[-_]", { ["-"] = "+", ["_"] = "/" }):gsub("=+$", "")
  id = id .. string.rep("=", (4 - #id % 4) % 4)
  local s = ngx.decode_base64(id)
  local b, n = (s or ""):match("^espipe:" .. kind .. ":(%x+):(%d+)$")
  if not b then return nil end
  if b ~= boot_id() then return false end
  return tonumber(n)
end

local function keep_alive(v, name)
  local secs, err = date_math.parse_time(v)
  if not secs then return nil, es.bad_request("failed to parse setting [" .. name .. "] with value ["
    .. tostring(v) .. "] as a time value: " .. tostring(err and err.reason or err)) end
  local max_text = require("espipe.server.api_cluster").setting("search.max_keep_alive")
  local max = max_text and date_math.parse_time(max_text) or MAX_KEEP_ALIVE
  if secs > max then
    return nil, es.bad_request("Keep alive for request (" .. tostring(v) .. ") is too large. It must be less than ("
      .. (max_text or "1d") .. "). "
      .. "This limit can be set by changing the [search.max_keep_alive] cluster level setting.")
  end
  return secs
end

local function context(kind, id)
  local n = decode_id(kind, id)
  if n == nil then
    return nil, es.bad_request("Cannot parse " .. (kind == "pit" and "point in time" or "scroll") .. " id")
  end
  local c = n and sc.get(n)
  if not c then return nil, es.context_missing(n or id) end
  return c, n
end

local function query_error(err)
  return es.fail(err.status or 400, err.type or "parsing_exception", err.reason or tostring(err))
end

local function check_slice(slice)
  if slice == nil then return nil end
  -- ES reads id and max as integers, from numbers or numeric strings
  if type(slice) == "table" then slice.id, slice.max = tonumber(slice.id), tonumber(slice.max) end
  if type(slice) ~= "table" or type(slice.id) ~= "number" or type(slice.max) ~= "number" then
    return es.bad_request("[slice] needs numeric id and max")
  end
  if slice.max <= 1 then return es.bad_request("max must be greater than 1") end
  if slice.id >= slice.max then return es.bad_request("id must be lower than max") end
  return nil
end

-- a PIT search always ends its sort with the _shard_doc tiebreaker
-- (not when search_after holds exactly the values of the sort asked for: a
-- page after one read without the tiebreaker, as ES allows)
local function with_tiebreak(sort_spec, search_after, has_shard_doc)
  local list = json.array()
  if sort_spec ~= nil then
    if type(sort_spec) == "table" and (json.is_array(sort_spec) or sort_spec[1] ~= nil) then
      for _, s in ipairs(sort_spec) do list[#list + 1] = s end
    else
      list[1] = sort_spec
    end
  end
  for _, s in ipairs(list) do
    if s == "_shard_doc" or (type(s) == "table" and s._shard_doc) then return list end
  end
  if type(search_after) == "table" and #list > 0 and #search_after == #list then return list end
  if not has_shard_doc then return #list > 0 and list or nil end
  list[#list + 1] = "_shard_doc"
  return list
end

-- whether a sort names a field (as a string or { field = ... })
local function sorts_on(sort_spec, field)
  if sort_spec == field then return true end
  if type(sort_spec) ~= "table" then return false end
  if sort_spec[field] ~= nil then return true end
  for _, s in ipairs(sort_spec) do
    if s == field or (type(s) == "table" and s[field] ~= nil) then return true end
  end
  return false
end

-- the sorts a flavour lacks: _shard_doc before ES 7.12 / OpenSearch 3.3, and
-- _id in 8.x+, where fielddata on _id is off (indices.id_field_data.enabled)
local function unsupported_sort(opts, sort_spec)
  if not flavors.has_shard_doc(opts) and sorts_on(sort_spec, "_shard_doc") then
    return es.fail(400, "query_shard_exception", "No mapping found for [_shard_doc] in order to sort on")
  end
  if not flavors.sorts_on_id(opts) and sorts_on(sort_spec, "_id") then
    return es.fail(400, "illegal_argument_exception", "Fielddata access on the _id field is disallowed, you "
      .. "can re-enable it by updating the dynamic cluster setting: indices.id_field_data.enabled")
  end
end

-- The compiled query/sort and the view of a (context, query, slice, sort),
-- cached in the context when there is one.
local function plan_for(ctx, snap, body, sort_spec)
  local function build()
    local compiled, err = sc.compile(snap, body.query, sort_spec)
    if not compiled then return nil, err end
    return { compiled = compiled, view = sc.view(snap, compiled, body.query, body.slice) }
  end
  if not ctx then return build() end
  local key = json.encode({ q = body.query or json.null, sl = body.slice or json.null, so = sort_spec or json.null })
  return sc.cached(ctx, "plans", key, build)
end

-- Pages in snapshot order when the sort is _shard_doc first, or when a
-- search has no sort at all (every score is 1.0, ties go by shard and doc).
local function snapshot_order(plan, body, explicit_sort)
  local k1 = plan.compiled.sorter.keys[1]
  local sa = body.search_after
  if k1.field == "_shard_doc" and not k1.desc then
    return sa == nil or (type(sa) == "table" and type(sa[1]) == "number")
  end
  return not explicit_sort and sa == nil
end

-- search_after values for _doc, _shard_doc and _score may come as strings
-- ("99"), which ES parses as the numbers they are (a PIT export that saved
-- its position as text must not get an empty page)
local NUMERIC_SORTS = { _doc = true, _shard_doc = true, _score = true }
local function numeric_after(keys, sa)
  if type(sa) ~= "table" then return nil end
  for i, key in ipairs(keys) do
    local v = sa[i]
    if type(v) == "string" and NUMERIC_SORTS[key.field] then
      local n = (key.field == "_score" or v:match("^%-?%d+$")) and tonumber(v)
      if not n then
        return es.bad_request("Failed to parse search_after value for field [" .. key.field .. "].")
      end
      sa[i] = n
    end
  end
  return nil
end

local function sorted_list(plan)
  if not plan.sorted then
    local list, err = sc.sorted(plan.view, plan.compiled)
    if not list then return nil, err end
    plan.sorted = list
  end
  return plan.sorted
end

-- The page of entries first..first+size-1: { n =, positions =, values = }
-- with their snapshot positions (nil when they are the consecutive
-- positions base+1..base+n, as in a match_all view) and their sort values
-- when kept.
local function page_of(_, plan, ordered, first, size) -- (snap): positions come from the plan
  if ordered then
    local base, n = sc.view_range(plan.view, first, size)
    if base then return { n = n, base = base } end
    local positions = {}
    for k = first, first + size - 1 do
      local pos, err = sc.view_position(plan.view, k)
      if err then return nil, err end
      if not pos then break end
      positions[#positions + 1] = pos
    end
    return { n = #positions, positions = positions }
  end
  local list, err = sorted_list(plan)
  if not list then return nil, err end
  local positions, values = {}, list.values and {} or nil
  for k = first, math.min(first + size - 1, #list.positions) do
    positions[#positions + 1] = list.positions[k]
    if values then values[#positions] = list.values[k] end
  end
  return { n = #positions, positions = positions, values = values }
end

-- number of matches for hits.total: up to track + 1 are counted
local function count_matches(plan, ordered, track)
  if track == false then return 0 end
  if not ordered then
    local list, err = sorted_list(plan)
    if not list then return nil, err end
    return #list.positions
  end
  return sc.view_count(plan.view, track ~= true and track or nil)
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

-- Pages are written into one reused string.buffer as JSON text: each hit's
-- stored source bytes are spliced in as they are, and nothing is interned
-- per hit (no table per hit, no encode of the page). A worker runs one
-- handler at a time and app.lua sends the buffer before the next request
-- is handled, so one buffer serves every response; its memory is freed
-- after an unusually large page.
local BUFFERED_MT = require("espipe.server.api_bulk").BUFFERED_MT
local ob = strbuf.new()
local KEEP_BYTES = 32 * 1024 * 1024

local ffi = require("ffi")
local u8p = ffi.typeof("const uint8_t *")

-- does s need JSON escapes? (a byte loop the JIT compiles, unlike a pattern)
local function needs_escape(s)
  local p = ffi.cast(u8p, s)
  for j = 0, #s - 1 do
    local c = p[j]
    if c < 32 or c == 34 or c == 92 then return true end
  end
  return false
end

-- '{"_index":"name","_id":"' per shard ordinal of the snapshot, and the same
-- after a comma (ids are quoted by the caller)
local function hit_prefixes(snap)
  local p = snap.hit_prefix
  if not p then
    p = { [0] = {}, {} }
    for ord, info in pairs(snap.shards) do
      local s = '{"_index":' .. json.encode(info.idx.name) .. ',"_id":'
      p[0][ord], p[1][ord] = s, "," .. s
    end
    snap.hit_prefix = p
  end
  return p
end

-- SORT_SHARD_DOC / SORT_DOC: sort values written straight from the record
-- when the sort is [_shard_doc] or [_doc] (a PIT's default, a scroll's usual)
local SORT_SHARD_DOC, SORT_DOC = 1, 2
local function sort_kind(keys, values)
  if values or #keys ~= 1 then return nil end
  local f = keys[1].field
  return (f == "_shard_doc" and SORT_SHARD_DOC) or (f == "_doc" and SORT_DOC) or nil
end

-- the hits of a page into ob (which it resets); spec = _source filter
local function render(snap, plan, page, sorted, spec)
  local buf = ob
  buf:reset()
  local recs, ords = snap.recs, snap.ords
  local positions, values, base = page.positions, page.values, page.base
  local compiled = plan.compiled
  local kind = sorted and sort_kind(compiled.sorter.keys, values)
  local whole = spec == nil or spec == true or spec == json.null
  local score = sorted and ',"_score":null' or ',"_score":1'
  local mid = score .. (spec == false and "" or ',"_source":')
  local prefixes = hit_prefixes(snap)
  local first, rest = prefixes[0], prefixes[1]
  for i = 1, page.n do
    local pos = positions and positions[i] or base + i
    local rec, ord = recs[pos], ords[pos]
    local id = rec.id
    local pre = (i == 1 and first or rest)[ord]
    if rec.r or not whole or needs_escape(id) then
      buf:put(pre, json.encode(id), score)
      if rec.r then buf:put(',"_routing":', json.encode(rec.r)) end
      if whole then
        buf:put(',"_source":', rec.src)
      elseif spec ~= false then
        local src = source_filter.filter(json.raw(rec.src), spec)
        buf:put(',"_source":', json.is_raw(src) and json.raw_text(src) or json.encode(src))
      end
    else
      buf:put(pre, '"', id, '"', mid, rec.src)
    end
    if kind == SORT_SHARD_DOC then
      buf:putf(',"sort":[%d]}', ord * 4294967296 + rec.s)
    elseif kind == SORT_DOC then
      buf:putf(',"sort":[%d]}', rec.s)
    elseif sorted then
      buf:put(',"sort":', json.encode(compiled.sorter.output(values and values[i]
        or compiled.sorter.values(sc.hit(snap, pos, compiled.sort_needs_source)))), "}")
    else
      buf:put("}")
    end
  end
  buf:put("]}}")
end

-- hits with docvalue_fields, version, matched_queries, ... (search_hits)
-- into ob, one table per hit; returns the page's max_score text
local function render_rich(snap, plan, page, sorted, spec, extras)
  local buf = ob
  buf:reset()
  local compiled = plan.compiled
  local max
  for i = 1, page.n do
    local pos = page.positions and page.positions[i] or page.base + i
    local rec, ord = snap.recs[pos], snap.ords[pos]
    local sv
    if sorted then
      sv = page.values and page.values[i] or compiled.sorter.values(sc.hit(snap, pos, compiled.sort_needs_source))
      sv = compiled.sorter.output(sv)
    end
    local h = search_hits.hit(extras, snap.shards[ord], rec, spec, sv, sorted)
    if type(h._score) == "number" and (not max or h._score > max) then max = h._score end
    if i > 1 then buf:put(",") end
    buf:put(json.encode(h))
  end
  buf:put("]}}")
  return max and json.encode(max) or "null"
end

local function render_page(snap, plan, page, sorted, spec, extras)
  if extras then return render_rich(snap, plan, page, sorted, spec, extras) end
  render(snap, plan, page, sorted, spec)
  return (sorted or page.n == 0) and "null" or "1"
end

-- indices_boost without a sort: hits by boost (highest first), ties in
-- snapshot order; with min_score, only the indices boosted to it
local function boosted_page(snap, plan, boosts, first, size, min_score)
  local function boost(pos) return boosts[snap.shards[snap.ords[pos]].idx.name] or 1 end
  local all = {}
  local k = 1
  while true do
    local pos, err = sc.view_position(plan.view, k)
    if err then return nil, err end
    if not pos then break end
    if not min_score or boost(pos) >= min_score then all[#all + 1] = pos end
    k = k + 1
  end
  table.sort(all, function(a, b)
    local ba, bb = boost(a), boost(b)
    if ba ~= bb then return ba > bb end
    return a < b
  end)
  local positions = {}
  for i = first, math.min(first + size - 1, #all) do positions[#positions + 1] = all[i] end
  return { n = #positions, positions = positions, total = #all }
end

-- the response of a page: head = everything before the hits (fields as
-- ES orders them), then the hits rendered into ob
local function page_response(head)
  return setmetatable({ head, ob, filtered = false, free = #ob > KEEP_BYTES }, BUFFERED_MT)
end

local function shards_json(n)
  return '"_shards":{"total":' .. n .. ',"successful":' .. n .. ',"skipped":0,"failed":0}'
end

local function hits_head(total, max_score)
  return '"hits":{' .. (total ~= nil and ('"total":' .. json.encode(total) .. ",") or "")
    .. '"max_score":' .. max_score .. ',"hits":['
end

local function shards_header(n)
  return { total = n, successful = n, skipped = 0, failed = 0 }
end

-- the keys of a search body (SearchSourceBuilder's); any other is refused
local SEARCH_KEYS = {}
for k in ([[query from size sort _source fields docvalue_fields stored_fields track_total_hits
  track_scores search_after slice pit aggs aggregations post_filter highlight min_score indices_boost
  timeout terminate_after version seq_no_primary_term explain script_fields rescore suggest collapse
  profile runtime_mappings knn stats ext rank retriever]]):gmatch("%S+") do SEARCH_KEYS[k] = true end
M.SEARCH_KEYS = SEARCH_KEYS

-- A search through one alias sees what the alias shows: its search_routing
-- (unless the request routes) and its filter, and'ed with the query.
-- Returns the routing to search with.
local function alias_view(req, body)
  local route = params.str(req.args, "routing")
  local name = req.params.index
  if not name or name:find("[,*]") or cluster.state.indices[name] then return route end
  local targets = cluster_indices.alias_indices(name)
  if not targets or #targets ~= 1 then return route end
  local alias = cluster.state.indices[targets[1]].aliases[name]
  if route == nil and alias.search_routing ~= nil then route = tostring(alias.search_routing) end
  if type(alias.filter) == "table" then
    body.query = { bool = { must = { body.query or { match_all = json.object() } }, filter = { alias.filter } } }
  end
  return route
end

-- search_after as sent: an integer beyond 2^53 (a date_nanos sort value)
-- read again from the text, exact
local function exact_after(sa, text)
  if type(sa) ~= "table" or type(text) ~= "string" then return sa end
  for _, v in ipairs(sa) do
    if type(v) == "number" and (v >= 2 ^ 53 or v <= -2 ^ 53) then
      local ok, exact = pcall(json.decode_exact, text)
      if ok and type(exact) == "table" and type(exact.search_after) == "table" then return exact.search_after end
      return sa
    end
  end
  return sa
end

-- query-string parameters folded into the body (the body wins)
local function merged_body(req)
  local body, s, e = params.body(req)
  if body == false then return nil, s, e end
  body = body or {}
  body.search_after = exact_after(body.search_after, req.body)
  s, e = params.check_keys(req, body, SEARCH_KEYS)
  if s then return nil, s, e end
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
  -- _source, _source_includes, _source_excludes in the URL win over the body's _source
  local url_spec = require("espipe.server.api_docs").source_spec(a)
  if url_spec ~= nil then body._source = url_spec end
  if body.query == nil and a.q ~= nil then body.query = require("espipe.server.lucene_query").from_args(a) end
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

-- the paging parameters of a search: { size =, from =, track =, as_int =,
-- scroll = } | nil, status, body
local function page_params(req, body)
  local size, from = body.size or 10, body.from or 0
  if type(size) ~= "number" or size < 0 then
    return nil, es.bad_request("[size] parameter cannot be negative, found [" .. tostring(size) .. "]")
  end
  if type(from) ~= "number" or from < 0 then
    return nil, es.bad_request("[from] parameter cannot be negative, found [" .. tostring(from) .. "]")
  end
  local track = body.track_total_hits
  if track == nil then track = 10000 end
  if type(track) == "number" and track < -1 then
    return nil, es.bad_request("[track_total_hits] parameter must be positive or equals to -1, got " .. track)
  end
  local as_int, astatus, abody = params.flag(req.args, "rest_total_hits_as_int", false)
  if as_int == nil then return nil, astatus, abody end
  if flavors.wire_of(req.opts).total_hits == "integer" then as_int, track = true, true end
  if as_int and type(body.track_total_hits) == "number" then
    return nil, es.bad_request("[rest_total_hits_as_int] cannot be used if the tracking of total hits is not "
      .. "accurate, got " .. track)
  end
  if track == -1 or (as_int and track ~= false) then track = true end
  return { size = size, from = from, track = track, as_int = as_int, scroll = params.str(req.args, "scroll") }
end

-- search_type and the scroll-context rules -> nil | status, body
local function check_context(req, body, scroll)
  local search_type = params.str(req.args, "search_type")
  if search_type and search_type ~= "query_then_fetch" and search_type ~= "dfs_query_then_fetch" then
    return es.bad_request("No search type for [" .. search_type .. "]")
  end
  if not scroll then return nil end
  local problems = {}
  if body.size == 0 then problems[#problems + 1] = "[size] cannot be [0] in a scroll context" end
  if req.args.request_cache == "true" then
    problems[#problems + 1] = "[request_cache] cannot be used in a scroll context"
  end
  if #problems > 0 then return es.validation(problems) end
end

-- the point in time a search names -> its context and number | nil, status, body
local function pit_of(req, body, scroll)
  if req.params.index then return nil, es.validation({ PIT_WITH_INDICES }) end
  if scroll then return nil, es.validation({ "using [point in time] is not allowed in a scroll context" }) end
  if type(body.pit) ~= "table" then return nil, es.bad_request("[pit] must be an object") end
  local c, n, cb = context("pit", body.pit.id)
  if not c then return nil, n, cb end
  if body.pit.keep_alive then
    local secs, ks, kb = keep_alive(body.pit.keep_alive, "keep_alive")
    if not secs then return nil, ks, kb end
    c.expires = ngx.now() + secs
  end
  return c, n
end

-- what the search reads: snap, and the PIT context and number when it has one
-- | nil, status, body
local function search_snapshot(req, body, scroll)
  if body.pit ~= nil then
    local c, n, cb = pit_of(req, body, scroll)
    if not c then return nil, n, cb end
    return c.snap, c, n
  end
  local indices, s, e = cluster_indices.of_request(req, { forbid_closed = true })
  if not indices then return nil, s, e end
  return (sc.snapshot(indices, alias_view(req, body)))
end

-- the 1-based position of the first hit after search_after -> first | nil,
-- status, body
local function first_after(snap, plan, body, from, ordered)
  if type(body.search_after) ~= "table" then return nil, es.bad_request("[search_after] must be an array") end
  if from > 0 then return nil, es.bad_request("`from` parameter must be set to 0 when `search_after` is used.") end
  local first, err
  if ordered then
    -- the sort starts with the unique _shard_doc: the first later doc by binary search
    local _, serr = plan.compiled.sorter.after(json.array(), body.search_after)
    if serr then return nil, query_error(serr) end
    first, err = sc.view_first_from(plan.view, sc.first_after_key(snap, body.search_after[1]))
  else
    local list
    list, err = sorted_list(plan)
    if list then first, err = sc.sorted_first_after(snap, list, plan.compiled, body.search_after) end
  end
  if not first then return nil, query_error(err) end
  return first
end

-- the page of hits and the total: page, count, no_score (min_score above
-- every score) | nil, err
local function search_page(q, count)
  local min_score = tonumber(q.body.min_score)
  if q.extras and q.extras.boosts and not q.sorted then
    local page, err = boosted_page(q.snap, q.plan, q.extras.boosts, q.first, q.size, min_score)
    if not page then return nil, err end
    return page, min_score and page.total or count, false
  end
  if min_score and min_score > 1 then
    -- every score is 1 (see search_hits): nothing reaches a higher min_score
    return { n = 0, positions = {} }, 0, true
  end
  local page, err = page_of(q.snap, q.plan, q.ordered, q.first, q.size)
  if not page then return nil, err end
  return page, count, false
end

local function register_scroll(q, p, count, scroll_secs, no_score)
  local n = sc.register({ kind = "scroll", expires = ngx.now() + scroll_secs, snap = q.snap,
                          plan = q.plan, ordered = q.ordered, pos = q.first - 1 + q.size, size = q.size,
                          total = total_of(count, true, p.as_int), spec = q.body._source, sorted = q.sorted,
                          extras = q.extras, empty = no_score })
  return encode_id("scroll", n)
end

-- the compiled search: q = { body =, snap =, plan =, ordered =, sorted =,
-- first =, size =, extras = } | nil, status, body
local function prepare(req, body, p, snap, pit_ctx)
  local s, e = check_slice(body.slice)
  if s then return nil, s, e end
  if pit_ctx and body.slice and not flavors.wire_of(req.opts).pit_slices then
    -- a PIT takes no slice before Elasticsearch 7.15 (elastic/elasticsearch#75162)
    return nil, es.validation({ "[slice] can only be used with [scroll] requests" })
  end
  require("espipe.server.terms_lookup").rewrite(body.query)
  s, e = require("espipe.server.search_limits").check(snap.indices, body, p.scroll)
  if s then return nil, s, e end
  local sort_spec = body.sort
  s, e = unsupported_sort(req.opts, sort_spec)
  if s then return nil, s, e end
  if pit_ctx then sort_spec = with_tiebreak(sort_spec, body.search_after, flavors.has_shard_doc(req.opts)) end
  local plan, err = plan_for(pit_ctx, snap, body, sort_spec)
  if not plan then return nil, query_error(err) end
  s, e = numeric_after(plan.compiled.sorter.keys, body.search_after)
  if s then return nil, s, e end
  local sorted = sort_spec ~= nil
  local q = { body = body, snap = snap, plan = plan, sorted = sorted, size = p.size, first = p.from + 1,
              ordered = snapshot_order(plan, body, sorted) }
  if body.search_after ~= nil then
    q.first, s, e = first_after(snap, plan, body, p.from, q.ordered)
    if not q.first then return nil, s, e end
  end
  local extras, xs, xe = search_hits.options(body, req.args)
  if extras == false then return nil, xs, xe end
  if not extras and search_hits.hides_source(snap.indices) then extras = {} end
  q.extras = extras
  return q
end

function M.search(req)
  local started = ngx.now()
  local cs, ce = search_chaos(req)
  if cs then return cs, ce end
  local body, s, e = merged_body(req)
  if not body then return s, e end
  local p
  p, s, e = page_params(req, body)
  if not p then return s, e end
  s, e = check_context(req, body, p.scroll)
  if s then return s, e end
  local snap, pit_ctx, pit_n = search_snapshot(req, body, p.scroll)
  if not snap then return pit_ctx, pit_n end
  local q
  q, s, e = prepare(req, body, p, snap, pit_ctx)
  if not q then return s, e end
  local scroll_secs
  if p.scroll then
    scroll_secs, s, e = keep_alive(p.scroll, "scroll")
    if not scroll_secs then return s, e end
    p.track = true
  end
  local count, err = count_matches(q.plan, q.ordered, p.track)
  if not count then return query_error(err) end
  local page, no_score
  page, count, no_score = search_page(q, count)
  if not page then return query_error(count) end
  local aggs_text
  if body.aggs ~= nil or body.aggregations ~= nil then
    aggs_text, err = require("espipe.server.search_aggs").compute(snap, q.plan.view, body,
      req.args.typed_keys == "true")
    if aggs_text == false then return query_error(err) end
  end
  local scroll_id = p.scroll and register_scroll(q, p, count, scroll_secs, no_score)
  local max_score = render_page(snap, q.plan, page, q.sorted, body._source, q.extras)
  if aggs_text then require("espipe.server.search_aggs").append(ob, aggs_text) end
  local head = "{"
  if scroll_id then head = head .. '"_scroll_id":"' .. scroll_id .. '",' end
  if pit_ctx then head = head .. '"pit_id":"' .. encode_id("pit", pit_n) .. '",' end
  head = head .. '"took":' .. math.floor((ngx.now() - started) * 1000) .. ',"timed_out":false,'
    .. shards_json(snap.nshards) .. ","
    .. hits_head(total_of(count, p.track, p.as_int), max_score)
  return 200, page_response(head)
end

-- _msearch: header and body lines in pairs, each searched as its own
-- request (header index/routing/search_type/... as its parameters), each
-- answer with its status; one failed search is one error item
local MSEARCH_ARGS = { "rest_total_hits_as_int", "typed_keys", "ccs_minimize_roundtrips" }

local function msearch_item(req, header, text)
  local args = {}
  for _, k in ipairs(MSEARCH_ARGS) do args[k] = req.args[k] end
  for k, v in pairs(header) do
    if k ~= "index" then args[k] = type(v) == "table" and table.concat(v, ",") or tostring(v) end
  end
  local index = header.index
  if type(index) == "table" then index = table.concat(index, ",") end
  local sub = { method = "POST", path = req.path, args = args, body = text, node = req.node,
                headers = req.headers, opts = req.opts, params = { index = index or req.params.index } }
  local status, resp = M.search(sub)
  if getmetatable(resp) == BUFFERED_MT then
    local body = require("espipe.server.api_bulk").text(resp)
    return body:sub(1, -2) .. ',"status":' .. status .. "}"
  end
  if type(resp) == "table" then resp.status = resp.status or status end
  return json.encode(resp)
end

function M.msearch(req)
  local started = ngx.now()
  local text = req.body or ""
  local lines = {}
  for line in text:gmatch("[^\n]+") do
    if not line:match("^%s*$") then lines[#lines + 1] = line end
  end
  if #lines == 0 then return es.validation({ "no requests added" }) end
  local items = {}
  for i = 1, #lines, 2 do
    local header = json.decode(lines[i])
    if type(header) ~= "table" or json.is_array(header) then
      return es.parse_error("msearch header at line " .. i .. " must be a JSON object")
    end
    local body_text = lines[i + 1]
    if not body_text then return es.parse_error("msearch header at line " .. i .. " has no search body") end
    local b = json.decode(body_text)
    if type(b) == "table" and b.pit ~= nil and (header.index or req.params.index) then
      return es.validation({ PIT_WITH_INDICES })
    end
    if type(b) == "table" and type(b.track_total_hits) == "number"
        and params.flag(req.args, "rest_total_hits_as_int") then
      return es.validation({ "[rest_total_hits_as_int] cannot be used if the tracking of total hits is not "
        .. "accurate, got " .. b.track_total_hits })
    end
    items[#items + 1] = { header = header, text = body_text }
  end
  local out = {}
  for i, item in ipairs(items) do out[i] = msearch_item(req, item.header, item.text) end
  return 200, '{"took":' .. math.floor((ngx.now() - started) * 1000) .. ',"responses":[' .. table.concat(out, ",")
    .. "]}"
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
    local secs, ks, kb = keep_alive(ka, "scroll")
    if not secs then return ks, kb end
    c.expires = ngx.now() + secs
  end
  local page, err
  if c.empty then
    page = { n = 0, positions = {} }
  else
    page, err = page_of(c.snap, c.plan, c.ordered, c.pos + 1, c.size)
  end
  if not page then return query_error(err) end
  c.pos = c.pos + c.size
  local max_score = render_page(c.snap, c.plan, page, c.sorted, c.spec, c.extras)
  -- the id is written as the client sent it, as ES does (ids are URL-safe base64)
  return 200, page_response("{" .. '"_scroll_id":' .. json.encode(id) .. ',"took":0,"timed_out":false,'
    .. shards_json(c.snap.nshards) .. ","
    .. hits_head(c.total, max_score))
end

local function free(kind, ids)
  local freed = 0
  for _, id in ipairs(ids) do
    if id == "_all" then
      freed = freed + sc.free(kind, "_all")
    else
      local n = decode_id(kind, id)
      if n then freed = freed + sc.free(kind, n) end
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
  local secs, ks, kb = keep_alive(ka, "keep_alive")
  if not secs then return ks, kb end
  local indices, s, e = cluster_indices.of_request(req)
  if not indices then return s, e end
  local snap = sc.snapshot(indices, params.str(req.args, "routing"))
  local n = sc.register({ kind = "pit", expires = ngx.now() + secs, snap = snap })
  if flavors.wire_of(req.opts).pit == "opensearch" then
    return 200, { pit_id = encode_id("pit", n), _shards = shards_header(snap.nshards),
                  creation_time = math.floor(ngx.now() * 1000) }
  end
  return 200, { id = encode_id("pit", n), _shards = shards_header(snap.nshards) }
end

-- OpenSearch: DELETE /_search/point_in_time {"pit_id": [ids]} answers per id
local function close_pit_opensearch(body)
  if body.pit_id == nil then return es.validation({ "pit_id is missing" }) end
  local pits, any = json.array(), false
  for _, id in ipairs(id_list(body.pit_id)) do
    local ok = free("pit", { id }) > 0
    any = any or ok
    pits[#pits + 1] = { successful = ok, pit_id = id }
  end
  return any and 200 or 404, { pits = pits }
end

function M.close_pit(req)
  local body, s, e = params.body(req, true)
  if not body then return s, e end
  if flavors.wire_of(req.opts).pit == "opensearch" then return close_pit_opensearch(body) end
  if body.id == nil then return es.validation({ "point in time id is missing" }) end
  local freed = free("pit", id_list(body.id))
  return freed > 0 and 200 or 404, { succeeded = true, num_freed = freed }
end

function M.count(req)
  local body, s, e = params.body(req)
  if body == false then return s, e end
  for k in pairs(body or {}) do
    -- RestActions.getQueryContent: a count body holds a query and nothing else
    if k ~= "query" then return es.fail(400, "parsing_exception", "request does not support [" .. k .. "]") end
  end
  body = { query = body and body.query }
  if body.query == nil and req.args.q ~= nil then
    body.query = require("espipe.server.lucene_query").from_args(req.args)
  end
  local indices
  indices, s, e = cluster_indices.of_request(req)
  if not indices then return s, e end
  local snap = sc.snapshot(indices, alias_view(req, body), true)
  local min_score = tonumber(params.str(req.args, "min_score"))
  if min_score and min_score > 1 then
    -- every score is 1: nothing reaches a higher min_score
    return 200, { count = 0, _shards = shards_header(snap.nshards) }
  end
  if sc.is_trivial(body.query) then
    return 200, { count = snap.n, _shards = shards_header(snap.nshards) }
  end
  local compiled, err = sc.compile(snap, body.query, nil)
  if not compiled then return query_error(err) end
  local n
  n, err = sc.view_count(sc.view(snap, compiled, body.query, nil))
  if not n then return query_error(err) end
  return 200, { count = n, _shards = shards_header(snap.nshards) }
end

return M
