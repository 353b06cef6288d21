-- The Parquet sink of an export (the sink interface: espipe.pipeline.export).
-- When the columns come from the mapping, each page goes to the writer as
-- the bytes the server sent (client:scan raw_pages, write_page: columns read
-- hit._source.<path> in C, no Lua table per document; the position
-- write_page returns is handed back to the scan, so each page is parsed
-- once). Inferred columns need documents: pages are held, decoded, until
-- infer_docs documents show the columns, and then written as rows
-- (write_rows), as are all pages with partition_by. A resumed export keeps
-- the columns it inferred (in the checkpoint).
local json = require "espipe.json"
local columns_mod = require "espipe.pipeline.export.parquet_columns"
local parquet_parts = require "espipe.pipeline.export.parquet_parts"

local config_error = columns_mod.config_error

local M = {}
local Sink = {}
Sink.__index = Sink

-- Options that need a directory or a fresh start.
local function check_target(ctx)
  local opts = ctx.opts
  if not ctx.dir and opts.partition_by then
    return config_error("--partition-by writes partition directories; " .. opts.to .. " is one file")
  end
  if opts.partition_by and opts.checkpoint then
    return config_error("--partition-by cannot resume from a checkpoint yet")
  end
  if not ctx.dir and opts.file_bytes then
    return config_error("--file-bytes rotates part files in a directory; " .. opts.to .. " is one file")
  end
  return true
end

function M.new(ctx)
  local opts = ctx.opts
  local ok, parquet = pcall(require, "espipe.parquet")
  if not ok then return config_error("Parquet export needs espipe.parquet: " .. tostring(parquet)) end
  local tok, terr = check_target(ctx)
  if not tok then return nil, terr end
  local cols, err = columns_mod.from_mapping(parquet, ctx.client, opts, ctx.policy)
  if cols == nil then return nil, err end
  return setmetatable({ parquet = parquet, dir = ctx.dir, opts = opts,
    columns = cols or nil, -- false: the mapping has no fields; infer from documents
    held = {}, held_docs = 0, infer_docs = opts.infer_docs or 1000,
    -- pages stay bytes until the writer reads them
    scan = { raw_pages = cols and not opts.partition_by or nil } }, Sink)
end

function Sink:start(w, saved)
  local parts = parquet_parts.new(self.parquet, self.dir, w, self.opts)
  self.parts = parts
  if not saved then return end
  parts.index = saved.part_index or 0
  for _, f in ipairs(saved.files or {}) do
    parquet_parts.add_counts(parts.invalid, f.invalid)
    parquet_parts.add_counts(parts.coerced, f.coerced)
  end
  if saved.parquet_columns then
    self.columns, self.inferred, self.held = saved.parquet_columns, true, nil
  end
end

function Sink:write(hits)
  if #hits == 0 then return true end
  return self.parts.write(self.columns, hits)
end

-- The held pages, once their documents show the columns.
function Sink:release_held()
  if self.held_docs > 0 then
    local cols, err = columns_mod.infer(self.parquet, self.held, self.opts)
    if not cols then return nil, err end
    self.columns = cols
  end
  -- the held pages are all handed out, not all written yet: no checkpoint
  -- until they are (a file finished meanwhile is recorded with the next one)
  self.releasing, self.inferred = true, self.columns ~= nil
  for _, page in ipairs(self.held) do
    local ok, err = self:write(page.hits)
    if not ok then return nil, err end
  end
  self.held, self.releasing = nil, false
  return true
end

-- One raw page: read once, the writer's reading gives the scan its next position.
function Sink:raw_page(page, scan)
  local parts = self.parts
  if page.waiting and parts.is_open() then
    local pos, err = parts.write_page(self.columns, page.body)
    if not pos then return nil, err end
    local aok, aerr = scan:advance(page, pos)
    if not aok then return nil, aerr end
  else
    -- no file open: learn the hit count first, so an empty page opens none
    local aok, aerr = scan:advance(page)
    if not aok then return nil, aerr end
    if page.n > 0 then
      local pos, err = parts.write_page(self.columns, page.body)
      if not pos then return nil, err end
    end
  end
  local ok, err = parts.rotate_if_full()
  if not ok then return nil, err end
  return page.n
end

function Sink:page(page, scan)
  if page.body then return self:raw_page(page, scan) end
  local hits, ok, err = page.hits, true, nil
  if not self.columns then
    self.held[#self.held + 1] = page
    self.held_docs = self.held_docs + #hits
    if self.held_docs >= self.infer_docs then ok, err = self:release_held() end
  else
    ok, err = self:write(hits)
  end
  if not ok then return nil, err end
  return #hits
end

-- Every page taken into files: the held ones released, the file in progress finished.
function Sink:flush()
  if self.held then
    local ok, err = self:release_held()
    if not ok then return nil, err end
  end
  return self.parts.finish_file()
end

function Sink:busy() return self.releasing end

function Sink:checkpoint(state)
  state.part_index = self.parts.index
  state.parquet_columns = self.inferred and self.columns or nil
end

function Sink:manifest(extra)
  local parts, opts = self.parts, self.opts
  extra.compression = opts.parquet_codec or "snappy"
  extra.invalid, extra.coerced = parts.invalid, parts.coerced
  local cols, sql_type = {}, columns_mod.layout(self.parquet, opts).type_string
  for i, c in ipairs(self.columns or {}) do
    cols[i] = { name = c.name, field = c.field, type = c.type, es_type = c.es_type,
      sql_type = sql_type and sql_type(c) or nil }
  end
  extra.columns = json.array(cols)
  extra.renamed = json.array(require("espipe.parquet.names").renamed(self.columns))
  if parts.partitions then extra.partitions = json.array(parts.partitions) end
end

function Sink:abort() self.parts.abort() end

return M
