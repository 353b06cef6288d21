-- _delete_by_query and _update_by_query: the documents a query matches in
-- what was last refreshed, each deleted (or reindexed) only if it has not
-- changed since (its sequence number is the one the snapshot saw), else a
-- version conflict that aborts the request or, with conflicts=proceed, is
-- counted. wait_for_completion=false runs it at once and keeps the response
-- as a task for GET _tasks/{id}. Scripts (update_by_query) go through
-- M.script_hook when one is installed.
local json = require("espipe.server.json")
local es = require("espipe.server.es_errors")
local cluster_indices = require("espipe.server.cluster_indices")
local cluster_shards = require("espipe.server.cluster_shards")
local params = require("espipe.server.params")
local sc = require("espipe.server.search_context")

local M = {}

-- script_hook(script, ctx) -> true | nil, status, error body. ctx holds
-- _index, _id, _version, _routing, _source (a table the script may change)
-- and op ("index"; the script may set "noop" or "delete"). The Painless
-- subset (espipe.server.painless) is the one installed.
M.script_hook = require("espipe.server.script_update").hook

local tasks, next_task = {}, 0

local BODY_KEYS = { query = true, max_docs = true, slice = true, conflicts = true, script = true, size = true }

local function int_arg(req, name)
  local v, s, e = params.int(req.args, name, nil)
  if s then return nil, s, e end
  return v
end

local function conflict_failure(idx, sh, rec, cur)
  local detail = "required seqNo [" .. rec.s .. "], primary term [" .. rec.t .. "]. "
    .. (cur and ("current document has seqNo [" .. cur.s .. "] and primary term [" .. cur.t .. "]")
        or "but no document was found")
  return { index = idx.name, id = rec.id, cause = es.version_conflict_cause(idx, sh, rec.id, detail),
           status = 409 }
end

-- one matched document: "deleted" | "updated" | "noop" | "conflict", failure
local function apply(op, body, info, rec)
  local idx, sh = info.idx, info.shard
  local cur = idx.shards[sh].docs[rec.id]
  if not cur or cur.s ~= rec.s then return "conflict", conflict_failure(idx, sh, rec, cur) end
  local o = { if_seq_no = rec.s, if_primary_term = rec.t, routing = cur.r }
  if op == "delete" then
    cluster_shards.remove(idx, sh, rec.id, o)
    return "deleted"
  end
  local src = cur.src
  if body.script ~= nil then
    local ctx = { _index = idx.name, _id = rec.id, _version = cur.v, _routing = cur.r, op = "index",
                  _source = json.decode(src) }
    local ok, s, e = M.script_hook(body.script, ctx)
    if not ok then return "error", { status = s, body = e } end
    if ctx.op == "noop" then return "noop" end
    if ctx.op == "delete" then
      cluster_shards.remove(idx, sh, rec.id, o)
      return "deleted"
    end
    src = json.encode(ctx._source)
  end
  cluster_shards.put(idx, sh, rec.id, src, o)
  return "updated"
end

-- the matches of one view (a slice, or all): counts into counts, a failure
-- that aborts into failures -> total | nil, status, body
local function run_slice(op, body, snap, view, counts, failures, touched, total, max_docs, conflicts)
  local k = 1
  while not max_docs or total < max_docs do
    local pos, verr = sc.view_position(view, k)
    if verr then return nil, es.fail(400, verr.type or "parsing_exception", verr.reason) end
    if not pos then break end
    k = k + 1
    total = total + 1
    local info = snap.shards[snap.ords[pos]]
    local result, failure = apply(op, body, info, snap.recs[pos])
    if result == "error" then return nil, failure.status, failure.body end
    counts[result] = counts[result] + 1
    touched[info.idx] = true
    if result == "conflict" and conflicts == "abort" then
      failures[#failures + 1] = failure
      break
    end
  end
  return total
end

-- slices=N|auto (auto: the shards of the first index) -> n | nil, status, body
local function slice_count(req, indices)
  local v = params.str(req.args, "slices")
  if v == nil then return 1 end
  if v == "auto" then return indices[1] and indices[1].nshards or 1 end
  local n = tonumber(v)
  if not n or n < 1 or n ~= math.floor(n) then
    return nil, es.bad_request("Failed to parse int parameter [slices] with value [" .. v .. "]")
  end
  return n
end

local function run(req, op)
  local started = ngx.now()
  local body, s, e = params.body(req)
  if body == false then return s, e end
  body = body or {}
  s, e = params.check_keys(req, body, BODY_KEYS)
  if s then return s, e end
  if op == "update" and body.script ~= nil and not M.script_hook then
    return es.bad_request("scripts are not supported by espipe serve in _update_by_query")
  end
  local conflicts = body.conflicts or params.str(req.args, "conflicts") or "abort"
  if conflicts ~= "abort" and conflicts ~= "proceed" then
    return es.bad_request("conflicts may only be \"proceed\" or \"abort\" but was [" .. tostring(conflicts) .. "]")
  end
  local max_docs, scroll_size
  max_docs, s, e = int_arg(req, "max_docs")
  if s then return s, e end
  max_docs = body.max_docs or max_docs
  scroll_size, s, e = int_arg(req, "scroll_size")
  if s then return s, e end
  scroll_size = scroll_size or 1000
  local indices
  indices, s, e = cluster_indices.of_request(req, { forbid_closed = true })
  if not indices then return s, e end
  local snap = sc.snapshot(indices, params.str(req.args, "routing"))
  local compiled, err = sc.compile(snap, body.query, nil)
  if not compiled then return es.fail(err.status or 400, err.type or "parsing_exception", err.reason) end
  local n_slices
  n_slices, s, e = slice_count(req, indices)
  if s then return s, e end
  local slices = { body.slice or false } -- false: the whole view
  if n_slices > 1 and body.slice == nil then
    slices = {}
    for i = 0, n_slices - 1 do slices[#slices + 1] = { id = i, max = n_slices } end
  end
  local counts = { deleted = 0, updated = 0, noop = 0, conflict = 0 }
  local failures, total, touched, statuses = json.array(), 0, {}, json.array()
  for i, slice in ipairs(slices) do
    local before = { total = total, deleted = counts.deleted, updated = counts.updated, noop = counts.noop,
                     conflict = counts.conflict }
    local view = sc.view(snap, compiled, body.query, slice or nil)
    local fs, fb
    total, fs, fb = run_slice(op, body, snap, view, counts, failures, touched, total, max_docs, conflicts)
    if not total then return fs, fb end
    if #slices > 1 then
      local st = { slice_id = i - 1, total = total - before.total, deleted = counts.deleted - before.deleted,
                   batches = math.max(1, math.ceil((total - before.total) / scroll_size)),
                   version_conflicts = counts.conflict - before.conflict, noops = counts.noop - before.noop,
                   retries = { bulk = 0, search = 0 }, throttled_millis = 0, requests_per_second = -1,
                   throttled_until_millis = 0 }
      if op == "update" then st.updated = counts.updated - before.updated end
      statuses[#statuses + 1] = st
    end
    if #failures > 0 then break end
  end
  if params.refresh(req.args) then
    for idx in pairs(touched) do cluster_shards.refresh(idx) end
  end
  local resp = { took = math.floor((ngx.now() - started) * 1000), timed_out = false, total = total,
                 batches = math.max(1, math.ceil(total / scroll_size)), version_conflicts = counts.conflict,
                 noops = counts.noop, retries = { bulk = 0, search = 0 }, throttled_millis = 0,
                 requests_per_second = -1, throttled_until_millis = 0, failures = failures }
  resp.deleted = counts.deleted
  if op == "update" then resp.updated = counts.updated end
  if #statuses > 0 then resp.slices = statuses end
  return #failures > 0 and 409 or 200, resp
end

local function as_task(req, op)
  local wait, s, e = params.flag(req.args, "wait_for_completion", true)
  if wait == nil then return s, e end
  local status, resp = run(req, op)
  if wait or status ~= 200 then return status, resp end
  next_task = next_task + 1
  local id = "espipe:" .. next_task
  tasks[id] = { action = "indices:data/write/" .. op .. "/byquery", response = resp,
                start = math.floor(ngx.now() * 1000) }
  return 200, { task = id }
end

function M.delete_by_query(req) return as_task(req, "delete") end
function M.update_by_query(req) return as_task(req, "update") end

function M.get_task(req)
  local id = req.params.task_id
  local t = tasks[id]
  if not t then
    return es.fail(404, "resource_not_found_exception",
      "task [" .. tostring(id) .. "] isn't running and hasn't stored its results")
  end
  local node, n = id:match("^([^:]+):(%d+)$")
  return 200, { completed = true,
    task = { node = node, id = tonumber(n), type = "transport", action = t.action, cancellable = true,
             cancelled = false, start_time_in_millis = t.start, running_time_in_nanos = 0,
             headers = json.object() },
    response = t.response }
end

return M
