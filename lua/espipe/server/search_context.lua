-- Search snapshots, lazily filtered views over them, and the registry of
-- open scroll and point-in-time contexts.
--
-- A snapshot is the list of documents a search reaches, taken once: the
-- records visible at open time in _shard_doc order (shard ordinal << 32 |
-- per-shard sequence number), without decoding any source. A view is a
-- snapshot seen through a query and a slice; it is evaluated lazily, front
-- to back, and remembers what it has evaluated, so paging a context costs
-- O(page) for match_all and O(documents examined) otherwise, instead of
-- O(index) per page.
--
--   snapshot(indices, route[, unordered]) -> snap
--   compile(snap, query, sort_spec) -> { matchers, sorter } | nil, err
--   view(snap, compiled, query, slice) -> view
--   view_count(view, at_least) -> n, complete   (evaluates up to at_least+1 matches, or all when nil)
--   view_position(view, k) -> snapshot position of the k-th match | nil
--   view_range(view, first, size) -> base, n when the k-th match is position k
--   view_first_from(view, p) -> index k of the first match at position >= p
--   first_after_key(snap, v) -> first snapshot position whose _shard_doc key > v
--   hit(snap, pos, with_source) -> hit table as query.lua's sorters expect
--   register(ctx) -> n, get(n) -> ctx | nil, free(kind, n|"_all") -> freed, counts()
local json = require("espipe.server.json")
local cluster_shards = require("espipe.server.cluster_shards")
local query = require("espipe.server.query")
local slices = require("espipe.server.slices")
local sorting = require("espipe.server.sort")
local mapping = require("espipe.server.mapping")
local routing = require("espipe.server.routing")

local M = {}

local floor = math.floor
local SHARD_SHIFT = 4294967296 -- 2^32

local ok_new, new_table = pcall(require, "table.new")
if not ok_new then new_table = function() return {} end end

-- A shard's visible records in sequence-number order, kept on the shard
-- until a refresh changes what is visible (cluster_shards.refresh_shard drops it),
-- so opening a PIT or a scroll does not sort the shard again. Sequence
-- numbers are unique per shard and below shard.seq + 1: when that range is
-- not much larger than the shard, each record is placed at its number.
local function by_seq(shard)
  local list = shard.by_seq
  if list then return list end
  list = {}
  local slots, k = shard.seq + 1, 0
  if slots <= 4 * shard.visible_count + 64 then
    local at = new_table(slots, 0)
    for _, rec in pairs(shard.visible) do at[rec.s + 1] = rec end
    for i = 1, slots do
      local rec = at[i]
      if rec then
        k = k + 1
        list[k] = rec
      end
    end
  else
    -- mostly overwritten: sort the numbers (no comparator), then look up
    local seqs, recs = {}, {}
    for _, rec in pairs(shard.visible) do
      k = k + 1
      seqs[k], recs[rec.s] = rec.s, rec
    end
    table.sort(seqs)
    for i = 1, k do list[i] = recs[seqs[i]] end
  end
  shard.by_seq = list
  return list
end

function M.snapshot(indices, route, unordered)
  local recs, ords, shards, has_docs = {}, {}, {}, {}
  local n, ord = 0, 0
  for _, idx in ipairs(indices) do
    cluster_shards.lazy_refresh(idx)
    local only = route and cluster_shards.search_shards(idx, route)
    for i = 0, idx.nshards - 1 do
      shards[ord] = { idx = idx, shard = i }
      if not only or only[i] then
        local first = n + 1
        if unordered then
          for _, rec in pairs(idx.shards[i].visible) do
            n = n + 1
            recs[n] = rec
          end
        else
          local list = by_seq(idx.shards[i])
          for j = 1, #list do recs[n + j] = list[j] end
          n = n + #list
        end
        for j = first, n do ords[j] = ord end
        if n >= first then has_docs[idx] = true end
      end
      ord = ord + 1
    end
  end
  return { n = n, recs = recs, ords = ords, shards = shards, nshards = ord, indices = indices,
           has_docs = has_docs }
end

function M.key_at(snap, pos)
  return snap.ords[pos] * SHARD_SHIFT + snap.recs[pos].s
end

-- first snapshot position whose _shard_doc key is > v (n + 1 when none)
function M.first_after_key(snap, v)
  local lo, hi = 1, snap.n + 1
  local recs, ords = snap.recs, snap.ords
  while lo < hi do
    local mid = floor((lo + hi) / 2)
    if ords[mid] * SHARD_SHIFT + recs[mid].s > v then hi = mid else lo = mid + 1 end
  end
  return lo
end

function M.hit(snap, pos, with_source)
  local rec, ord = snap.recs[pos], snap.ords[pos]
  local info = snap.shards[ord]
  local src
  if with_source then src = json.decode(rec.src) end
  return { _id = rec.id, _index = info.idx.name, _routing = rec.r, _source = src, _doc = rec.s,
           _shard = ord, _score = 1.0, rec = rec }
end

local function is_trivial(q)
  if q == nil then return true end
  if type(q) ~= "table" then return false end
  local k, v = next(q)
  return k == "match_all" and next(q, k) == nil and (type(v) ~= "table" or next(v) == nil or v.boost ~= nil)
end
M.is_trivial = is_trivial

local META_SORT = { _doc = true, _shard_doc = true, _score = true }

-- Does compiling this query and sort read the mapping? match_all sorted
-- on _doc/_shard_doc/_score does not, so a scan leaves the dynamic fields
-- of the sources written since the last settling (cluster_shards.settle_mapping,
-- a JSON decode and a mapping walk per source) to whoever reads the mapping.
local function reads_mapping(q, sort_spec)
  if not is_trivial(q) then return true end
  local probe = sorting.compile_sort(sort_spec, nil)
  if not probe then return true end
  for _, k in ipairs(probe.keys) do
    if not META_SORT[k.field] then return true end
  end
  return false
end

-- Compiles the query and the sort for every index that has documents in
-- the snapshot (so a bad query fails whatever page it would first touch).
function M.compile(snap, q, sort_spec)
  local matchers, sorter, first_mapping = {}, nil, nil
  local settle = reads_mapping(q, sort_spec)
  for _, idx in ipairs(snap.indices) do
    if snap.has_docs[idx] then
      if settle then cluster_shards.settle_mapping(idx) end
      local mp = mapping.to_table(idx.mapping)
      first_mapping = first_mapping or mp
      local m, err = query.compile(q, mp)
      if not m then return nil, err end
      matchers[idx] = m
      local srt
      srt, err = sorting.compile_sort(sort_spec, mp)
      if not srt then return nil, err end
      sorter = sorter or srt
    end
  end
  if not sorter then
    local err
    sorter, err = sorting.compile_sort(sort_spec, first_mapping)
    if not sorter then return nil, err end
  end
  local sort_needs_source = false
  for _, k in ipairs(sorter.keys) do
    if k.field ~= "_doc" and k.field ~= "_shard_doc" and k.field ~= "_score" then sort_needs_source = true end
  end
  return { matchers = matchers, sorter = sorter, sort_needs_source = sort_needs_source }
end

-- A view: all of the snapshot (match_all, no slice), or the positions that
-- pass the slice and the query, found on demand and kept.
function M.view(snap, compiled, q, slice)
  local v = { snap = snap, slice = slice, matchers = compiled.matchers, test_query = not is_trivial(q) }
  if not v.test_query and not slice then
    v.all = true
  else
    v.matches, v.scanned = {}, 0
  end
  return v
end

local function passes(v, pos)
  local snap = v.snap
  local rec = snap.recs[pos]
  local info = snap.shards[snap.ords[pos]]
  local slice = v.slice
  if slice then
    local nshards = info.idx.nshards
    local h
    if slice.max > nshards then
      -- the id's hash, kept in the record: each slice of a scan tests every document
      h = rec.h
      if not h then
        h = routing.hash(tostring(rec.id)) or 0
        rec.h = h
      end
    end
    if slices.slice_of(rec.id, info.shard, slice.max, nshards, h) ~= slice.id then return false end
  end
  if not v.test_query then return true end
  local hit = M.hit(snap, pos, true)
  return v.matchers[info.idx](hit._source or {}, hit)
end

-- evaluates further positions until `want` matches are known or `upto`
-- positions are scanned (whichever is asked), or the snapshot ends
local function advance(v, want, upto)
  local matches, n = v.matches, v.snap.n
  local scanned, count = v.scanned, #matches
  while scanned < n and ((want and count < want) or (upto and scanned < upto)) do
    scanned = scanned + 1
    local ok, err = passes(v, scanned)
    if ok == nil and err then
      v.scanned = scanned - 1
      return nil, err
    end
    if ok then
      count = count + 1
      matches[count] = scanned
    end
  end
  v.scanned = scanned
  return true
end

-- number of matches, exact when complete; evaluates until at_least + 1
-- matches are known (all when at_least is nil)
function M.view_count(v, at_least)
  if v.all then return v.snap.n, true end
  local ok, err = advance(v, at_least and at_least + 1 or math.huge)
  if not ok then return nil, err end
  return #v.matches, v.scanned >= v.snap.n
end

-- when the view is the whole snapshot: the page of k = first..first+size-1
-- as positions base+1..base+n
function M.view_range(v, first, size)
  if not v.all then return nil end
  local last = math.min(first + size - 1, v.snap.n)
  return first - 1, math.max(last - first + 1, 0)
end

function M.view_position(v, k)
  if v.all then return k <= v.snap.n and k or nil end
  if k > #v.matches then
    local ok, err = advance(v, k)
    if not ok then return nil, err end
  end
  return v.matches[k]
end

-- index of the first match at snapshot position >= p
function M.view_first_from(v, p)
  if v.all then return p end
  local ok, err = advance(v, nil, p - 1)
  if not ok then return nil, err end
  local m = v.matches
  local lo, hi = 1, #m + 1
  while lo < hi do
    local mid = floor((lo + hi) / 2)
    if m[mid] >= p then hi = mid else lo = mid + 1 end
  end
  return lo
end

-- All matches of a view in the order of a sort that is not the snapshot's:
-- { positions = {...}, values = {...} | nil }, built once per context,
-- query, slice and sort. values (the hits' sort values) are kept when the
-- sort reads fields, so the sources are decoded once, here.
function M.sorted(v, compiled)
  local n, err = M.view_count(v)
  if not n then return nil, err end
  local snap, sorter = v.snap, compiled.sorter
  local keys = sorter.keys
  local count = v.all and snap.n or #v.matches
  local function position(i) return v.all and i or v.matches[i] end
  local recs, ords = snap.recs, snap.ords
  local out = {}
  local k1, k2 = keys[1], keys[2]
  if k1.field == "_doc" and not k1.desc and (k2 == nil or (k2.field == "_shard_doc" and not k2.desc)) then
    -- (sequence number, shard ordinal) order: the view lists each shard's
    -- matches in sequence order, one shard after the other, so merge those
    -- runs (at equal numbers the lower ordinal, i.e. the earlier run, first)
    local pos, seq, starts = {}, {}, {}
    local last_ord
    for i = 1, count do
      local p = position(i)
      pos[i], seq[i] = p, recs[p].s
      if ords[p] ~= last_ord then
        starts[#starts + 1] = i
        last_ord = ords[p]
      end
    end
    local runs = #starts
    if runs <= 1 then return { positions = pos } end
    if runs > 32 then
      -- too many runs to pick each entry's from a scan of the run heads
      local srt = {}
      for i = 1, count do srt[i] = i end
      table.sort(srt, function(a, b)
        if seq[a] ~= seq[b] then return seq[a] < seq[b] end
        return ords[pos[a]] < ords[pos[b]]
      end)
      for i = 1, count do out[i] = pos[srt[i]] end
      return { positions = out }
    end
    local heads, ends = {}, {}
    for r = 1, runs do heads[r], ends[r] = starts[r], (starts[r + 1] or count + 1) - 1 end
    for i = 1, count do
      local best, bs = 0, math.huge
      for r = 1, runs do
        local h = heads[r]
        if h <= ends[r] and seq[h] < bs then best, bs = r, seq[h] end
      end
      out[i] = pos[heads[best]]
      heads[best] = heads[best] + 1
    end
    return { positions = out }
  end
  local entries = {}
  for i = 1, count do
    local pos = position(i)
    local hit = M.hit(snap, pos, compiled.sort_needs_source)
    entries[i] = { pos = pos, sv = sorter.values(hit), sh = ords[pos], d = recs[pos].s }
  end
  local after = sorter.after
  table.sort(entries, function(a, b)
    if after(b.sv, a.sv) then return true end
    if after(a.sv, b.sv) then return false end
    if a.sh ~= b.sh then return a.sh < b.sh end
    return a.d < b.d
  end)
  local values = {}
  for i = 1, count do out[i], values[i] = entries[i].pos, entries[i].sv end
  return { positions = out, values = values }
end

-- sort values of the i-th entry of a sorted list
function M.sorted_values(snap, list, i, compiled)
  if list.values then return list.values[i] end
  return compiled.sorter.values(M.hit(snap, list.positions[i], compiled.sort_needs_source))
end

-- index of the first entry strictly after search_after | nil, err
function M.sorted_first_after(snap, list, compiled, search_after)
  local after = compiled.sorter.after
  local _, err = after(json.array(), search_after)
  if err then return nil, err end
  local lo, hi = 1, #list.positions + 1
  while lo < hi do
    local mid = floor((lo + hi) / 2)
    local is_after, aerr = after(M.sorted_values(snap, list, mid, compiled), search_after)
    if is_after == nil and aerr then return nil, aerr end
    if is_after then hi = mid else lo = mid + 1 end
  end
  return lo
end

------------------------------------------------------------------------
-- open contexts

local contexts = {} -- n -> { kind = "scroll"|"pit", expires =, ... }
local next_ctx = 0

local function now() return ngx and ngx.now() or os.time() end

function M.sweep()
  local t = now()
  for n, c in pairs(contexts) do
    if c.expires < t then contexts[n] = nil end
  end
end

function M.register(ctx)
  M.sweep()
  next_ctx = next_ctx + 1
  contexts[next_ctx] = ctx
  return next_ctx
end

function M.get(n)
  local c = contexts[n]
  if not c or c.expires < now() then
    contexts[n] = nil
    return nil
  end
  return c
end

-- frees one context (n) or all of a kind ("_all"); returns how many live
-- contexts were freed
function M.free(kind, n)
  local freed, t = 0, now()
  if n == "_all" then
    for k, c in pairs(contexts) do
      if c.kind == kind then
        contexts[k] = nil
        freed = freed + 1
      end
    end
  elseif contexts[n] and contexts[n].kind == kind then
    if contexts[n].expires >= t then freed = 1 end
    contexts[n] = nil
  end
  return freed
end

function M.counts()
  M.sweep()
  local scrolls, pits = 0, 0
  for _, c in pairs(contexts) do
    if c.kind == "scroll" then scrolls = scrolls + 1 else pits = pits + 1 end
  end
  return { open_contexts = scrolls + pits, open_scrolls = scrolls, open_pits = pits }
end

-- Per-context caches (views per query+slice, sorted lists per
-- query+slice+sort), bounded so that a client varying its queries cannot
-- grow a context without limit.
local CACHE_MAX = 8

function M.cached(ctx, bucket, key, build)
  local cache = ctx[bucket]
  if not cache then
    cache = { n = 0, items = {} }
    ctx[bucket] = cache
  end
  local v = cache.items[key]
  if v then return v end
  local err
  v, err = build()
  if not v then return nil, err end
  if cache.n >= CACHE_MAX then
    cache.items, cache.n = {}, 0
  end
  cache.items[key] = v
  cache.n = cache.n + 1
  return v
end

return M
