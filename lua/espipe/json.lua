-- espipe.json: the exact JSON codec of the C core.
--
--   json.encode(value [, opts]) -> string         raises on values JSON cannot hold
--   json.decode(text [, opts])  -> value | nil, err  (err: espipe.client.errors, kind "json")
--   json.null                   the null sentinel (lightuserdata NULL = cjson.null = ngx.null)
--   json.array([t]) -> t        mark t (or a new table) as an array: {} encodes as []
--   json.is_array(t)            true for marked tables (every array decode makes)
--   json.array_mt               the marking metatable
--
-- Options (all optional):
--   depth = n        maximum nesting of arrays/objects, 1..10000 (default 1000);
--                    deeper input is an error, distinct from a cycle on encode
--   utf8 = "error"   invalid UTF-8 (and, on decode, lone \u surrogates) is an error
--        | "replace" ... or becomes U+FFFD
--   big = "float"    decode only: an integer too big to hold exactly becomes the
--       | "string"   nearest float (default), its decimal text, or an error
--       | "error"
--
-- The rules (see spec/json/ for each one exercised):
-- Numbers. Lua 5.3/5.4 integers encode as integers; floats in the shortest text
--   that reads back to the same double, always with a '.' or an exponent
--   (1.0 -> "1.0", -0.0 -> "-0.0"), so decode gives back a float. On 5.1, 5.2
--   and LuaJIT integral numbers within +-2^53 encode as integers (-0 as "-0"),
--   others in shortest round-trip form. NaN and +-inf raise. Decode: a number
--   without '.'/exponent is an integer (5.3+: lua_Integer when it fits int64;
--   5.1/5.2/LuaJIT: exact when |n| <= 2^53); beyond that the `big` option
--   decides. Numbers overflowing a double (1e400) are an error. The text is
--   locale-independent in both directions.
-- Strings. '"', '\' and control characters are escaped ("\n" or "\u00XX");
--   '/' and valid UTF-8 pass through; invalid UTF-8 raises with its byte offset
--   (or is replaced). \u escapes decode to UTF-8, surrogate pairs included.
-- Tables. A marked table encodes t[1..#t] as an array (nil -> null, other keys
--   ignored). An unmarked table whose keys are exactly 1..n (n >= 1) is an
--   array; any other table is an object, {} included. Object keys: strings as
--   they are, numbers as their decimal text (a table mixing 1..n and string
--   keys, or a sparse one, is an object with "1", "2", ... keys); other key
--   types raise naming the type. Functions, userdata (but null), threads raise
--   naming the type and the path ("cannot encode function at .a.b[3]"); a
--   table that contains itself raises "cycle detected at ...". Access is raw:
--   no __index, __pairs or __tojson.
-- Decode. Strict RFC 8259: one value, surrounding whitespace allowed,
--   anything after it is an error; duplicate keys: the last wins. err.offset is
--   the 1-based byte where the problem is (string.sub(text, err.offset) starts
--   there); err.message says what was expected and what was found.
local core = require "espipe.core"
local errors = require "espipe.client.errors"

local c_decode = core.json_decode
local array_mt = core.json_array_mt

local M = {
  null = core.json_null,
  array_mt = array_mt,
  encode = core.json_encode,
}

function M.decode(text, opts)
  local value, message, offset = c_decode(text, opts)
  if value ~= nil then
    return value
  end
  return nil, errors.new{ kind = "json", message = message, offset = offset }
end

function M.array(t)
  if t == nil then
    return setmetatable({}, array_mt)
  end
  if type(t) ~= "table" then
    error("json.array expects a table, got " .. type(t), 2)
  end
  local mt = getmetatable(t)
  if mt ~= nil and mt ~= array_mt then
    error("json.array: the table already has a metatable", 2)
  end
  return setmetatable(t, array_mt)
end

function M.is_array(t)
  return type(t) == "table" and getmetatable(t) == array_mt
end

return M
