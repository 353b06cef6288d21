-- espipe job status es:INDEX/JOB: where each part of a job split with
-- --part I/N stands, read from its checkpoint documents in Elasticsearch.
local args = require "espipe.cli.args"
local common = require "espipe.cli.common"

local usage = [[
usage: espipe job status es:INDEX/JOB [options]

  es:INDEX/JOB       the checkpoint the job's parts were given (documents in INDEX)
  --url URL          cluster holding INDEX (default $ES_URL or http://127.0.0.1:9200)
  --json             the part documents as JSON on stdout
  --timeout S        seconds per request (default 60)]]

local spec = common.with_tls { url = "string", json = "boolean", timeout = "number" }
usage = usage .. "\n" .. common.tls_usage

local function state_of(doc)
  if not doc then return "not started" end
  return doc.done and "done" or "running"
end

local function ago(t)
  if type(t) ~= "number" then return "" end
  return "updated " .. require("espipe.pipeline.progress").human_duration(math.max(0, os.time() - t)) .. " ago"
end

local function line(i, n, doc)
  local counts = doc and doc.counts or {}
  local slices = {}
  for k, s in ipairs(doc and doc.slices or {}) do slices[k] = tostring(s) end
  return string.format("  part %d/%d  %-11s %10s docs  slices %-10s %s\n", i, n, state_of(doc),
    tostring(doc and doc.live or counts.sent or 0), #slices > 0 and table.concat(slices, ",") or "-", ago(doc and doc.updated))
end

local function run(argv)
  local opts, rest = args.parse(argv, spec)
  if not opts then return common.usage_error("job", rest, usage) end
  if rest[1] ~= "status" or #rest ~= 2 then return common.usage_error("job", "expected: status es:INDEX/JOB", usage) end
  local es = require "espipe.pipeline.es_checkpoint"
  local index, job = es.parse(rest[2])
  if not index then return common.usage_error("job", job or ("not an es:INDEX/JOB checkpoint: " .. rest[2]), usage) end
  local url = opts.url or common.default_url()
  local policy = require("espipe.client.retry").new { retry_for = 30 }
  local st, err = es.status(common.client(url, opts), policy, index, job)
  if not st then return common.run_error("job", err) end
  if opts.json then
    local parts = {}
    for i = 1, st.parts do parts[i] = st[i] or require("espipe.json").null end
    io.stdout:write(require("espipe.json").encode { job = job, index = index, parts = parts }, "\n")
    return 0
  end
  local done = 0
  for i = 1, st.parts do if st[i] and st[i].done then done = done + 1 end end
  io.stdout:write("job ", job, " in ", index, ": ", done, " of ", st.parts, " parts done\n")
  for i = 1, st.parts do io.stdout:write(line(i, st.parts, st[i])) end
  return 0
end

return { summary = "where the parts of a job split with --part stand (es: checkpoints)", usage = usage,
  flags = spec, run = run }
