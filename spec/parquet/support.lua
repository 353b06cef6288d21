-- Shared by the Parquet specs: temp files that are always removed, and
-- writing a list of documents in one call.
local parquet = require "espipe.parquet"

local M = {}

--- Run fn(path) with a fresh temporary path; the file is removed afterwards,
-- whether fn fails or not.
function M.with_file(fn)
  local path = os.tmpname()
  local ok, err = pcall(fn, path)
  os.remove(path)
  if not ok then error(err, 0) end
end

--- Write docs (in batches of batch) and close; returns the close result.
function M.write(path, columns, docs, opts, batch)
  local w = assert(parquet.open(path, columns, opts))
  batch = batch or 1000
  for i = 1, #docs, batch do
    local chunk = {}
    for j = i, math.min(i + batch - 1, #docs) do chunk[#chunk + 1] = docs[j] end
    assert(w:write_rows(chunk))
  end
  return assert(w:close())
end

M.codecs = { "none", "snappy", "zstd", "gzip" }

return M
