-- The NDJSON sink of an export (the sink interface: espipe.pipeline.export):
-- one line per document, its _source. Whole documents pass as the bytes
-- the server sent (raw_source, never decoded); with `fields`, decoded
-- documents are cut down to those fields (dotted paths reach into objects)
-- and re-encoded by the exact codec.
local json = require "espipe.json"

local M = {}
local Sink = {}
Sink.__index = Sink

function M.new(ctx)
  return setmetatable({ fields = ctx.opts.fields, scan = { raw_source = not ctx.opts.fields } }, Sink)
end

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

function Sink:start(w) self.w = w end

function Sink:page(page)
  local fields, buf = self.fields, {}
  for i, hit in ipairs(page.hits) do
    local src = hit._source
    if type(src) == "string" then
      buf[i] = src
    else
      buf[i] = json.encode(fields and pick(src, fields) or src)
    end
  end
  if #buf > 0 then
    local ok, err = self.w:write(table.concat(buf, "\n") .. "\n", #buf)
    if not ok then return nil, err end
  end
  return #buf
end

function Sink.flush() return true end
function Sink.busy() return false end
function Sink.checkpoint() end
function Sink.manifest() end
function Sink.abort() end

return M
