-- The Parquet part files of an export: rotated by compressed size (or one
-- file), optionally split into Hive-style partition directories.
--
--   local parts = parquet_parts.new(parquet, dir, w, opts)
--     dir: the output directory, or nil for the one file opts.to
--     w:   the export's writer (espipe.pipeline.writer), told of each finished file
--     opts: export.run's options (file_bytes, row_group_bytes, parquet_codec,
--           partition_by = "dt={@timestamp:%Y-%m-%d}", max_open_partitions = 16)
--   parts.write(columns, hits) / parts.write_page(columns, body) -> true | position | nil, err
--   parts.rotate_if_full(), parts.finish_file(), parts.abort(), parts.is_open()
--   parts.invalid, parts.coerced: per-column counts; parts.partitions (partitioned)
--   parquet_parts.add_counts(into, counts): sums per-column counts
local errors = require "espipe.client.errors"
local index_pattern = require "espipe.pipeline.index_pattern"
local names = require "espipe.parquet.names"

local M = {}

local DEFAULT_FILE_BYTES = 64 * 1024 * 1024

local function add_counts(into, counts)
  for col, n in pairs(counts or {}) do into[col] = (into[col] or 0) + n end
end
M.add_counts = add_counts

-- { field = column } of the fields whose column name differs.
local function renamed_map(columns)
  local m = {}
  for _, r in ipairs(names.renamed(columns)) do m[r.field] = r.column end
  return m
end

local DEFAULT_ROW_GROUP_BYTES = 128 * 1024 * 1024
local ROW_GROUPS_PER_FILE = 4
local MIN_ROW_GROUP_BYTES = 1024 * 1024
-- how full (by estimate) a file is when its buffered row group is measured
local MEASURE_AT = { 0.85, 0.97 }

-- Parquet part files in dir (or the one file opts.to when dir is nil, never
-- rotated), registered with the export writer w when complete. A file is
-- finished when its bytes, plus the buffered row group scaled by the
-- compression ratio seen so far, plus its footer reach file_bytes: finished
-- files come out at file_bytes, compressed. A row group holds at most what
-- compresses to a quarter file (row_group_bytes, uncompressed, is the memory bound).
local function parts_in(parquet, dir, w, opts, prefix)
  local file_bytes = opts.file_bytes or DEFAULT_FILE_BYTES
  local row_group_bytes = opts.row_group_bytes or DEFAULT_ROW_GROUP_BYTES
  local popts = { codec = opts.parquet_codec or "snappy" }
  local parts = { index = 0, invalid = {}, coerced = {}, rows = 0 }
  -- in the files finished so far: buffered bytes flushed, the file bytes they
  -- became, footer bytes of row group entries, row groups
  local flushed_in, flushed_out, meta_out, groups = 0, 0, 0, 0
  local cur

  -- compressed file bytes per buffered byte, from every row group flushed so far
  local function ratio()
    local data = flushed_in + (cur and cur.w:flushed_bytes() or 0)
    if data == 0 then return 1 end
    return (flushed_out + (cur and cur.w:bytes_written() or 0)) / data
  end

  -- the footer once the buffered row group is flushed too: its entry like the average one
  local function footer_estimate()
    local n = groups + cur.w:row_groups()
    local per_group = n > 0 and (meta_out + cur.w:metadata_bytes()) / n or 0
    return cur.w:footer_bytes() + (cur.w:buffered_bytes() > 0 and per_group or 0)
  end

  function parts.finish_file()
    if not cur then return true end
    local c = cur
    cur = nil
    local info, err = c.w:close()
    if not info then os.remove(c.tmp) return nil, err end
    flushed_in, flushed_out = flushed_in + info.data_bytes, flushed_out + info.bytes - info.metadata_bytes
    meta_out, groups = meta_out + info.metadata_bytes, groups + info.row_groups
    local final = dir and (dir .. "/" .. c.name) or opts.to
    local ok, rerr = os.rename(c.tmp, final)
    if not ok then
      os.remove(c.tmp)
      return nil, errors.new { kind = "output", message = "renaming " .. c.tmp .. ": " .. tostring(rerr) }
    end
    add_counts(parts.invalid, info.invalid)
    add_counts(parts.coerced, info.coerced)
    parts.rows = parts.rows + info.rows
    w:add_file((prefix or "") .. c.name, info.rows, info.bytes, { invalid = info.invalid, coerced = info.coerced,
      row_groups = info.row_groups })
    return true
  end

  local function open_file(columns)
    if not cur then
      local name = dir and string.format("part-%05d.parquet", parts.index) or opts.to:match("[^/]*$")
      local tmp = dir and (dir .. "/." .. name .. ".inprogress") or (opts.to .. ".inprogress")
      popts.metadata = { ["espipe.renamed"] = parquet.sorted_object(renamed_map(columns)) }
      -- row groups of a quarter file: the one still buffered is a small part of the
      -- estimate, and the ratio is learned from row groups of its own size
      popts.row_group_bytes = math.max(1, math.floor(math.min(row_group_bytes,
        dir and math.max(MIN_ROW_GROUP_BYTES, file_bytes / ratio() / ROW_GROUPS_PER_FILE) or math.huge)))
      local pw, err = parquet.open(tmp, columns, popts)
      if not pw then return nil, err end
      parts.index = parts.index + 1
      cur = { name = name, tmp = tmp, w = pw }
    end
    return true
  end

  function parts.is_open() return cur ~= nil end

  function parts.rotate_if_full()
    if not (cur and dir) then return true end
    local buffered = cur.w:buffered_bytes()
    if cur.measured and buffered < cur.measured.at then cur.measured = nil end -- a row group was flushed
    local pending = buffered * (cur.measured and cur.measured.ratio or ratio())
    local estimate = cur.w:bytes_written() + pending + footer_estimate()
    local step = cur.measured and cur.measured.step or 0
    if buffered > 0 and step < #MEASURE_AT and estimate >= MEASURE_AT[step + 1] * file_bytes then
      -- close to the end: the buffered row group's real compressed size
      local n, err = cur.w:measure()
      if not n then return nil, err end
      cur.measured = { at = buffered, ratio = n / buffered, step = step + 1 }
      estimate = cur.w:bytes_written() + n + cur.w:footer_bytes()
    end
    if estimate >= file_bytes then return parts.finish_file() end
    return true
  end

  function parts.write(columns, hits)
    local ok, err = open_file(columns)
    if not ok then return nil, err end
    ok, err = cur.w:write_rows(hits)
    if not ok then return nil, err end
    return parts.rotate_if_full()
  end

  -- one raw search response body, its rows straight from the bytes; returns
  -- the page's position (write_page reads it anyway); no rotation here, so
  -- the scan can be given the position before a file is closed
  function parts.write_page(columns, body)
    local ok, err = open_file(columns)
    if not ok then return nil, err end
    local n, pos, kind, offset = cur.w:write_page(body)
    if not n then
      if kind == "parse" then
        return nil, errors.new { kind = "http", status = 200, type = "bad_response", offset = offset,
          reason = "search response is not a page of hits: " .. tostring(pos) }
      end
      return nil, errors.new { kind = "output", message = "writing " .. cur.tmp .. ": " .. tostring(pos) }
    end
    return pos
  end

  function parts.abort()
    if cur then
      cur.w:close()
      os.remove(cur.tmp)
      cur = nil
    end
  end

  return parts
end


-- Rows without a partition value go where Hive puts them.
local DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"
local DEFAULT_MAX_OPEN = 16
-- what all open partitions' row groups may buffer together (uncompressed)
local PARTITION_BUFFER_BYTES = 256 * 1024 * 1024

-- Part files per partition directory (dir/dt=2024-01-15/part-00000.parquet).
-- At most max_open partitions have a file open: one more finishes the file
-- of the least recently used, so memory stays bounded whatever the data.
local function partitioned(parquet, dir, w, opts)
  local name_of = index_pattern.compile(opts.partition_by)
  local key = opts.partition_by:match("^([^=/]+)=") or "partition"
  local max_open = opts.max_open_partitions or DEFAULT_MAX_OPEN
  local popts = setmetatable({ row_group_bytes = opts.row_group_bytes
    or math.floor(PARTITION_BUFFER_BYTES / max_open) }, { __index = opts })
  local split = { invalid = {}, coerced = {}, partitions = {} }
  local by_name, open, clock = {}, {}, 0

  local function partition(name)
    local p = by_name[name]
    if not p then
      local sub = dir .. "/" .. name
      os.execute("mkdir -p '" .. sub:gsub("'", "'\\''") .. "'")
      p = { name = name, parts = parts_in(parquet, sub, w, popts, name .. "/") }
      by_name[name] = p
    end
    return p
  end

  local function touch(p)
    clock = clock + 1
    p.used = clock
    if open[p.name] then return true end
    local count, oldest = 0, nil
    for _, q in pairs(open) do
      count = count + 1
      if not oldest or q.used < oldest.used then oldest = q end
    end
    if count >= max_open then
      local ok, err = oldest.parts.finish_file()
      if not ok then return nil, err end
      open[oldest.name] = nil
    end
    open[p.name] = p
    return true
  end

  function split.write(columns, hits)
    local groups, order = {}, {}
    for _, hit in ipairs(hits) do
      local name = name_of(type(hit._source) == "table" and hit._source or {}) or (key .. "=" .. DEFAULT_PARTITION)
      if not groups[name] then
        groups[name] = {}
        order[#order + 1] = name
      end
      local g = groups[name]
      g[#g + 1] = hit
    end
    for _, name in ipairs(order) do
      local p = partition(name)
      local ok, err = touch(p)
      if not ok then return nil, err end
      ok, err = p.parts.write(columns, groups[name])
      if not ok then return nil, err end
    end
    return true
  end

  function split.rotate_if_full() return true end -- each partition rotates as it is written
  function split.is_open() return next(open) ~= nil end

  function split.finish_file()
    local order = {}
    for name in pairs(by_name) do order[#order + 1] = name end
    table.sort(order)
    for _, name in ipairs(order) do
      local p = by_name[name]
      local ok, err = p.parts.finish_file()
      if not ok then return nil, err end
      add_counts(split.invalid, p.parts.invalid)
      add_counts(split.coerced, p.parts.coerced)
      split.partitions[#split.partitions + 1] = { name = name, rows = p.parts.rows, files = p.parts.index }
    end
    open = {}
    return true
  end

  function split.abort()
    for _, p in pairs(by_name) do p.parts.abort() end
  end

  return split
end

--- The part files for export.run's options (see the top of this file).
function M.new(parquet, dir, w, opts)
  if opts.partition_by then return partitioned(parquet, dir, w, opts) end
  return parts_in(parquet, dir, w, opts)
end

return M
