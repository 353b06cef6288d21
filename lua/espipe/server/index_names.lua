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
  local states = expand_states(opts.expand_wildcards)
  local out, seen = {}, {}
  local function add(idx)
    if not seen[idx.name] then seen[idx.name] = true; out[#out + 1] = idx end
  end
  local function remove(name)
    for i = #out, 1, -1 do if out[i].name == name then table.remove(out, i); seen[name] = nil end end
  end
  local function visible(idx)
    return (idx.closed and states.closed or (not idx.closed and states.open))
      and (not idx.hidden or states.hidden)
  end
  if expr == nil or expr == "" or expr == "_all" then expr = "*" end
  local part_no = 0
  for part in tostring(expr):gmatch("[^,]+") do
    part_no = part_no + 1
    local exclude = part:sub(1, 1) == "-" and part_no > 1
    if exclude then part = part:sub(2) end
    local resolved, derr = M.date_math(part)
    if not resolved then return nil, es.fail(400, "illegal_argument_exception", derr) end
    part = resolved
    if part:find("*", 1, true) and states.none and not (states.open or states.closed) then
      -- expand_wildcards=none: the expression names an index literally (ES 8.6+)
      if not exclude and not opts.ignore_unavailable then return nil, es.index_not_found(part) end
    elseif part:find("*", 1, true) then
      local pat = glob_to_pattern(part)
      local any = false
      for _, name in ipairs(names) do
        local idx = indices[name]
        local hit = name:match(pat) ~= nil
        if not hit and opts.wildcard_aliases ~= false then
          for a in pairs(idx.aliases) do if a:match(pat) then hit = true break end end
        end
        if hit and (exclude or visible(idx)) then
          any = true
          if exclude then
            remove(name)
          elseif idx.closed and opts.forbid_closed then
            if not opts.ignore_unavailable then return nil, M.closed(idx) end
          else
            add(idx)
          end
        end
      end
      if not any and not exclude and not opts.allow_no_indices then return nil, es.index_not_found(part) end
    elseif exclude then
      remove(part)
    elseif indices[part] then
      local idx = indices[part]
      if idx.closed and opts.forbid_closed then
        if not opts.ignore_unavailable then return nil, M.closed(idx) end
      else
        add(idx)
      end
    else
      local targets = alias_indices(part)
      if targets and opts.concrete_aliases == false then
        if not opts.ignore_unavailable then
          return nil, es.bad_request("The provided expression [" .. part
            .. "] matches an alias, specify the corresponding concrete indices instead.")
        end
      elseif targets then
        for _, n in ipairs(targets) do add(indices[n]) end
      elseif not opts.ignore_unavailable then
        return nil, es.index_not_found(part)
      end
    end
  end
  if #out == 0 and not opts.allow_no_indices then return nil, es.index_not_found(tostring(expr)) end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

function M.closed(idx)
  return es.fail(400, "index_closed_exception", "closed", { index_uuid = idx.uuid, index = idx.name })
end

return M
