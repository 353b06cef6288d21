-- JSON for the dev server (pure Lua; runs inside nginx on LuaJIT and on
-- every PUC Lua 5.1-5.4).
--
-- encode(v) -> string        raises on values JSON cannot hold (functions,
--                             cycles, non-string/number keys)
-- decode(s) -> value | nil, errmsg   errmsg names the byte offset
-- null                        = cjson.null, so values from either decoder compare equal
-- array(t) / array_mt         mark a table as an array ({} then encodes as [])
-- object(t) / object_mt       mark a table as an object (keeps {} even if it
--                             later looks like a sequence)
-- raw(str) / is_raw(v)        a JSON fragment embedded verbatim by encode
--                             (stored _source bytes spliced into responses)
-- int(digits) / is_int(v)      an exact integer a double cannot hold (its
--                             canonical decimal text): encoded verbatim, and
--                             ordered by < <= == against other ints (is_raw too)
--
-- Precision: LuaJIT (the server's Lua) numbers are doubles, so integers
-- beyond 2^53 cannot survive decode -> encode; that affects only paths that
-- rewrite a document (update, decoded mget). Stored sources are kept as raw
-- bytes, so index/get/search return them unchanged. On Lua 5.3+ integers
-- stay exact.
--
-- Decoding: lua-cjson is fast but turns [] into a table indistinguishable
-- from {}; so decode uses cjson only when the text has no empty array, and a
-- pure-Lua decoder (which marks every array with array_mt) otherwise, and to
-- produce a precise error message when cjson refuses the input. (The cjson
-- path tolerates a few non-JSON forms: "1.", raw control characters inside
-- strings; decode_marked is strict.) Strings are
-- passed through byte for byte: invalid UTF-8 in user data is not rejected.
local M = {}

local ok_cjson, cjson = pcall(require, "cjson")
if not ok_cjson then cjson = nil end

local type, pairs, tostring, tonumber = type, pairs, tostring, tonumber
local setmetatable, getmetatable, error, pcall = setmetatable, getmetatable, error, pcall
local byte, sub, find, format, gsub, char = string.byte, string.sub, string.find,
  string.format, string.gsub, string.char
local concat = table.concat
local huge, floor = math.huge, math.floor
local math_type = math.type -- nil before 5.3

M.null = cjson and cjson.null or setmetatable({}, { __tostring = function() return "null" end })
local null = M.null

M.array_mt = { __name = "json.array" }
M.object_mt = { __name = "json.object" }
local array_mt, object_mt = M.array_mt, M.object_mt
local raw_mt = { __name = "json.raw" }

function M.array(t)
  if t == nil then t = {} end
  if type(t) ~= "table" then error("json.array expects a table, got " .. type(t), 2) end
  return setmetatable(t, array_mt)
end

function M.object(t)
  if t == nil then t = {} end
  if type(t) ~= "table" then error("json.object expects a table, got " .. type(t), 2) end
  return setmetatable(t, object_mt)
end

function M.raw(s)
  if type(s) ~= "string" then error("json.raw expects a string, got " .. type(s), 2) end
  return setmetatable({ s }, raw_mt)
end

-- -1, 0, 1: the order of two canonical integer texts
local function int_cmp(a, b)
  local na, nb = byte(a) == 45, byte(b) == 45 -- "-"
  if na ~= nb then return na and -1 or 1 end
  if a == b then return 0 end
  local r
  if #a ~= #b then r = #a < #b and -1 or 1 else r = a < b and -1 or 1 end
  return na and -r or r
end

local int_mt = { __name = "json.int" }
int_mt.__lt = function(a, b) return int_cmp(a[1], b[1]) < 0 end
int_mt.__le = function(a, b) return int_cmp(a[1], b[1]) <= 0 end
int_mt.__eq = function(a, b)
  return getmetatable(a) == int_mt and getmetatable(b) == int_mt and a[1] == b[1]
end
int_mt.__tostring = function(a) return a[1] end

function M.int(digits)
  if type(digits) ~= "string" or not find(digits, "^%-?[1-9]%d*$") and digits ~= "0" then
    error("json.int expects the decimal text of an integer, got " .. tostring(digits), 2)
  end
  return setmetatable({ digits }, int_mt)
end

function M.is_int(v)
  return type(v) == "table" and getmetatable(v) == int_mt
end

function M.is_raw(v)
  if type(v) ~= "table" then return false end
  local mt = getmetatable(v)
  return mt == raw_mt or mt == int_mt
end

function M.raw_text(v)
  return v[1]
end

function M.is_array(v)
  return type(v) == "table" and getmetatable(v) == array_mt
end

-- a deep copy of a decoded value, keeping its array/object/raw marks
function M.copy(v)
  if type(v) ~= "table" or v == null then return v end
  local out = setmetatable({}, getmetatable(v))
  for k, x in pairs(v) do out[k] = M.copy(x) end
  return out
end

------------------------------------------------------------------------
-- encode

local escapes = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}
for i = 0, 31 do
  local c = char(i)
  if not escapes[c] then escapes[c] = format("\\u%04x", i) end
end

-- %z matches NUL on 5.1/LuaJIT where a literal \0 in a pattern would end it
local needs_escape = (_VERSION == "Lua 5.1") and '[%z\1-\31"\\]' or '[\0-\31"\\]'

local function encode_string(s)
  if find(s, needs_escape) then
    s = gsub(s, needs_escape, escapes)
  end
  return '"' .. s .. '"'
end

local MAX_SAFE = 2 ^ 53

local function encode_number(x)
  if math_type and math_type(x) == "integer" then
    return format("%d", x)
  end
  if x ~= x or x == huge or x == -huge then
    -- JSON has no NaN/Infinity; null is what JSON.stringify writes too
    return "null"
  end
  if floor(x) == x and x > -MAX_SAFE and x < MAX_SAFE then
    return format("%d", x)
  end
  -- shortest of 15/16/17 significant digits that reads back as x (DBL_DIG
  -- guarantees any <=15-digit form is recovered by %.15g)
  local s = format("%.15g", x)
  if tonumber(s) ~= x then
    s = format("%.16g", x)
    if tonumber(s) ~= x then s = format("%.17g", x) end
  end
  return s
end
M.encode_number = encode_number

local MAX_DEPTH = 1000

local encode_value
local ordered_keys

-- returns n when t is a dense 1..n sequence (n >= 1), else nil
local function sequence_length(t)
  local n = 0
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or floor(k) ~= k then return nil end
    n = n + 1
  end
  if n == 0 then return nil end
  for i = 1, n do
    if t[i] == nil then return nil end
  end
  return n
end

local function encode_key(k)
  local tk = type(k)
  if tk == "string" then return encode_string(k) end
  if tk == "number" then return '"' .. encode_number(k) .. '"' end
  error("json.encode: cannot encode a " .. tk .. " as an object key", 0)
end

-- Object keys are written in Elasticsearch's order where it has one (an
-- error's root_cause, type, reason; a document's _index, _id, _version, ...)
-- and by name after those, so every response is the same bytes on every
-- start (pairs() order changes with the hash seed and insertion history).
local KEY_ORDER = {
  "_scroll_id", "pit_id", "took", "timed_out", "terminated_early", "count",
  "error", "root_cause", "type", "reason", "resource.type", "resource.id", "index_uuid", "shard", "index",
  "line", "col", "phase", "grouped", "failed_shards", "caused_by", "header", "status",
  "_index", "_id", "_version", "result", "forced_refresh", "_shards", "_seq_no", "_primary_term",
  "found", "_score", "_routing", "_ignored", "_source", "fields", "sort", "matched_queries",
  "get", "total", "successful", "skipped", "failed",
  "value", "relation", "max_score", "hits",
}
local key_rank = {}
for i, k in ipairs(KEY_ORDER) do key_rank[k] = i end
M.key_rank = key_rank
local UNRANKED = #KEY_ORDER + 1

local function key_before(a, b)
  local ra, rb = key_rank[a] or UNRANKED, key_rank[b] or UNRANKED
  if ra ~= rb then return ra < rb end
  return tostring(a) < tostring(b)
end

local sort = table.sort
ordered_keys = function(t)
  local keys, n = {}, 0
  for k in pairs(t) do n = n + 1; keys[n] = k end
  if n > 1 then sort(keys, key_before) end
  return keys
end

local function encode_table(t, buf, n, depth)
  if depth > MAX_DEPTH then
    error("json.encode: nesting deeper than " .. MAX_DEPTH .. " (cycle?)", 0)
  end
  local mt = getmetatable(t)
  if mt == raw_mt or mt == int_mt then
    n = n + 1; buf[n] = t[1]
    return n
  end
  local len
  if mt == array_mt then
    len = #t
  elseif mt ~= object_mt then
    len = sequence_length(t)
  end
  if len then
    n = n + 1; buf[n] = "["
    for i = 1, len do
      if i > 1 then n = n + 1; buf[n] = "," end
      n = encode_value(t[i], buf, n, depth + 1)
    end
    n = n + 1; buf[n] = "]"
    return n
  end
  n = n + 1; buf[n] = "{"
  local keys = ordered_keys(t)
  for i = 1, #keys do
    local k = keys[i]
    if i > 1 then n = n + 1; buf[n] = "," end
    n = n + 1; buf[n] = encode_key(k)
    n = n + 1; buf[n] = ":"
    n = encode_value(t[k], buf, n, depth + 1)
  end
  n = n + 1; buf[n] = "}"
  return n
end

encode_value = function(v, buf, n, depth)
  local tv = type(v)
  if tv == "string" then
    n = n + 1; buf[n] = encode_string(v)
  elseif tv == "number" then
    n = n + 1; buf[n] = encode_number(v)
  elseif tv == "boolean" then
    n = n + 1; buf[n] = v and "true" or "false"
  elseif tv == "table" then
    if v == null then
      n = n + 1; buf[n] = "null"
    else
      n = encode_table(v, buf, n, depth)
    end
  elseif v == nil or v == null then
    n = n + 1; buf[n] = "null"
  elseif tv == "cdata" then
    -- LuaJIT 64-bit integers print as 123LL / 123ULL
    n = n + 1; buf[n] = (gsub(tostring(v), "[LUI]+$", ""))
  else
    error("json.encode: cannot encode a " .. tv, 0)
  end
  return n
end

function M.encode(v)
  local tv = type(v)
  if tv == "string" then return encode_string(v) end
  if tv == "number" then return encode_number(v) end
  local buf = {}
  local n = encode_value(v, buf, 0, 0)
  return concat(buf, "", 1, n)
end

------------------------------------------------------------------------
-- decode (pure Lua; arrays carry array_mt, objects object_mt)

local decode_value

local function decode_error(msg, pos)
  error({ msg = msg .. " at byte " .. (pos - 1) }, 0)
end

local function skip_ws(s, pos)
  return find(s, "[^ \t\r\n]", pos) or #s + 1
end

local function utf8_bytes(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then
    return char(0xC0 + floor(cp / 0x40), 0x80 + cp % 0x40)
  end
  if cp < 0x10000 then
    return char(0xE0 + floor(cp / 0x1000), 0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end
  return char(0xF0 + floor(cp / 0x40000), 0x80 + floor(cp / 0x1000) % 0x40,
    0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

local simple_unescape = {
  ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t",
}

local function decode_string(s, pos)
  -- pos is just past the opening quote
  local parts, np = nil, 0
  local start = pos
  while true do
    local q = find(s, '["\\%z\1-\31]', pos)
    if not q then decode_error("unterminated string", start - 1) end
    local c = byte(s, q)
    if c == 34 then -- "
      local piece = sub(s, pos, q - 1)
      if not parts then return piece, q + 1 end
      np = np + 1; parts[np] = piece
      return concat(parts, "", 1, np), q + 1
    elseif c == 92 then -- backslash
      parts = parts or {}
      np = np + 1; parts[np] = sub(s, pos, q - 1)
      local e = sub(s, q + 1, q + 1)
      local simple = simple_unescape[e]
      if simple then
        np = np + 1; parts[np] = simple
        pos = q + 2
      elseif e == "u" then
        local hex = sub(s, q + 2, q + 5)
        local cp = #hex == 4 and find(hex, "^%x%x%x%x$") and tonumber(hex, 16)
        if not cp then decode_error("invalid \\u escape", q) end
        pos = q + 6
        if cp >= 0xD800 and cp <= 0xDBFF and sub(s, pos, pos + 1) == "\\u" then
          local lo_hex = sub(s, pos + 2, pos + 5)
          local lo = find(lo_hex, "^%x%x%x%x$") and tonumber(lo_hex, 16)
          if lo and lo >= 0xDC00 and lo <= 0xDFFF then
            cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
            pos = pos + 6
          end
        end
        np = np + 1; parts[np] = utf8_bytes(cp)
      else
        decode_error("invalid escape '\\" .. e .. "'", q)
      end
    else
      decode_error("control character in string", q)
    end
  end
end

local exact_numbers = false

local function decode_number(s, pos)
  local a, b = find(s, "^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
  if not a then decode_error("unexpected character '" .. sub(s, pos, pos) .. "'", pos) end
  local text = sub(s, a, b)
  -- JSON forbids leading zeros, a bare '.', and an empty exponent
  if not (find(text, "^-?0[%.eE]") or find(text, "^-?0$") or find(text, "^-?[1-9]"))
    or find(text, "%.$") or find(text, "%.[eE]") or find(text, "[eE][-+]?$") then
    decode_error("invalid number '" .. text .. "'", pos)
  end
  local v = tonumber(text)
  if not v then decode_error("invalid number '" .. text .. "'", pos) end
  -- decode_exact: an integer a double cannot hold stays its text, written back verbatim
  if exact_numbers and (v >= MAX_SAFE or v <= -MAX_SAFE) and not find(text, "[.eE]")
      and not (math_type and math_type(v) == "integer") then
    return M.int(text), b + 1
  end
  return v, b + 1
end

local function decode_array(s, pos, depth)
  local t, n = setmetatable({}, array_mt), 0
  pos = skip_ws(s, pos)
  if byte(s, pos) == 93 then return t, pos + 1 end
  while true do
    local v
    v, pos = decode_value(s, pos, depth)
    n = n + 1; t[n] = v
    pos = skip_ws(s, pos)
    local c = byte(s, pos)
    if c == 93 then return t, pos + 1 end
    if c ~= 44 then decode_error("expected ',' or ']'", pos) end
    pos = pos + 1
  end
end

local function decode_object(s, pos, depth)
  local t = setmetatable({}, object_mt)
  pos = skip_ws(s, pos)
  if byte(s, pos) == 125 then return t, pos + 1 end
  while true do
    if byte(s, pos) ~= 34 then decode_error("expected a string key", pos) end
    local k
    k, pos = decode_string(s, pos + 1)
    pos = skip_ws(s, pos)
    if byte(s, pos) ~= 58 then decode_error("expected ':'", pos) end
    local v
    v, pos = decode_value(s, pos + 1, depth)
    t[k] = v
    pos = skip_ws(s, pos)
    local c = byte(s, pos)
    if c == 125 then return t, pos + 1 end
    if c ~= 44 then decode_error("expected ',' or '}'", pos) end
    pos = skip_ws(s, pos + 1)
  end
end

decode_value = function(s, pos, depth)
  pos = skip_ws(s, pos)
  local c = byte(s, pos)
  if c == 123 then
    if depth >= MAX_DEPTH then decode_error("nesting deeper than " .. MAX_DEPTH, pos) end
    return decode_object(s, pos + 1, depth + 1)
  elseif c == 91 then
    if depth >= MAX_DEPTH then decode_error("nesting deeper than " .. MAX_DEPTH, pos) end
    return decode_array(s, pos + 1, depth + 1)
  elseif c == 34 then
    return decode_string(s, pos + 1)
  elseif c == 116 then
    if sub(s, pos, pos + 3) == "true" then return true, pos + 4 end
  elseif c == 102 then
    if sub(s, pos, pos + 4) == "false" then return false, pos + 5 end
  elseif c == 110 then
    if sub(s, pos, pos + 3) == "null" then return null, pos + 4 end
  elseif c == nil then
    decode_error("unexpected end of input", pos)
  else
    return decode_number(s, pos)
  end
  decode_error("unexpected character '" .. char(c) .. "'", pos)
end

-- pure-Lua decoder; every array (even non-empty) gets array_mt
function M.decode_marked(s)
  if type(s) ~= "string" then error("json.decode expects a string, got " .. type(s), 2) end
  local ok, v, pos = pcall(decode_value, s, 1, 0)
  if not ok then
    if type(v) == "table" then return nil, v.msg end
    error(v, 0)
  end
  pos = skip_ws(s, pos)
  if pos <= #s then return nil, "unexpected data after the JSON value at byte " .. (pos - 1) end
  return v
end
local decode_marked = M.decode_marked

-- decode_exact(s): as decode_marked, but integers beyond 2^53 (which a
-- double would round) come back as json.int values that encode as they were
-- read: for rewriting a response (filter_path) without changing its numbers,
-- and for search_after values of date_nanos sorts
function M.decode_exact(s)
  exact_numbers = true
  local ok, v, err = pcall(decode_marked, s)
  exact_numbers = false
  if not ok then error(v, 0) end
  return v, err
end

-- a private cjson instance: strict numbers (no NaN/Infinity/hex), without
-- touching the settings of the shared module other code in the VM may use.
-- Used only where numbers are doubles anyway (LuaJIT, 5.1, 5.2); on 5.3+
-- cjson would turn every integer into a float.
local cjson_decode
if cjson and cjson.new and not math_type then
  local inst = cjson.new()
  inst.decode_invalid_numbers(false)
  cjson_decode = inst.decode
end

function M.decode(s)
  if type(s) ~= "string" then error("json.decode expects a string, got " .. type(s), 2) end
  -- cjson cannot tell [] from {}: only text without an empty array goes to it
  if cjson_decode and not find(s, "%[%s*%]") then
    local ok, v = pcall(cjson_decode, s)
    if ok then return v end
  end
  return decode_marked(s)
end

return M
