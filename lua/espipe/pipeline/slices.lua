-- Dealing a job's slices to parts (--part I/N, one per machine or runner)
-- and, within a part, to its workers (--workers W). Every copy computes the
-- same deal from the same numbers, so no coordinator hands slices out:
-- slice s (0-based) belongs to part s % parts + 1 and, within it, to worker
-- (s // parts) % workers + 1.
--
--   slices.total(parts, workers, slices) -> slices, or parts x workers when nil
--   slices.of(total, parts, part, workers, worker) -> { slice ids } (sorted)
--   slices.only(positions, ids, total) -> positions where every slice not in
--       ids is done (a scan given them asks only for ids)
--   slices.parse_part("2/3") -> 2, 3 | nil, message
local M = {}

function M.total(parts, workers, slices)
  return slices or parts * workers
end

function M.of(total, parts, part, workers, worker)
  local ids = {}
  for s = 0, total - 1 do
    if s % parts == part - 1 and math.floor(s / parts) % workers == worker - 1 then ids[#ids + 1] = s end
  end
  return ids
end

function M.only(positions, ids, total)
  local mine, out = {}, {}
  for _, id in ipairs(ids) do mine[id] = true end
  for s = 0, total - 1 do
    local key = tostring(s)
    out[key] = mine[s] and (positions or {})[key] or (not mine[s] and { done = true }) or nil
  end
  return out
end

function M.parse_part(text)
  local i, n = tostring(text):match("^(%d+)/(%d+)$")
  i, n = tonumber(i), tonumber(n)
  if not i or n < 1 or i < 1 or i > n then
    return nil, "--part must be I/N with 1 <= I <= N, got " .. tostring(text)
  end
  return i, n
end

return M
