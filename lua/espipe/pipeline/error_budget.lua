-- How many failed documents a job tolerates before it stops: a mapping that
-- rejects every document, or a transform that raises on each, must end the
-- job early with the first error on screen, not dead-letter the whole input.
--
--   local budget = error_budget.new{ max_errors = 1000 | "5%" }   -- default below
--   budget:ok(n)                   -- n documents succeeded
--   budget:fail(what) -> nil | err -- one document failed; err (kind "error_budget")
--                                  -- once the budget is spent, naming the first failure
--   budget:exceeded() -> err | nil
--
-- what = { id =, index =, reason =, status =, line = } (any of them): the
-- first one is kept and shown in the error.
-- max_errors = N: stop when more than N documents failed. "P%": stop when
-- more than P percent of the documents settled so far failed, judged once
-- 1000 have settled (so the first few failures do not stop a job).
-- Default: stop when more than 1000 documents failed, or when all of the
-- first 1000 did.
local errors = require("espipe.client.errors")

local type, tostring, error, setmetatable, tonumber = type, tostring, error, setmetatable, tonumber

local M = {}
local Budget = {}
Budget.__index = Budget

local SAMPLE = 1000

local function parse(v, level)
  if v == nil then return { count = SAMPLE, all_of_first = SAMPLE } end
  if type(v) == "number" and v >= 0 and v == math.floor(v) then return { count = v } end
  if type(v) == "string" then
    local n = v:match("^(%d+%.?%d*)%%$")
    n = tonumber(n)
    if n and n >= 0 and n <= 100 then return { ratio = n / 100, text = v } end
    n = v:match("^%d+$") and tonumber(v)
    if n then return { count = n } end
  end
  error("error_budget: max_errors must be a count (integer >= 0) or a percentage like \"5%\", got "
    .. tostring(v), level + 1)
end

-- error_budget.new{ max_errors = N | "P%" } -> budget
function M.new(opts, level)
  level = level or 2
  if opts ~= nil and type(opts) ~= "table" then error("error_budget: expects an options table", level) end
  opts = opts or {}
  require("espipe.client.options").check(opts, { "max_errors" }, "error_budget", level)
  local self = setmetatable(parse(opts.max_errors, level), Budget)
  self.succeeded, self.failed = 0, 0
  return self
end

-- The CLI's --max-errors text: "250" or "5%".
function M.parse_flag(s)
  local ok, limit = pcall(parse, s, 1)
  if not ok then return nil, "--max-errors must be a count or a percentage like 5%" end
  return (limit.count ~= nil) and limit.count or s
end

function Budget:ok(n)
  self.succeeded = self.succeeded + (n or 1)
  return self:exceeded()
end

local function first_text(f)
  local where = {}
  if f.id ~= nil then where[#where + 1] = "_id " .. tostring(f.id) end
  if f.index then where[#where + 1] = "index " .. tostring(f.index) end
  if f.line then where[#where + 1] = "line " .. tostring(f.line) end
  local s = (#where > 0 and ("document " .. table.concat(where, ", ") .. ": ") or "")
  if f.status then s = s .. f.status .. " " end
  if f.type then s = s .. f.type .. ": " end
  return s .. tostring(f.reason or f.message or "failed")
end

local function limit_text(self)
  if self.ratio then return "more than " .. self.text .. " of the documents failed" end
  if self.all_of_first and self.failed <= self.count then
    return "all of the first " .. self.all_of_first .. " documents failed"
  end
  return "more than " .. self.count .. " documents failed"
end

function Budget:exceeded()
  if self.tripped then return self.tripped end
  local failed, settled = self.failed, self.failed + self.succeeded
  local over
  if self.ratio then
    over = settled >= SAMPLE and failed > self.ratio * settled
  else
    over = failed > self.count
      or (self.all_of_first and self.succeeded == 0 and failed >= self.all_of_first)
  end
  if not over then return nil end
  self.tripped = errors.new{
    kind = "error_budget", failed = failed, settled = settled, first = self.first,
    message = "stopped: " .. limit_text(self) .. " (" .. failed .. " of " .. settled .. "); first: "
      .. first_text(self.first or {}),
  }
  return self.tripped
end

function Budget:fail(what)
  self.failed = self.failed + 1
  if not self.first then self.first = what or {} end
  return self:exceeded()
end

M.Budget = Budget
return M
