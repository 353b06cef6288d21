-- The CSV sink of an export (the sink interface: espipe.pipeline.export):
-- an "_id" column, then `fields` or, when not given, the sorted dotted
-- columns of the first page's documents (objects flattened, arrays as JSON
-- text); a resumed export keeps the earlier run's columns. Values of columns
-- not in the header are counted (manifest.dropped_columns).
local json = require "espipe.json"
local csv = require "espipe.pipeline.csv"

local M = {}
local Sink = {}
Sink.__index = Sink

function M.new(ctx)
  return setmetatable({ fields = ctx.opts.fields, dropped = {}, scan = {} }, Sink)
end

function Sink:start(w, saved)
  self.w = w
  self.columns = saved and saved.columns or nil
end

-- The writer's first line of each file.
function Sink:header()
  local cols = { "_id" }
  for _, c in ipairs(self.columns or self.fields or {}) do cols[#cols + 1] = c end
  return csv.encode_row(cols)
end

local function columns_of(hits)
  local seen, columns = {}, {}
  for _, hit in ipairs(hits) do
    for k in pairs(csv.flatten(hit._source, json)) do
      if not seen[k] then seen[k] = true; columns[#columns + 1] = k end
    end
  end
  table.sort(columns)
  return columns
end

function Sink:page(page)
  local hits = page.hits
  if not self.columns and #hits > 0 then self.columns = self.fields or columns_of(hits) end
  local columns, dropped, buf = self.columns, self.dropped, {}
  for i, hit in ipairs(hits) do
    local flat = csv.flatten(hit._source, json)
    local row = { tostring(hit._id) }
    for c, name in ipairs(columns) do row[c + 1] = flat[name]; flat[name] = nil end
    for k in pairs(flat) do dropped[k] = (dropped[k] or 0) + 1 end
    buf[i] = csv.encode_row(row, #columns + 1)
  end
  if #buf > 0 then
    local ok, err = self.w:write(table.concat(buf), #buf)
    if not ok then return nil, err end
  end
  return #hits
end

function Sink:checkpoint(state) state.columns = self.columns end

function Sink:manifest(extra)
  if self.columns then extra.columns = self.columns end
  if next(self.dropped) then extra.dropped_columns = self.dropped end
end

function Sink.flush() return true end
function Sink.busy() return false end
function Sink.abort() end

return M
