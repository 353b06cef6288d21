-- Export: scan an index (sliced PIT) into NDJSON, CSV or Parquet files,
-- rotated by size, each renamed into place when complete, plus manifest.json.
--
--   export.run{ client =, index =, query =, slices =, size =, to = DIR | FILE | "-",
--               format = "ndjson"|"csv"|"parquet", file_bytes =, fields = {..},
--               compress = nil|"gzip"|"zstd", source_url =, progress = p }
--     -> manifest | nil, err
--
-- NDJSON rows are the documents' _source (re-encoded by the exact codec:
-- integers, [] and null survive; key order is kept by the dev server's
-- decoder only as far as espipe.json keeps it). CSV: an "_id" column, then
-- `fields` or, when not given, the dotted columns of the first page's
-- documents (objects flattened, arrays as JSON text); values of columns not
-- in the header are counted in manifest.dropped_columns. Parquet needs
-- espipe.parquet; the schema comes from the index mapping, and file_bytes
-- counts the JSON bytes of the rows written into a file (the files are
-- smaller: columnar and compressed).
local json = require "espipe.json"
local csv = require "espipe.pipeline.csv"
local writer_mod = require "espipe.pipeline.writer"
local errors = require "espipe.errors"
local pit_pages = require "espipe.pipeline.pit_pages"

local M = {}

local function pick(doc, fields)
  local out = {}
  for _, f in ipairs(fields) do
    local v = doc[f]
    if v == nil then
      v = doc
      for part in f:gmatch("[^%.]+") do
        if type(v) ~= "table" then v = nil break end
        v = v[part]
      end
    end
    if v ~= nil then out[f] = v end
  end
  return out
end

local function is_dir_target(to, opts)
  if to == "-" then return false end
  if to:sub(-1) == "/" or opts.file_bytes or opts.format == "parquet" then return true end
  local f = io.open(to .. "/.")
  if f then f:close() return true end
  return not to:find("%.[%w]+$") -- "out" is a directory, "out.ndjson" a file
end

function M.run(opts)
  if type(opts) ~= "table" or not opts.client or not opts.index or not opts.to then
    error("export.run: client, index and to are required", 2)
  end
  local format = opts.format or "ndjson"
  if format ~= "ndjson" and format ~= "csv" and format ~= "parquet" then
    error("export.run: format must be ndjson, csv or parquet, got " .. tostring(format), 2)
  end
  local client, fields = opts.client, opts.fields
  local dir = is_dir_target(opts.to, opts) and opts.to:gsub("/$", "") or nil

  local total
  local cresp = client:count { index = opts.index, body = opts.query and { query = opts.query } or nil }
  if cresp then total = tonumber(cresp.count) end
  if opts.progress then opts.progress.total = total end

  local parquet, schema
  if format == "parquet" then
    local ok, mod = pcall(require, "espipe.parquet")
    if not ok then return nil, errors.new { kind = "config", message = "Parquet export needs espipe.parquet: " .. tostring(mod) } end
    parquet = mod
    local mapping, merr = client.indices:get_mapping { index = opts.index }
    if not mapping then return nil, merr end
    local entry = mapping[opts.index] or select(2, next(mapping))
    schema = parquet.schema.from_mapping(entry and entry.mappings or {}, { fields = fields })
  end

  local scan = pit_pages.new(client, opts.index, opts.query,
    { slices = opts.slices or 1, size = opts.size or 1000, keep_alive = opts.keep_alive or "5m" })

  local columns, dropped = nil, {}
  local w = writer_mod.new { dir = dir, file = not dir and opts.to or nil, format = format,
    ext = format, file_bytes = opts.file_bytes, compress = opts.compress,
    header = format == "csv" and function()
      local cols = { "_id" }
      for _, c in ipairs(columns or fields or {}) do cols[#cols + 1] = c end
      return csv.encode_row(cols)
    end or nil }
  local file_bytes = opts.file_bytes or 64 * 1024 * 1024
  local pq, pq_name, pq_tmp, pq_index, pq_in = nil, nil, nil, 0, 0

  local function pq_close()
    if not pq then return true end
    local info, err = pq:close()
    pq = nil
    if not info then os.remove(pq_tmp) return nil, err end
    local rok, rerr = os.rename(pq_tmp, dir .. "/" .. pq_name)
    if not rok then return nil, errors.new { kind = "output", message = tostring(rerr) } end
    w:add_file(pq_name, info.rows, info.bytes)
    return true
  end

  local done, failure, row_bytes = 0, nil, nil
  local function each_page(page)
    local hits = page.hits
    if format == "ndjson" then
      local buf = {}
      for i, hit in ipairs(hits) do
        local src = hit._source
        buf[i] = json.encode(fields and pick(src, fields) or src)
      end
      if #buf > 0 then
        local ok, err = w:write(table.concat(buf, "\n") .. "\n", #buf)
        if not ok then failure = err return false end
      end
    elseif format == "csv" then
      if not columns and #hits > 0 then
        if fields then
          columns = fields
        else
          local seen = {}
          columns = {}
          for _, hit in ipairs(hits) do
            for k in pairs(csv.flatten(hit._source, json)) do
              if not seen[k] then seen[k] = true; columns[#columns + 1] = k end
            end
          end
          table.sort(columns)
        end
      end
      local buf = {}
      for i, hit in ipairs(hits) do
        local flat = csv.flatten(hit._source, json)
        local row = { tostring(hit._id) }
        for c, name in ipairs(columns) do row[c + 1] = flat[name]; flat[name] = nil end
        for k in pairs(flat) do dropped[k] = (dropped[k] or 0) + 1 end
        buf[i] = csv.encode_row(row, #columns + 1)
      end
      if #buf > 0 then
        local ok, err = w:write(table.concat(buf), #buf)
        if not ok then failure = err return false end
      end
    else -- parquet
      if #hits > 0 then
        if not pq then
          pq_name = string.format("part-%05d.parquet", pq_index)
          pq_tmp = dir .. "/." .. pq_name .. ".inprogress"
          pq_index = pq_index + 1
          local perr2
          pq, perr2 = parquet.open(pq_tmp, schema, { codec = opts.parquet_codec or "snappy" })
          if not pq then failure = perr2 return false end
          pq_in = 0
        end
        local rows = {}
        for i, hit in ipairs(hits) do rows[i] = fields and pick(hit._source, fields) or hit._source end
        -- the JSON size of the first page's rows estimates every row's
        row_bytes = row_bytes or math.max(1, #json.encode(rows) / #rows)
        pq_in = pq_in + row_bytes * #rows
        local ok, err = pq:write_rows(rows)
        if not ok then failure = err return false end
        -- --file-bytes counts the JSON bytes of the rows that went into a file
        if pq_in >= file_bytes then
          local cok, cerr = pq_close()
          if not cok then failure = cerr return false end
        end
      end
    end
    done = done + #hits
    if opts.progress then opts.progress:update { done = done } end
    return true
  end
  local pok, perr = pcall(function()
    for page in scan:pages() do
      if not each_page(page) then break end
    end
  end)
  if not pok then failure = failure or perr end
  scan:close()

  if failure then
    w:abort()
    if pq then pq:close(); os.remove(pq_tmp) end
    return nil, failure
  end
  local ok, err = pq_close()
  if not ok then w:abort() return nil, err end
  local extra = { source = opts.source_url or opts.index, index = opts.index,
    query = opts.query or json.null, total = done }
  if columns then extra.columns = columns end
  if next(dropped) then extra.dropped_columns = dropped end
  return w:close(extra)
end

return M
