-- espipe load: NDJSON, bulk-format or CSV files (or stdin) into an index.
local args = require "espipe.cli.args"
local common = require "espipe.pipeline.cli_common"

local usage = [[
usage: espipe load FILE|- --index NAME [options]

  --format F         ndjson (default) | bulk (_bulk action+source lines) | csv (header row)
                     | deadletter (replay the dead letter of an earlier job)
  --index NAME       destination index
  --index-pattern P  index per document from a date field, e.g. 'logs-{@timestamp:%Y.%m}'
  --id-field F       take each document's _id from field F
  --op OP            index (default) | create
  --on-bad-line M    stop (default: flush what was accepted, exit 1) | skip (dead-letter it)
  --strict           decode every NDJSON line (default: a cheap object check; ES rejects the rest)
  --csv-types        CSV cells that are JSON numbers/booleans become numbers/booleans
  --batch-bytes N    bytes per bulk request (default 5 MB)   --batch-docs N (default 1000)
  --concurrency N    bulk requests in flight (default 4)      --retries N (default 5)
  --dead-letter PATH where failed documents go (default espipe-deadletter.ndjson)
  --url URL          cluster (default $ES_URL or http://127.0.0.1:9200)
  --quiet            no progress or summary    --json   summary as JSON on stdout
Input may be gzip or zstd compressed (detected from its first bytes).]]

local spec = {
  index = "string", format = "string", index_pattern = "string", id_field = "string", op = "string",
  on_bad_line = "string", strict = "boolean", csv_types = "boolean", batch_bytes = "number",
  batch_docs = "number", concurrency = "number", retries = "number", dead_letter = "string",
  url = "string", quiet = "boolean", json = "boolean",
}
common.with_tls(spec)
usage = usage .. "\n" .. common.tls_usage

local function run(argv)
  local opts, rest = args.parse(argv, spec)
  if not opts then return common.usage_error("load", rest, usage) end
  if #rest ~= 1 then return common.usage_error("load", "expected one input file (or -)", usage) end
  if not opts.index and not opts.index_pattern and opts.format ~= "bulk" and opts.format ~= "deadletter" then
    return common.usage_error("load", "--index or --index-pattern is required", usage)
  end
  if opts.on_bad_line and opts.on_bad_line ~= "stop" and opts.on_bad_line ~= "skip" then
    return common.usage_error("load", "--on-bad-line must be stop or skip", usage)
  end
  local dead = opts.dead_letter or "espipe-deadletter.ndjson"
  local p = common.progress("load", opts)
  local ok, summary, err, partial = pcall(require("espipe.pipeline.load").run, {
    client = common.client(opts.url or common.default_url(), opts), input = rest[1], index = opts.index,
    format = opts.format, index_pattern = opts.index_pattern, id_field = opts.id_field, op = opts.op,
    on_bad_line = opts.on_bad_line, strict = opts.strict, csv_types = opts.csv_types,
    batch_bytes = opts.batch_bytes, batch_docs = opts.batch_docs, concurrency = opts.concurrency,
    retries = opts.retries, dead_letter = dead, progress = p,
  })
  if not ok then return common.usage_error("load", tostring(summary), usage) end
  return common.finish("load", p, summary or partial, err, { dead, dead .. ".input" })
end

return { summary = "bulk-load NDJSON, bulk or CSV files into an index", usage = usage, run = run }
