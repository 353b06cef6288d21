-- Index expressions as Elasticsearch resolves them: comma lists, wildcards,
-- exclusions, aliases, date math (`<logs-{now/d}>`), and the index options
-- ignore_unavailable, allow_no_indices and expand_wildcards.
local es = require("espipe.server.es_errors")
local date_math = require("espipe.server.date_math")

local M = {}

local function two(n) return string.format("%02d", n) end

-- the date of epoch millis as Joda/Java pattern letters write it (the subset
-- date-math names use: yyyy/YYYY/uuuu, MM, dd, HH, mm, ss)
local function format_date(ms, pattern)
  local t = os.date("!*t", math.floor(ms / 1000))
  local fields = { y = tostring(t.year), Y = tostring(t.year), u = tostring(t.year), M = two(t.month),
                   d = two(t.day), H = two(t.hour), m = two(t.min), s = two(t.sec) }
  local out, i = {}, 1
  while i <= #pattern do
    local c = pattern:sub(i, i)
    local j = i
    while pattern:sub(j + 1, j + 1) == c do j = j + 1 end
    local v = fields[c]
    if v and j - i == 1 and #v == 4 then v = v:sub(3) end
    out[#out + 1] = v or pattern:sub(i, j)
    i = j + 1
  end
  return table.concat(out)
end

-- "<static{math{format}}static>" -> the name; other names unchanged
function M.date_math(name, now_ms)
  if type(name) ~= "string" or name:sub(1, 1) ~= "<" or name:sub(-1) ~= ">" then return name end
  local inner = name:sub(2, -2)
  now_ms = now_ms or math.floor((ngx and ngx.now() or os.time()) * 1000)
  local bad
  local out = inner:gsub("(%b{})", function(expr)
    local body = expr:sub(2, -2)
    local math_expr, fmt = body:match("^([^{]*){([^}|]*)[^}]*}$")
    math_expr = math_expr or body
    fmt = (fmt and fmt ~= "") and fmt or "yyyy.MM.dd"
    local anchor, ops = math_expr:match("^(.-)||(.*)$")
    local ms
    if anchor then
      local base = date_math.parse_date(anchor)
      ms = base and date_math.parse_date("now" .. ops, base)
    else
      ms = date_math.parse_date(math_expr, now_ms)
    end
    if not ms then bad = math_expr return "" end
    return format_date(ms, fmt)
  end)
  if bad then return nil, "invalid date math expression [" .. bad .. "]" end
  return out
end

local function glob_to_pattern(g)
  return "^" .. g:gsub("[%^%$%(%)%%%.%[%]%+%-%?]", "%%%0"):gsub("%*", ".*") .. "$"
end

local OPTION_DEFAULTS = { ignore_unavailable = false, allow_no_indices = true, expand_wildcards = "open" }

-- index options from query parameters over an API's defaults
function M.options(args, defaults)
  local o = {}
  for k, v in pairs(OPTION_DEFAULTS) do o[k] = v end
  for k, v in pairs(defaults or {}) do o[k] = v end
  for _, k in ipairs({ "ignore_unavailable", "allow_no_indices" }) do
    local v = args and args[k]
    if v ~= nil then o[k] = (v == true or v == "" or v == "true") end
  end
  if args and type(args.expand_wildcards) == "string" then o.expand_wildcards = args.expand_wildcards end
  return o
end

local function expand_states(spec)
  local st = {}
  for w in tostring(spec or "open"):gmatch("[^,]+") do
    if w == "all" then st.open, st.closed, st.hidden = true, true, true else st[w] = true end
  end
  return st
end

-- One resolution in progress: r = { indices =, alias_indices =, opts =,
-- states =, names = sorted index names, out = list, seen = set }.

local function add(r, idx)
  if not r.seen[idx.name] then r.seen[idx.name] = true; r.out[#r.out + 1] = idx end
end

local function remove(r, name)
  local out = r.out
  for i = #out, 1, -1 do if out[i].name == name then table.remove(out, i); r.seen[name] = nil end end
end

-- adds an index unless it is closed and the API forbids closed ones -> nil | status, body
local function add_open(r, idx)
  if idx.closed and r.opts.forbid_closed then
    if not r.opts.ignore_unavailable then return M.closed(idx) end
    return nil
  end
  add(r, idx)
end

local function visible(r, idx)
  local states = r.states
  return (idx.closed and states.closed or (not idx.closed and states.open))
    and (not idx.hidden or states.hidden)
end

local function wildcard_hit(r, idx, name, pat)
  if name:match(pat) then return true end
  if r.opts.wildcard_aliases == false then return false end
  for a in pairs(idx.aliases) do if a:match(pat) then return true end end
  return false
end

local function wildcard_part(r, part, exclude)
  local pat = glob_to_pattern(part)
  local any = false
  for _, name in ipairs(r.names) do
    local idx = r.indices[name]
    if wildcard_hit(r, idx, name, pat) and (exclude or visible(r, idx)) then
      any = true
      if exclude then
        remove(r, name)
      else
        local s, e = add_open(r, idx)
        if s then return s, e end
      end
    end
  end
  if not any and not exclude and not r.opts.allow_no_indices then return es.index_not_found(part) end
end

local function alias_part(r, part)
  local opts = r.opts
  local targets = r.alias_indices(part)
  if targets and opts.concrete_aliases == false then
    if opts.ignore_unavailable then return nil end
    return es.bad_request("The provided expression [" .. part
      .. "] matches an alias, specify the corresponding concrete indices instead.")
  elseif targets then
    for _, n in ipairs(targets) do add(r, r.indices[n]) end
  elseif not opts.ignore_unavailable then
    return es.index_not_found(part)
  end
end

-- one comma-separated part of the expression -> nil | status, body
local function resolve_part(r, part, exclude)
  local resolved, derr = M.date_math(part)
  if not resolved then return es.fail(400, "illegal_argument_exception", derr) end
  part = resolved
  local wildcard = part:find("*", 1, true)
  if wildcard and r.states.none and not (r.states.open or r.states.closed) then
    -- expand_wildcards=none: the expression names an index literally (ES 8.6+)
    if not exclude and not r.opts.ignore_unavailable then return es.index_not_found(part) end
  elseif wildcard then
    return wildcard_part(r, part, exclude)
  elseif exclude then
    remove(r, part)
  elseif r.indices[part] then
    return add_open(r, r.indices[part])
  else
    return alias_part(r, part)
  end
end

-- resolve(indices, alias_indices, expr, opts) -> list of index records
-- (sorted by name, unique) | nil, status, body.
-- opts: the index options, plus wildcard_aliases = false (wildcards do not
-- reach indices through aliases, as delete), concrete_aliases = false (an
-- alias named outright is refused, as delete), forbid_closed = true (a
-- closed index named outright is index_closed_exception).
function M.resolve(indices, alias_indices, expr, opts)
  opts = M.options(nil, opts)
  local names = {}
  for name in pairs(indices) do names[#names + 1] = name end
  table.sort(names)
  local r = { indices = indices, alias_indices = alias_indices, opts = opts, names = names,
              states = expand_states(opts.expand_wildcards), out = {}, seen = {} }
  if expr == nil or expr == "" or expr == "_all" then expr = "*" end
  local part_no = 0
  for part in tostring(expr):gmatch("[^,]+") do
    part_no = part_no + 1
    local exclude = part:sub(1, 1) == "-" and part_no > 1
    if exclude then part = part:sub(2) end
    local s, e = resolve_part(r, part, exclude)
    if s then return nil, s, e end
  end
  if #r.out == 0 and not opts.allow_no_indices then return nil, es.index_not_found(tostring(expr)) end
  table.sort(r.out, function(a, b) return a.name < b.name end)
  return r.out
end

function M.closed(idx)
  return es.fail(400, "index_closed_exception", "closed", { index_uuid = idx.uuid, index = idx.name })
end

return M
