-- espipe reindex: copy an index into another (same or other cluster),
-- optionally through a Lua transform.
local args = require "espipe.cli.args"
local common = require "espipe.cli.common"
local interrupt = require "espipe.pipeline.interrupt"
local scale = require "espipe.cli.scale"

local usage = [[
usage: espipe reindex SRC DEST [options]
       espipe reindex --restore STATE_FILE

  SRC, DEST          http://host:9200/index, or index names with --source-url/--dest-url
                     (default $ES_URL or http://127.0.0.1:9200)
  --transform FILE   a Lua file returning function(doc, hit): return the document (changed
                     or not), nil to drop it, or reindex.many{...} to fan out (see
                     examples/enrich.lua); an error dead-letters that document and counts
                     against --max-errors; returning no value at all (a forgotten
                     `return doc`) stops the job
  --query JSON       only the hits of this query        --slices N   parallel slices
  --op OP            index (default) | create (409s of re-sent documents count as done)
  --presort          order each batch by destination shard (rotated per slice)
  --tune-dest        refresh_interval -1 and 0 replicas during the copy, restored after
                     (also after SIGTERM/Ctrl-C/kill -9, by a watchdog process)
  --swap-alias A     at the end, point alias A at DEST (one atomic _aliases request)
  --checkpoint FILE  save progress (acknowledged positions and the point in time, at most
                     once a second); rerunning the same command resumes on the same PIT,
                     or restarts the unfinished slices when it has expired
  --no-refresh       do not refresh the destination at the end (default: refresh once, so
                     what was copied is searchable when the command returns)
  --rate N           at most N documents per second
  --batch-docs N / --retries N / --size N (page size)
  --dead-letter PATH failed documents (default espipe-deadletter.ndjson)
]] .. common.job_usage .. "\n" .. common.index_setup_usage .. [[

  --restore FILE     put back the settings --tune-dest saved in FILE
  --quiet / --json   no progress / summary as JSON on stdout
Ctrl-C or SIGTERM stops the scan: what was taken is flushed, counted and checkpointed
(exit 130/143; rerun the same command to resume). A second one stops at once.]]

local spec = {
  source_url = "string", dest_url = "string", transform = "string", query = "string",
  slices = "number", op = "string", presort = "boolean", tune_dest = "boolean", swap_alias = "string",
  checkpoint = "string", rate = "number", batch_docs = "number", batch_bytes = "number",
  concurrency = "number", retries = "number", size = "number", dead_letter = "string",
  restore = "string", quiet = "boolean", json = "boolean", refresh = "boolean",
}
for k, v in pairs(common.job_flags) do spec[k] = v end
for k, v in pairs(scale.flags) do spec[k] = v end
for k, v in pairs(common.index_setup_flags) do spec[k] = v end
common.with_tls(spec)
usage = usage .. "\n" .. common.tls_usage .. "\n" .. scale.usage

local function load_transform(path)
  local chunk, err = loadfile(path)
  if not chunk then return nil, err end
  local ok, fn = pcall(chunk)
  if not ok then return nil, path .. ": " .. tostring(fn) end
  if type(fn) == "table" then fn = fn.transform end
  if type(fn) ~= "function" then return nil, path .. " must return a function(doc, hit)" end
  return fn
end

local function restore(path, opts)
  local tune = require "espipe.pipeline.tune"
  if tune.empty(path) then os.remove(path) return 0 end
  local state, err = require("espipe.pipeline.checkpoint").load(path)
  if err then io.stderr:write("espipe reindex: ", tostring(err), "\n") return 1 end
  if not state then return 0 end
  local ok, rerr = tune.restore(common.client(tune.restore_url(state), opts), path)
  if not ok then io.stderr:write("espipe reindex: restore failed: ", tostring(rerr), "\n") return 1 end
  return 0
end

-- A worker's end: its summary as a record for the parent, no summary block.
local function report(summary, err)
  require("espipe.pipeline.worker_job").report { type = "summary", summary = summary,
    error = err and tostring(err) or nil, kind = type(err) == "table" and err.kind or nil }
  return scale.exit_code(summary, err)
end

-- worker: the share of a parent's job (espipe.cli.worker), or nil
local function run(argv, worker)
  local opts, rest = args.parse(argv, spec)
  if not opts then return common.usage_error("reindex", rest, usage) end
  if opts.restore then return restore(opts.restore, opts) end
  if #rest ~= 2 then return common.usage_error("reindex", "expected SRC and DEST", usage) end
  local surl, sindex = common.target(rest[1], opts.source_url)
  local durl, dindex = common.target(rest[2], opts.dest_url or opts.source_url)
  if not surl then return common.usage_error("reindex", sindex, usage) end
  if not durl then return common.usage_error("reindex", dindex, usage) end
  local transform
  if opts.transform then
    local terr
    transform, terr = load_transform(opts.transform)
    if not transform then return common.run_error("reindex", "transform " .. tostring(terr)) end
  end
  local query
  if opts.query then
    local qerr
    query, qerr = require("espipe.json").decode(opts.query)
    if type(query) ~= "table" then return common.usage_error("reindex", "--query is not a JSON object: " .. tostring(qerr), usage) end
  end
  local job, jerr = common.job_options(opts)
  if not job then return common.usage_error("reindex", jerr, usage) end
  local plan, perr = scale.plan(opts, worker)
  if not plan then return common.usage_error("reindex", perr, usage) end
  if not worker then -- the parent set the destination up
    local set, serr = common.index_setup(durl, opts, dindex)
    if not set then return common.run_error("reindex", serr) end
  end
  local sclient = common.client(surl, opts)
  local dclient = durl == surl and sclient or common.client(durl, opts)
  local dead = scale.path(opts.dead_letter or "espipe-deadletter.ndjson", plan, worker)
  local ck = scale.path(opts.checkpoint, plan)
  local p = worker and require("espipe.pipeline.worker_job").progress() or common.progress("reindex", opts)
  local resume = require "espipe.cli.resume"
  local prior = not worker and resume.before(ck) or nil
  local on_tuned
  if opts.tune_dest and not worker then
    on_tuned = function(state_path)
      local tune = require "espipe.pipeline.tune"
      local interp = arg and arg[-1] or "lua"
      local script = arg and arg[0] or "espipe"
      tune.watch(tune.pid(), state_path, interp, script, durl, common.tls_args(opts))
      if not opts.quiet then io.stderr:write("espipe reindex: destination tuned; settings saved in ", state_path, "\n") end
    end
  end
  local ok, summary, err, partial = pcall(require("espipe.pipeline.reindex").run, {
    source = { client = sclient, index = sindex, query = query, slices = plan.slices, size = opts.size,
               own_slices = plan.own_slices, refresh = not worker },
    dest = { client = dclient, index = dindex, op = opts.op, url = durl, refresh = opts.refresh },
    transform = transform, presort = opts.presort, tune_dest = opts.tune_dest and not worker, on_tuned = on_tuned,
    swap_alias = not worker and opts.swap_alias or nil, checkpoint = ck, rate = scale.share(opts.rate, worker), progress = p,
    workers = plan.pool and scale.workers("reindex", argv, plan) or nil,
    checkpoint_store = worker and ck and scale.worker_store(worker, ck) or nil,
    dead_letter = dead, batch_docs = opts.batch_docs, batch_bytes = job.batch_bytes,
    concurrency = job.concurrency, retries = opts.retries,
    max_concurrency = job.max_concurrency, max_batch_bytes = job.max_batch_bytes,
    retry_for = job.retry_for, max_errors = scale.share(job.max_errors, worker, true), stall_timeout = job.stall_timeout,
    trap_signals = true,
  })
  if not ok then return common.run_error("reindex", summary, true) end
  -- nothing ran (the input cannot be opened, a bad setting, ...): one line, exit 2
  if not summary and not partial then
    if worker then return report({}, err) end
    return common.run_error("reindex", err)
  end
  if worker then return report(summary or partial, err) end
  local this, whole = resume.after(ck, prior, summary or partial or {})
  if whole then this.job = whole end -- --json: the whole job's counts beside this run's
  local code = common.finish("reindex", p, this, err, { dead, dead .. ".transform" }, {
    indices = { [dindex] = this.sent }, job = whole, replay = common.replay_command(durl) })
  local s = this
  return interrupt.exit_code(s.interrupted) or code
end

return { summary = "copy an index, optionally through a Lua transform", usage = usage, flags = spec, run = run }
