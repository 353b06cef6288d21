-- Checkpoint files: a job's position and counts as JSON, replaced atomically
-- (written to PATH.tmp, flushed, renamed over PATH), so a kill -9 at any
-- moment leaves either the old or the new checkpoint, never half of one.
--
--   checkpoint.save(path, state) -> true | nil, err
--   checkpoint.load(path)        -> state | nil (no file) | nil, err (unreadable)
--   checkpoint.remove(path)
--   checkpoint.file_store(path) -> { load = fn() -> state | nil [, err], save = fn(state) -> true | nil, err,
--                                    name = path }: what a pipeline's checkpoint_store option takes
--                                    (a worker's store sends its state to the parent instead)
--
-- Acknowledged positions of a sliced scan whose documents go through a bulk
-- indexer (nothing drained, nothing waited for):
--   local acks = checkpoint.acks(positions)   -- positions: as saved before, or {}
--   local token = acks:page(slice, { search_after =, done = })  -- a page handed over
--   acks:add(token)      -- one document of it given to the indexer (meta.token = token)
--   acks:sealed(token)   -- every document of the page given (or dropped)
--   acks:settled(tokens) -- the indexer's on_batch tokens: those documents are done
--   acks:positions()     -- per slice, the last page all of whose documents
--                        -- are done, and all pages before it: a resume from
--                        -- there repeats nothing that is not re-sent safely
local errors = require "espipe.client.errors"

local M = {}

local function json() return require "espipe.json" end

function M.save(path, state)
  local body = json().encode(state)
  local tmp = path .. ".tmp"
  local f, err = require("espipe.pipeline.private_file").open(tmp, "wb")
  if not f then return nil, errors.new { kind = "checkpoint", message = "cannot write " .. tmp .. ": " .. err } end
  local ok, werr = f:write(body, "\n")
  if ok then ok, werr = f:flush() end
  f:close()
  if not ok then
    os.remove(tmp)
    return nil, errors.new { kind = "checkpoint", message = "cannot write " .. tmp .. ": " .. tostring(werr) }
  end
  local rok, rerr = os.rename(tmp, path)
  if not rok then
    os.remove(tmp)
    return nil, errors.new { kind = "checkpoint", message = "cannot rename " .. tmp .. ": " .. tostring(rerr) }
  end
  return true
end

function M.load(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local body = f:read("*a")
  f:close()
  local ok, state, derr = pcall(json().decode, body)
  if not ok or type(state) ~= "table" then
    return nil, errors.new { kind = "checkpoint",
      message = "checkpoint " .. path .. " is not valid JSON: " .. tostring(derr or state) }
  end
  return state
end

function M.file_store(path)
  return { name = path, load = function() return M.load(path) end, save = function(state) return M.save(path, state) end }
end

local Acks = {}
Acks.__index = Acks

function M.acks(positions)
  local saved = {}
  for k, v in pairs(positions or {}) do saved[k] = v end
  return setmetatable({ saved = saved, queues = {} }, Acks)
end

function Acks:page(slice, position)
  local q = self.queues[slice]
  if not q then
    q = { first = 1, last = 0 }
    self.queues[slice] = q
  end
  local token = { slice = slice, position = position, left = 0, sealed = false }
  q.last = q.last + 1
  q[q.last] = token
  return token
end

function Acks.add(_, token) token.left = token.left + 1 end

-- The slice's position moves over every leading page that is done.
function Acks:_advance(slice)
  local q = self.queues[slice]
  while q.first <= q.last do
    local t = q[q.first]
    if not (t.sealed and t.left == 0) then break end
    self.saved[tostring(slice)] = t.position
    q[q.first] = nil
    q.first = q.first + 1
  end
end

function Acks:sealed(token)
  token.sealed = true
  if token.left == 0 then self:_advance(token.slice) end
end

function Acks:settled(tokens)
  for i = 1, #tokens do
    local t = tokens[i]
    t.left = t.left - 1
    if t.left == 0 and t.sealed then self:_advance(t.slice) end
  end
end

function Acks:positions() return self.saved end

function M.remove(path)
  os.remove(path)
  os.remove(path .. ".tmp")
end

return M
