-- NDJSON lines that put load's C line path (csrc/bulk_lines.c) and its Lua
-- path side by side: the usual documents and every odd shape of id, date,
-- key, nesting and bad JSON the two must agree on. Deterministic (an LCG).
--   corpus.lines(n) -> { { line = "...", c = false? }, ... }
-- c = false marks a line the C path may leave to Lua even when Lua takes it
-- (numbers too big or too deep for it); every other line Lua takes, C must.
-- The documents have "id" (the id field) and "t" and "ev.at" (the dates).
local M = {}

local state = 7
local function rand(n)
  state = (state * 1103515245 + 12345) % 2147483648
  return state % n
end

local function pick(list) return list[rand(#list) + 1] end

local IDS = {
  '"a-1"', '"with \\"quote\\""', '"back\\\\slash"', '"\\u0041BC"', '"line\\nbreak"', '"caf\\u00e9"',
  '"caf\195\169"', '"\\ud83d\\ude00"', '"tab\\t"', '"sl\\/ash"', '""', "42", "-7", "-0", "0", "1.0", "1e3",
  "1.5", "9007199254740992", "null", "true", "{}", "[1]", '"x y"', '"\\u0000"',
}
-- ids C may leave to Lua although Lua takes them
local IDS_LUA = { "9007199254740993", "123456789012345678901", "1e17" }

local DATES = {
  '"2024-03-05"', '"2024-03-05T10:11:12Z"', '"2024-03-05 07:00"', '"2024-03-05T7"', '"2024-3-5"',
  '"1999-12-31T23:59:59.999+05:00"', '"0000-01-01"', '"2024-13-45T99"', '"20240305"', '"1709251200000"',
  '"0001709251200000"', '""', '"x2024-03-05"', '"2024\\u002d03-05T08"', '"\\u0032024-01-02"',
  "1709251200000", "0", "-1", "-86400001", "1", "-62135596800000", "253402300799999", "999999999999999",
  "-999999999999999", "1.7e12", "1709251200000.0", "null", "true", '{"a":1}', "[2024]",
}
local DATES_LUA = { "1709251200000.5", "1000000000000000", '"1000000000000000"', "-1000000000000000", '"12345678901234567"' }

local FILLERS = {
  '"s":"plain"', '"n":{"id":"inner","t":"1970-01-01","deep":{"a":[1,2,{"b":null}]}}', '"arr":[1,2.5,-3e2,"x",[],{}]',
  '"esc":"\\"\\\\\\/\\b\\f\\n\\r\\t\\u00ff"', '"u":"\226\130\172\240\159\152\128"', '"f":false', '"e":{}',
  '"big":1e300', '"neg":-0.0', '"ws" :\t[ 1 , 2 ]',
}

-- Whole lines that are bad, or odd, for either path.
local ODD = {
  '{"id":"a","t":"2024-01-01",}', '{"id":"a","t":"2024-01-01"', '{"id":"a\\x","t":"2024-01-01"}',
  '{"id":"\\ud800","t":"2024-01-01"}', '{"id":"a","t":"2024-01-01","x":"\255"}', '{"id":"a","x":\255}',
  '{"id":"a\1b","t":"2024-01-01"}', '{"id":"a","t":"2024-01-01","x":1e400}', '{"id":"a","t":"2024-01-01","x":01}',
  '{"id":"a","t":"2024-01-01"} x', '{"id":"a","t":"2024-01-01"}{}', '\11{"id":"a","t":"2024-01-01"}',
  '{"id":"a","t":"2024-01-01"}\12', ' \t{"id":"a","t":"2024-01-01"}\t ', '{"id":"a",\r"t":"2024-01-01"}',
  '[1,2]', '{', '}', '{}', '{"t":"2024-01-01"}', '{"id":"a"}', 'not json', '{"id":"a","t":"2024-01-01","x":tru}',
  '{"i\\u0064":"esc-key","t":"2024-01-01"}', '{"id":"first","id":"last","t":"2024-01-01","t":"2023-02-02"}',
  '{"id":{"x":1},"id":5,"t":"2024-01-01"}', '{"id":5,"id":null,"t":"2024-01-01"}',
  '{"id":"a","ev":{"at":"2021-06-07T08"},"t":"2024-01-01"}', '{"id":"a","ev.at":"2022-01-01","ev":{"at":"2021-06-07"}}',
  '{"id":"a","ev":{"at":1,"at":"2020-02-02"},"t":5}', '{"id":"a","ev":[{"at":"2020-01-01"}],"t":5}',
  '{"id":"a","ev":null,"t":5}',
  '{"id":"a","t":"2024-01-01","k\\"q":1,"\\u00e9":2}', '{"id":"caf\195\169","t":"2024-01-01"}',
  '{"id":"a","t":"2024-01-01","x":"\237\160\128"}', '{"id":"a","t":"2024-01-01","x":"\192\175"}',
  '{ "id" : "spaced" , "t" : "2024-01-01" }', '{"id":"a","t":"2024-01-01","":""}',
}

local function deep(n)
  return '{"id":"deep","t":"2024-01-01","d":' .. ("["):rep(n) .. ("]"):rep(n) .. "}"
end

local function document()
  local id, c = pick(IDS), nil
  if rand(20) == 0 then id, c = pick(IDS_LUA), false end
  local t = pick(DATES)
  if rand(20) == 0 then t, c = pick(DATES_LUA), false end
  local members = { '"id":' .. id, '"t":' .. t }
  if rand(3) == 0 then members[#members + 1] = '"ev":{"at":' .. pick(DATES) .. ',"x":1}' end
  if rand(5) == 0 then members[#members + 1] = '"ev.at":' .. pick(DATES) end
  for _ = 1, rand(3) do table.insert(members, rand(#members + 1) + 1, pick(FILLERS)) end
  if rand(8) == 0 then members[1], members[#members] = members[#members], members[1] end
  return { line = "{" .. table.concat(members, ",") .. "}", c = c }
end

function M.lines(n)
  state = 7
  local out = {}
  for i = 1, n do
    local r = rand(10)
    if r == 0 then
      out[i] = { line = pick(ODD) }
      if rand(20) == 0 then out[i] = { line = '{"id":"a","t":"2024-01-01","x":12345678901234567890123}', c = false } end
    elseif r == 1 and rand(10) == 0 then
      local depth = pick { 5, 127, 129, 300 }
      out[i] = { line = deep(depth), c = depth < 127 }
    else
      out[i] = document()
    end
    if out[i].c == true then out[i].c = nil end
  end
  return out
end

-- The corpus as one NDJSON text: LF, some CRLF, some blank lines between.
function M.text(entries)
  state = 11
  local parts = {}
  for _, e in ipairs(entries) do
    parts[#parts + 1] = e.line .. (rand(10) == 0 and "\r\n" or "\n")
    if rand(25) == 0 then parts[#parts + 1] = pick { "\n", "  \t\n", "\r\n", "\11\12\n" } end
  end
  return table.concat(parts)
end

return M
