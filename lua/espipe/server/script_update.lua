-- _update with a script (and bulk update items with one): the Painless
-- subset run on ctx, upsert / scripted_upsert, ctx.op noop and delete, and
-- retry_on_conflict. The document is read, the script run, and the result
-- written only if the document is still the one read (its seq_no): when
-- the caller lets other requests run in between (o.pause), a concurrent
-- change makes a version conflict, retried up to retry_on_conflict times.
--
--   update(idx, sh, id, body, o, writes) -> status, result | status, cause
--     o: routing, if_seq_no, if_primary_term, retry_on_conflict, pause = fn()
--   script_of(spec) -> program, params | nil, status, cause  (inline or stored script)
--   run_on(program, params, idx, rec) -> ctx | nil, status, cause
--   op_of(ctx) -> "index" | "noop" | "delete"
--   hook(spec, ctx) -> true | nil, status, error body   runs a script on an
--     _update_by_query ctx in place (ctx.op normalised by op_of), the
--     signature of api_by_query.script_hook
local json = require("espipe.server.json")
local es = require("espipe.server.es_errors")
-- the shards (and persist behind them) are loaded on use, so that compiling and running scripts (hook,
-- script_of) works outside nginx too
local function cluster_shards() return require("espipe.server.cluster_shards") end
local painless = require("espipe.server.painless")
local stored = require("espipe.server.api_scripts")

local M = {}

local null = json.null

-- compiled programs by source, bounded
local cache, cached = {}, 0
local CACHE_MAX = 256

local function compiled(src)
  local p = cache[src]
  if p then return p end
  local err
  p, err = painless.compile(src)
  if not p then return nil, err end
  if cached >= CACHE_MAX then cache, cached = {}, 0 end
  cache[src], cached = p, cached + 1
  return p
end

local function failed(cause)
  return 400, { type = "illegal_argument_exception", reason = "failed to execute script", caused_by = cause }
end

local SCRIPT_KEYS = { source = true, id = true, params = true, lang = true, options = true, inline = false }

function M.script_of(spec)
  if type(spec) == "string" then spec = { source = spec } end
  if type(spec) ~= "table" or spec == null then
    return nil, 400, { type = "x_content_parse_exception", reason = "[script] must be a string or an object" }
  end
  for k in pairs(spec) do
    if not SCRIPT_KEYS[k] then
      return nil, 400, { type = "x_content_parse_exception", reason = "[script] unknown field [" .. tostring(k) .. "]" }
    end
  end
  local src, lang = spec.source, spec.lang
  if spec.id ~= nil then
    local s = stored.get_script(tostring(spec.id))
    if not s then
      return nil, 404, { type = "resource_not_found_exception",
        reason = "unable to find script [" .. tostring(spec.id) .. "] in cluster state" }
    end
    src, lang = s.source, s.lang
  end
  if lang ~= nil and lang ~= "painless" then
    return nil, 400, { type = "illegal_argument_exception",
      reason = "script_lang not supported [" .. tostring(lang) .. "]" }
  end
  if type(src) ~= "string" then
    return nil, 400, { type = "illegal_argument_exception",
      reason = "must specify either [source] for an inline script or [id] for a stored script" }
  end
  local program, err = compiled(src)
  if not program then return nil, failed(err) end
  return program, spec.params
end

local deep_copy = json.copy

local function ctx_for(idx, id, cur, source, op)
  local now = math.floor((ngx and ngx.now() or os.time()) * 1000)
  local ctx = json.object({ _source = source, op = op, _index = idx.name, _id = id, _now = now })
  if cur then
    ctx._version, ctx._routing = cur.v, cur.r or null
  end
  return ctx
end

-- runs the program; the ctx after it | nil, status, cause
local function run(program, script_params, ctx)
  local _, err = program:run(ctx, deep_copy(script_params))
  if err then return nil, failed(err) end
  if type(ctx._source) ~= "table" or ctx._source == null then
    return nil, failed({ type = "illegal_argument_exception", reason = "ctx._source must be a map" })
  end
  return ctx
end

local OPS = { index = "index", create = "index", delete = "delete", none = "noop", noop = "noop" }

local function store(writes, idx, sh, id, doc, o)
  local ok, src = pcall(json.encode, doc)
  if not ok then -- a script can make ctx._source hold itself
    return nil, failed({ type = "illegal_argument_exception", reason = "ctx._source cannot be written as JSON: "
      .. tostring(src) })
  end
  local s, c = writes.check_source(idx, id, src, doc)
  if s then return nil, s, c end
  return cluster_shards().put(idx, sh, id, src, o)
end

local function upsert(writes, idx, sh, id, body, o, program, script_params)
  local doc = deep_copy(body.upsert ~= nil and body.upsert ~= null and body.upsert or json.object())
  if body.scripted_upsert == true then
    local ctx, s, c = run(program, script_params, ctx_for(idx, id, nil, doc, "create"))
    if not ctx then return s, c end
    if M.op_of(ctx) ~= "index" then
      return 200, { _index = idx.name, _id = id, _version = -1, result = "noop",
                    _shards = { total = 0, successful = 0, failed = 0 } }
    end
    doc = ctx._source
  elseif body.upsert == nil then
    return writes.missing(idx, sh, id)
  end
  local rec, st, cause = store(writes, idx, sh, id, doc, { create = true, routing = o.routing })
  if not rec then return st, cause end
  return 201, writes.result(idx, rec, "created")
end

-- The script run on a stored document (for _update and _update_by_query):
-- ctx (ctx._source the new source, ctx.op) | nil, status, cause
function M.run_on(program, script_params, idx, rec)
  local doc = json.decode(rec.src)
  if type(doc) ~= "table" then doc = json.object() end
  return run(program, script_params, ctx_for(idx, rec.id, rec, doc, "index"))
end

-- what the script asked for: "index" | "noop" | "delete" (unknown ops are noops, as in ES)
function M.op_of(ctx)
  return OPS[tostring(ctx.op)] or "noop"
end

-- one read-run-write attempt; a 409 is retried by the caller
local function attempt(writes, idx, sh, id, body, o, program, script_params)
  local cur = idx.shards[sh].docs[id]
  if not cur then return upsert(writes, idx, sh, id, body, o, program, script_params) end
  if o.if_seq_no ~= nil and (cur.s ~= o.if_seq_no or cur.t ~= o.if_primary_term) then
    return 409, es.version_conflict_cause(idx, sh, id, "required seqNo [" .. o.if_seq_no .. "], primary term ["
      .. o.if_primary_term .. "]. current document has seqNo [" .. cur.s .. "] and primary term [" .. cur.t .. "]")
  end
  local ctx, s, c = M.run_on(program, script_params, idx, cur)
  if not ctx then return s, c end
  local op = M.op_of(ctx)
  if op == "noop" then return 200, writes.result(idx, cur, "noop") end
  if o.pause then o.pause() end
  local guard = { routing = o.routing or cur.r, if_seq_no = cur.s, if_primary_term = cur.t }
  if op == "delete" then
    local rec, found, cause = cluster_shards().remove(idx, sh, id, guard)
    if not rec then return found, cause end
    return 200, writes.result(idx, rec, "deleted")
  end
  local rec, st, cause = store(writes, idx, sh, id, ctx._source, guard)
  if not rec then return st, cause end
  return 200, writes.result(idx, rec, "updated")
end

function M.hook(spec, ctx)
  local program, script_params, cause = M.script_of(spec)
  if not program then
    -- _update wraps a script's failure; _update_by_query answers the script_exception itself
    if cause and cause.reason == "failed to execute script" then cause = cause.caused_by end
    return nil, es.envelope(script_params, cause)
  end
  local _, err = program:run(ctx, deep_copy(script_params))
  if err then return nil, es.envelope(400, err) end
  ctx.op = M.op_of(ctx)
  return true
end

function M.update(idx, sh, id, body, o, writes)
  if body.doc ~= nil then
    return 400, { type = "action_request_validation_exception",
                  reason = "Validation Failed: 1: can't provide both script and doc;" }
  end
  if body.doc_as_upsert == true then
    return 400, { type = "action_request_validation_exception",
                  reason = "Validation Failed: 1: doc must be specified if doc_as_upsert is enabled;" }
  end
  local program, script_params, cause = M.script_of(body.script)
  if not program then return script_params, cause end
  local retries = tonumber(o.retry_on_conflict) or 0
  local status, res
  for _ = 0, retries do
    status, res = attempt(writes, idx, sh, id, body, o, program, script_params)
    if status ~= 409 or o.if_seq_no ~= nil then break end
  end
  return status, res
end

return M
