-- The summary a person reads at the end of a job: a short aligned block on
-- stderr. What was done, per destination index, time and rates, retries,
-- where the dead letter is (only when something was written to it) and what
-- to run next. After a resume, counts of this run and of the whole job side
-- by side.
--
--   summary.block(name, s, ctx) -> text
--     s: the job's summary (ok, created, updated, deleted, dropped, failed, bytes, elapsed, ...)
--     ctx = { indices = { name = count }, dead = { paths written }, replay = "espipe load ...",
--             job = totals of the whole job (a resumed one; same keys as s), verdict = "done",
--             index_copy = the report of espipe.pipeline.index_copy (reindex --create-index-from-source) }
local M = {}

-- 1234567 -> "1,234,567"
local function grouped(n)
  local s = string.format("%d", math.floor(n + 0.5))
  local sign, digits = s:match("^(-?)(%d+)$")
  digits = digits:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
  return sign .. digits
end
M.grouped = grouped

local function seconds(s)
  if s >= 60 then return require("espipe.pipeline.progress").human_duration(s) end
  return string.format("%.1fs", s)
end

-- The counted rows: label, key of the summary; shown when any is non-zero
-- (indexed and failed always).
local COUNTS = {
  { "indexed", "ok", always = true }, { "created", "created" }, { "updated", "updated" },
  { "deleted", "deleted" }, { "dropped", "dropped" }, { "bad lines", "bad_lines" },
  { "unreplayable", "unreplayable" }, { "transform errors", "transform_errors" },
  { "failed", "failed", always = true },
  { "exported", "rows" }, { "files", "files" },
}

local function count_rows(rows, s, job)
  for _, c in ipairs(COUNTS) do
    local label, key = c[1], c[2]
    local v, whole = s[key] or 0, job and job[key] -- (a count the whole job does not keep: left blank)
    if type(v) == "number" and (c.always and s.rows == nil or v ~= 0 or (whole or 0) ~= 0) then
      if job then rows[#rows + 1] = { label, grouped(v), whole and grouped(whole) or "" }
      else rows[#rows + 1] = { label, grouped(v) } end
    end
  end
end

local function index_rows(rows, indices)
  local names = {}
  for name, n in pairs(indices or {}) do if type(n) == "number" then names[#names + 1] = name end end
  table.sort(names)
  local wide = 0
  for _, name in ipairs(names) do wide = math.max(wide, #name) end
  for i, name in ipairs(names) do
    if i > 8 and #names > 9 then
      rows[#rows + 1] = { "", "... " .. (#names - 8) .. " more indices" }
      break
    end
    rows[#rows + 1] = { i == 1 and "per index" or "", string.format("%-" .. wide .. "s  %s", name, grouped(indices[name])) }
  end
end

-- the indices made from the source's, and what of it the destination did not get
local function index_copy_rows(rows, report)
  if not report then return end
  local made = {}
  for _, c in ipairs(report.created) do made[#made + 1] = c.name == c.from and c.name or (c.name .. " (from " .. c.from .. ")") end
  if #made > 0 then rows[#rows + 1] = { "new indices", table.concat(made, ", ") } end
  if #report.existing > 0 then rows[#rows + 1] = { "kept indices", table.concat(report.existing, ", ") } end
  if #report.dropped > 0 then rows[#rows + 1] = { "not copied", table.concat(report.dropped, ", ") } end
end

local function rate_rows(rows, s)
  local elapsed = s.elapsed or 0
  rows[#rows + 1] = { "elapsed", seconds(elapsed) }
  if elapsed > 0 then
    local docs = s.rows or s.ok or 0
    local avg = grouped(docs / elapsed) .. " docs/s"
    if (s.bytes or 0) > 0 then avg = avg .. string.format(", %.1f MB/s sent", s.bytes / elapsed / 1e6) end
    rows[#rows + 1] = { "average", avg }
  end
  if s.retried then rows[#rows + 1] = { "retries", grouped(s.retried) } end
  local a = s.adaptive
  if s.tuning and a and (a.concurrency_mode == "auto" or a.batch_mode == "auto") then
    rows[#rows + 1] = { "tuning", s.tuning .. " at the end (reasons in --json)" }
  end
end

-- rows -> aligned lines: the label column as wide as the widest label
local function render(head, rows)
  local wide, cols = 0, {}
  for _, r in ipairs(rows) do
    wide = math.max(wide, #r[1])
    if #r > 2 then for i = 2, #r do cols[i] = math.max(cols[i] or 0, #r[i]) end end
  end
  local out = { head }
  for _, r in ipairs(rows) do
    local line = "  " .. r[1] .. string.rep(" ", wide - #r[1] + 2)
    if #r > 2 then -- counts of this run and of the whole job, right-aligned
      for i = 2, #r do line = line .. string.rep(" ", cols[i] - #r[i]) .. r[i] .. (i < #r and "   " or "") end
    else
      line = line .. r[2]
    end
    out[#out + 1] = (line:gsub("%s+$", ""))
  end
  return table.concat(out, "\n") .. "\n"
end

function M.block(name, s, ctx)
  ctx = ctx or {}
  local rows = {}
  local job = ctx.job
  if job then rows[#rows + 1] = { "", "this run", "whole job" } end
  count_rows(rows, s, job)
  index_rows(rows, ctx.indices)
  index_copy_rows(rows, ctx.index_copy)
  rate_rows(rows, s)
  for _, path in ipairs(ctx.dead or {}) do rows[#rows + 1] = { "dead letter", path } end
  if ctx.replay then rows[#rows + 1] = { "next", ctx.replay } end
  return render("espipe " .. name .. ": " .. (ctx.verdict or "done"), rows)
end

return M
