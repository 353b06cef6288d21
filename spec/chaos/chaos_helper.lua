-- What the chaos specs share: the fault mix of issue 12, a generated input,
-- and the ledger that checks a job's outcome against the server, read
-- directly (curl, not espipe, not through the proxy).
local assert = require("luassert")
local http = require("support.http")
local json = require("espipe.json")
local fault_proxy = require("support.fault_proxy")

local M = {}

M.N = tonumber(os.getenv("CHAOS_DOCS")) or 200000

-- Short backoff and a retry budget that outlasts the faults: the runs stay
-- short, and nothing retryable may end in the dead letter.
M.BACKOFF = { base = 0.005, max = 0.05 }
M.RETRY_FOR = 60

-- Issue 12's mix on _bulk: 5% answered 503 by the proxy, 2% reset after the
-- server applied the request, 1% truncated after it, and of the rest 20% of
-- the items rejected with 429 inside an HTTP 200 (never forwarded). Each
-- fault also hits one early request for sure, so no run goes without it.
function M.bulk_faults(o)
  local lose = not (o and o.lose_responses == false)
  local rules = { { match = "_bulk", action = "status", status = 503, nth = 2 } }
  if lose then
    rules[#rules + 1] = { match = "_bulk", action = "reset_response", nth = 3 }
    rules[#rules + 1] = { match = "_bulk", action = "truncate", nth = 4 }
  end
  rules[#rules + 1] = { match = "_bulk", action = "status", status = 503, p = 0.05 }
  if lose then
    rules[#rules + 1] = { match = "_bulk", action = "reset_response", p = 0.02 }
    rules[#rules + 1] = { match = "_bulk", action = "truncate", p = 0.01 }
  end
  rules[#rules + 1] = { match = "_bulk", action = "bulk_items", fraction = 0.2 }
  return rules
end

local sh, q = fault_proxy.sh, fault_proxy.quote

-- bin/espipe with these arguments: exit status, stdout, stderr
function M.espipe(argv)
  local root = require("spec.support.devserver").root
  local words = { q(root .. "/bin/espipe") }
  for _, a in ipairs(argv) do words[#words + 1] = q(a) end
  local err_file = os.tmpname()
  local rc, out = sh("{ " .. table.concat(words, " ") .. " 2>" .. q(err_file) .. "; }")
  local ef = io.open(err_file, "rb")
  local err = ef and ef:read("*a") or ""
  if ef then ef:close() end
  os.remove(err_file)
  return rc, out, err
end

-- n small documents, one per line: {"id":"d<i>","n":<i>,"s":"..."}; the
-- field n names the document whatever _id the server gives it.
function M.write_input(path, n)
  local f = assert(io.open(path, "wb"))
  local buf = {}
  for i = 1, n do
    buf[#buf + 1] = '{"id":"d' .. i .. '","n":' .. i .. ',"s":"v' .. (i % 97) .. '"}\n'
    if #buf == 5000 then f:write(table.concat(buf)) buf = {} end
  end
  f:write(table.concat(buf))
  f:close()
  return path
end

function M.refresh(url, index)
  local res = http.request{ method = "POST", url = url .. "/" .. index .. "/_refresh" }
  assert(res.status == 200, "refresh " .. index .. ": " .. res.status .. " " .. res.body)
end

function M.count(url, index)
  M.refresh(url, index)
  local status, body = http.json("GET", url .. "/" .. index .. "/_count")
  assert(status == 200, "count " .. index .. ": " .. tostring(status))
  return body.count
end

-- Every document on the server, by scroll: { [n] = times seen }, { [_id] = n }
function M.server_docs(url, index)
  M.refresh(url, index)
  local by_n, by_id, total = {}, {}, 0
  local status, page = http.json("POST", url .. "/" .. index .. "/_search?scroll=2m",
    { size = 10000, sort = { "_doc" }, _source = { "n" } })
  assert(status == 200, "scroll " .. index .. ": " .. tostring(status))
  while #page.hits.hits > 0 do
    for _, h in ipairs(page.hits.hits) do
      local n = h._source.n
      by_n[n] = (by_n[n] or 0) + 1
      assert(by_id[h._id] == nil, "the server returned _id " .. h._id .. " twice")
      by_id[h._id] = n
      total = total + 1
    end
    local id = page._scroll_id
    status, page = http.json("POST", url .. "/_search/scroll", { scroll = "2m", scroll_id = id })
    assert(status == 200, "scroll page: " .. tostring(status))
  end
  http.json("DELETE", url .. "/_search/scroll", { scroll_id = page._scroll_id })
  return by_n, by_id, total
end

-- The dead letter's records: { [n] = times dead-lettered }, and their number.
function M.dead_letter(path)
  local by_n, total = {}, 0
  local f = io.open(path, "rb")
  if not f then return by_n, 0 end
  for line in f:lines() do
    if line ~= "" then
      local rec = assert(json.decode(line), "dead letter line is not JSON: " .. line:sub(1, 200))
      local src = type(rec.source) == "string" and json.decode(rec.source) or rec.source
      local n = assert(src and src.n, "dead letter record without its source: " .. line:sub(1, 200))
      by_n[n] = (by_n[n] or 0) + 1
      total = total + 1
    end
  end
  f:close()
  return by_n, total
end

-- The outcome against the input 1..n: lost (neither on the server nor
-- dead-lettered), duplicated on the server, in both places, dead-lettered
-- twice, and a few examples of each.
function M.ledger(n, on_server, dead)
  local r = { lost = 0, duplicated = 0, both = 0, dead_twice = 0, examples = {} }
  local function note(kind, i)
    r[kind] = r[kind] + 1
    if #r.examples < 10 then r.examples[#r.examples + 1] = kind .. " n=" .. i end
  end
  for i = 1, n do
    local s, d = on_server[i] or 0, dead[i] or 0
    if s + d == 0 then note("lost", i) end
    if s > 1 then note("duplicated", i) end
    if s > 0 and d > 0 then note("both", i) end
    if d > 1 then note("dead_twice", i) end
  end
  for i in pairs(on_server) do
    if type(i) ~= "number" or i < 1 or i > n then note("lost", -1) end
  end
  return r
end

-- Asserts that the server's index holds each of the documents 1..n exactly
-- once, nothing is dead-lettered (every fault here is retryable) and the
-- summary accounts for each document; returns { [_id] = n }.
function M.assert_exactly_once(url, index, n, dead_path, summary, proxy_stats)
  local on_server, by_id, total = M.server_docs(url, index)
  local dead, dead_n = M.dead_letter(dead_path)
  local r = M.ledger(n, on_server, dead)
  local why = M.describe(r, summary, proxy_stats)
  assert.same({ 0, 0, 0 }, { r.lost, r.duplicated, r.both }, why)
  assert.equal(0, dead_n, why)
  assert.equal(n, total, why)
  assert.equal(n, M.count(url, index), why)
  assert.equal(summary.added, summary.ok + summary.failed, why)
  assert.same({ n, n, 0 }, { summary.added, summary.ok, summary.failed }, why)
  return by_id, why
end

-- A short text for assertion messages.
function M.describe(r, summary, proxy_stats)
  local parts = {}
  for _, k in ipairs{ "lost", "duplicated", "both", "dead_twice" } do parts[#parts + 1] = k .. "=" .. r[k] end
  local s = table.concat(parts, " ") .. " [" .. table.concat(r.examples, ", ") .. "]"
  if summary then
    s = s .. " summary: added=" .. tostring(summary.added) .. " ok=" .. tostring(summary.ok)
      .. " failed=" .. tostring(summary.failed) .. " retried=" .. tostring(summary.retried)
  end
  if proxy_stats then
    s = s .. " proxy: requests=" .. proxy_stats.requests .. " items_failed=" .. proxy_stats.items_failed
      .. " statuses=" .. proxy_stats.statuses .. " resets=" .. proxy_stats.resets
      .. " truncations=" .. proxy_stats.truncations
  end
  return s
end

return M
