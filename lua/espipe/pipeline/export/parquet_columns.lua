-- The Parquet columns of an export: an "_id" column, then the index
-- mapping's fields, or, when the mapping names none (dynamic: false), those
-- of the first documents; `fields` selects among them.
--
--   parquet_columns.layout(parquet, opts) -> espipe.parquet.tree (nested) | parquet.schema (flat)
--   parquet_columns.from_mapping(parquet, client, opts, policy) -> columns | false (none) | nil, err
--   parquet_columns.infer(parquet, pages, opts) -> columns | nil, err
local errors = require "espipe.client.errors"
local setup_mod = require "espipe.pipeline.setup"

local M = {}

local function config_error(msg)
  return nil, errors.new { kind = "config", message = msg }
end

-- Nested fields (espipe.parquet.tree: lists, structs, geo points, maps;
-- arrays seen in a sample of documents) or, with parquet_flatten, flat leaf
-- columns (espipe.parquet.schema).
function M.layout(parquet, opts)
  if opts.parquet_flatten then return parquet.schema end
  return require "espipe.parquet.tree"
end

-- The first documents of the export's query: where the nested layout sees arrays.
local function sample_docs(client, opts)
  local resp, err = client:search { index = opts.index,
    body = { size = math.min(opts.infer_docs or 1000, 1000), query = opts.query } }
  if not resp then return nil, err end
  local docs = {}
  for _, hit in ipairs(type(resp.hits) == "table" and resp.hits.hits or {}) do
    if type(hit._source) == "table" then docs[#docs + 1] = hit._source end
  end
  return docs
end

-- Columns of the hits' _source from the mapping response; false (and no
-- error) when the mapping names no fields at all, so the caller infers them.
function M.from_mapping(parquet, client, opts, policy)
  local mapping, err = setup_mod.new(client, policy):get(opts.index, "_mapping")
  if not mapping then return nil, err end
  local schema = M.layout(parquet, opts)
  local want = { prefix = "_source", meta = { "_id" },
    rename = not opts.parquet_flatten and opts.parquet_rename or nil }
  if #schema.from_mapping(mapping, want) == #want.meta then return false end
  if not opts.parquet_flatten then
    want.sample, err = sample_docs(client, opts)
    if not want.sample then return nil, err end
  end
  want.fields = opts.fields
  local columns = schema.from_mapping(mapping, want)
  if #columns == #want.meta then
    return config_error("none of the fields " .. table.concat(opts.fields, ",")
      .. " is in the mapping of " .. opts.index)
  end
  return columns
end

-- Columns of the documents of the pages held back.
function M.infer(parquet, pages, opts)
  local docs = {}
  for _, page in ipairs(pages) do
    for _, hit in ipairs(page.hits) do docs[#docs + 1] = hit._source end
  end
  local columns = M.layout(parquet, opts).infer(docs,
    { prefix = "_source", meta = { "_id" }, fields = opts.fields, sample = not opts.parquet_flatten and docs or #docs,
      rename = not opts.parquet_flatten and opts.parquet_rename or nil })
  if #columns == 1 then
    return config_error("no fields to export: the mapping of " .. opts.index .. " has none and the first "
      .. #docs .. " documents have none" .. (opts.fields and (" of " .. table.concat(opts.fields, ",")) or ""))
  end
  return columns
end

M.config_error = config_error

return M
