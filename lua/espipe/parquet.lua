-- espipe.parquet: write Elasticsearch documents to Parquet files.
--
--   local parquet = require "espipe.parquet"
--   local cols = parquet.schema.from_mapping(mapping, { fields = {...} })
--             -- or parquet.schema.infer(first_docs)
--   local w, err = parquet.open("out.parquet", cols, {
--     codec = "snappy",             -- none | snappy | zstd | gzip
--     level = nil,                  -- zstd/gzip level (default 3 / 6)
--     row_group_bytes = 64 MiB,     -- buffered data per row group: the memory bound
--     page_bytes = 1 MiB,           -- data page target size (before compression)
--     dictionary_bytes = 1 MiB,     -- per column chunk; past it the chunk goes PLAIN
--     dictionary_entries = 65535,
--     metadata = { key = "value" }, -- key/value metadata of the file
--   })
--   w:write_rows(docs)              -- an array of documents (row-major; the C side
--                                   -- walks each column's path), -> n | nil, err
--   w:write_page(body)              -- one search/scroll response body (a string or the
--                                   -- transport's response body): one row per hit,
--                                   -- columns read straight from the bytes, paths inside
--                                   -- each hit -> n, position | nil, err (err.offset:
--                                   -- the byte of a malformed body; nothing written)
--                                   -- position = { hits, pit_id, scroll_id, search_after }
--   local result = w:close()        -- { rows, bytes, row_groups, invalid, coerced,
--                                   --   peak_buffered_bytes, data_bytes, metadata_bytes } | nil, err
--
-- Values that do not fit their column (see README of spec/parquet or the
-- rules below) are written as null and counted per column in result.invalid;
-- values converted the way Elasticsearch coerces are counted in result.coerced:
--   int64      integers; floats truncated toward zero (ES `coerce`); numeric
--              strings ("42", "42.7" -> 42); out of range, NaN/inf, booleans,
--              other strings -> invalid
--   double     numbers; numeric strings; NaN and +-inf -> invalid (JSON has no
--              such values, so they never come from a document)
--   boolean    booleans; "true", "false", "" (false) as ES accepts; else invalid
--   timestamp  epoch milliseconds (numbers, floats floored) or strings in ES's
--              default format strict_date_optional_time||epoch_millis; other
--              formats -> invalid (ask ES for `fields` with format epoch_millis)
--   string     strings (invalid UTF-8 -> invalid); numbers and booleans -> their
--              text as ES indexes them (1 -> "1", 1.5 -> "1.5"); an array -> its
--              JSON text (counted as coerced); an object -> invalid
--   json       any value as JSON text (numbers as espipe.json writes them)
--   timestamp_ns  as timestamp, in nanoseconds (date_nanos: ISO fractions to 9 digits)
--   decimal    DECIMAL(20,0), for unsigned_long: integers 0 .. 2^64-1 exactly
--              (in write_page also past 2^53), numeric strings; else invalid
-- Nested fields (see espipe.parquet_writer): { name =, type = "struct",
--   fields = { field, ... } }, { type = "list", element = field },
--   { type = "geo_point" } (struct<lat, lon> from an object, "lat,lon",
--   [lon, lat], a geohash or POINT (lon lat)), { type = "map", value =
--   "string"|"json" }; a field's JSON key is its name unless key = is given.
--   A LIST column takes a single value as a one-element list, [] as an empty
--   list and null/absent as null.
-- Every scalar column: [] is null (ES: no value); [x] is x; longer arrays invalid.
-- write_page follows the same rules, with one difference: JSON text (json
-- columns, arrays in string columns) is the value's bytes as the server sent
-- them, not re-encoded, so it can differ from write_rows' text in spacing,
-- key order, escapes and number spelling (both are the same JSON value).
local errors = require "espipe.client.errors"
local schema = require "espipe.parquet.schema"
local writer = require "espipe.parquet_writer"

local M = { schema = schema }

local json = require "espipe.json"

-- A JSON object of string pairs with its keys in byte order: the same
-- metadata gives the same footer bytes.
local function sorted_object(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  for i, k in ipairs(keys) do keys[i] = json.encode(k) .. ":" .. json.encode(t[k]) end
  return "{" .. table.concat(keys, ",") .. "}"
end
M.sorted_object = sorted_object

local Writer = {}
Writer.__index = Writer

local function failure(self, msg, kind)
  return nil, errors.new { kind = kind or "io", message = "parquet " .. self.path .. ": " .. msg }
end

--- Write a batch of documents. -> number of rows | nil, err
function Writer:write_rows(rows, n)
  local r, msg, kind = self.w:write_rows(rows, n)
  if r == nil then return failure(self, msg, kind) end
  return r
end

--- Write the hits of one search response body. -> rows, position | nil, err
function Writer:write_page(body)
  if type(body) ~= "string" and type(body) ~= "userdata" then
    error("write_page: body must be a string or a response body, got " .. type(body), 2)
  end
  local n, pos, kind, offset = self.w:write_page(body)
  if n == nil then
    if kind == "parse" then
      return nil, errors.new { kind = "parse", offset = offset,
        message = "parquet " .. self.path .. ": search response: " .. pos }
    end
    return failure(self, pos, kind)
  end
  return n, pos
end

--- The position of a search response body (its hits count, pit_id,
-- scroll_id and the last hit's sort values) without decoding its hits.
-- -> position | nil, message, offset
M.page_position = writer.page_position

--- Finish the file. -> { rows, bytes, row_groups, invalid = {col=n}, coerced = {col=n},
--- peak_buffered_bytes } | nil, err
function Writer:close(metadata)
  local r, msg, kind = self.w:close(metadata)
  if r == nil then return failure(self, msg, kind) end
  return r
end

-- Bytes already in the file (row groups flushed so far): what rotation reads.
-- The current row group is not in it until it is flushed; buffered_bytes()
-- is that row group's data (uncompressed, bounded by row_group_bytes).
function Writer:bytes_written() return self.w:bytes_written() end
function Writer:buffered_bytes() return self.w:buffered_bytes() end
-- The buffered bytes of the row groups flushed so far: with bytes_written,
-- the compression ratio (close() reports the file's total as data_bytes).
function Writer:flushed_bytes() return self.w:flushed_bytes() end
-- The footer's row group entries so far (close() reports them as metadata_bytes).
function Writer:metadata_bytes() return self.w:metadata_bytes() end
function Writer:row_groups() return self.w:row_groups() end
-- The footer's size if the file were closed now, less the buffered row group's entry.
function Writer:footer_bytes() return self.w:footer_bytes() end

--- The bytes the buffered rows would add as a row group (pages and footer
-- entry), compressed for real but not written. -> n | nil, err
function Writer:measure()
  local n, msg, kind = self.w:measure()
  if not n then return failure(self, msg, kind) end
  return n
end

--- Write the buffered rows as a row group now (the file's size is then
-- exact so far). -> true | nil, err
function Writer:flush()
  local ok, msg, kind = self.w:flush()
  if not ok then return failure(self, msg, kind) end
  return true
end
function Writer:peak_buffered_bytes() return self.w:peak_buffered_bytes() end
function Writer:rows() return self.w:rows() end
function Writer:counts() return self.w:counts() end

--- Open a writer. columns: from espipe.parquet.schema (name, type, path, field).
-- The file's key/value metadata gets "espipe.columns": a JSON map from each
-- column name to the field path it came from.
function M.open(path, columns, opts)
  if type(path) ~= "string" then
    error("parquet.open: path must be a string, got " .. type(path), 2)
  end
  if type(columns) ~= "table" or #columns == 0 then
    error("parquet.open: columns must be a non-empty array", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error("parquet.open: options must be a table, got " .. type(opts), 2)
  end
  local copts, origin = {}, {}
  for k, v in pairs(opts or {}) do copts[k] = v end
  local meta = {}
  for k, v in pairs(copts.metadata or {}) do meta[k] = v end
  for i, col in ipairs(columns) do
    if type(col) ~= "table" or type(col.name) ~= "string" then
      error("parquet.open: columns[" .. i .. "] needs a name", 2)
    end
    origin[col.name] = col.field or col.name
  end
  meta["espipe.columns"] = sorted_object(origin)
  copts.metadata = meta
  local ok, w, msg, kind = pcall(writer.open, path, columns, copts)
  if not ok then error("parquet.open: " .. tostring(w), 2) end
  if not w then
    return nil, errors.new { kind = kind or "io", message = "parquet " .. path .. ": " .. msg }
  end
  return setmetatable({ w = w, path = path, columns = columns }, Writer)
end

return M
