-- espipe export: an index (or a query's hits) to NDJSON, CSV or Parquet files.
local args = require "espipe.cli.args"
local common = require "espipe.pipeline.cli_common"

local usage = [[
usage: espipe export SRC --to DIR|FILE|- [options]

  SRC                http://host:9200/index, or an index name with --url
  --to DIR|FILE      a directory gets part-00000.<fmt> ... (rotated) and manifest.json;
                     a file name (with an extension) or - gets one file
  --format F         ndjson (default; the documents' _source) | csv | parquet
  --fields a,b.c     only these fields (CSV columns in this order, after _id)
  --query JSON       a query, e.g. '{"term":{"level":"error"}}'
  --file-bytes N     rotate files at about N bytes (default 64 MB)
  --compress C       gzip | zstd (NDJSON and CSV files)
  --slices N         sliced scan (default 1)      --size N   hits per page (default 1000)
  --url URL          cluster (default $ES_URL or http://127.0.0.1:9200)
  --quiet / --json   as for load]]

local spec = {
  to = "string", format = "string", fields = "list", query = "string", file_bytes = "number",
  compress = "string", slices = "number", size = "number", url = "string", quiet = "boolean", json = "boolean",
}

local function run(argv)
  local opts, rest = args.parse(argv, spec)
  if not opts then return common.usage_error("export", rest, usage) end
  if #rest ~= 1 or not opts.to then return common.usage_error("export", "expected SRC and --to", usage) end
  local url, index = common.target(rest[1], opts.url)
  if not url then return common.usage_error("export", index, usage) end
  local query
  if opts.query then
    local qerr
    query, qerr = require("espipe.json").decode(opts.query)
    if type(query) ~= "table" then return common.usage_error("export", "--query is not a JSON object: " .. tostring(qerr), usage) end
  end
  local p = common.progress("export", opts)
  local ok, manifest, err = pcall(require("espipe.pipeline.export").run, {
    client = common.client(url), index = index, query = query, slices = opts.slices, size = opts.size,
    to = opts.to, format = opts.format, file_bytes = opts.file_bytes, fields = opts.fields,
    compress = opts.compress, source_url = url .. "/" .. index, progress = p,
  })
  if not ok then return common.usage_error("export", tostring(manifest), usage) end
  local summary = manifest and { rows = manifest.rows, bytes = manifest.bytes, files = #manifest.files } or {}
  return common.finish("export", p, summary, err)
end

return { summary = "export an index to NDJSON, CSV or Parquet files", usage = usage, run = run }
