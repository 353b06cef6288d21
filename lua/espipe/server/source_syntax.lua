-- Whether a document source is one JSON object, as Elasticsearch's document
-- parser decides before it maps anything; the stored bytes are only ever
-- returned verbatim, so what ES refuses must be refused here, item by item.
--
--   source_syntax.check(src) -> nil | 400, cause   (the whole source parsed)
--   source_syntax.screen(src) -> the same, parsing only what looks wrong
--
-- cause is ES 8's document_parsing_exception, "[1:col] failed to parse: ..."
-- with the parser's own error as caused_by: Jackson's "Unrecognized token"
-- (json_parse_exception), "Malformed content, must start with an object" and
-- "Malformed content, found extra data after parsing: <TOKEN>"
-- (DocumentParser's validateStart / validateEnd).
local json = require("espipe.server.json")

local M = {}

local find, byte, match, format = string.find, string.byte, string.match, string.format

local ok_cjson, cjson = pcall(require, "cjson")
local decode = ok_cjson and cjson.decode or function(s)
  local v, err = json.decode(s)
  if v == nil then error(err, 0) end
  return v
end

-- lua-cjson's token names -> Jackson's
local TOKENS = { T_OBJ_BEGIN = "START_OBJECT", T_ARR_BEGIN = "START_ARRAY", T_STRING = "VALUE_STRING",
                 T_NUMBER = "VALUE_NUMBER", T_BOOLEAN = "VALUE_BOOLEAN", T_NULL = "VALUE_NULL" }

local LITERALS = { ["true"] = true, ["false"] = true, ["null"] = true }

local function failure(at, ctype, creason)
  return 400, { type = "document_parsing_exception", reason = format("[1:%d] failed to parse: %s", at, creason),
                caused_by = { type = ctype, reason = creason } }
end

local function unrecognized(src, at)
  local word = match(src, "^[%w_$]+", at) or src:sub(at, at)
  return failure(at, "json_parse_exception", "Unrecognized token '" .. word .. "': was expecting (JSON String, "
    .. "Number, Array, Object or token 'null', 'true' or 'false')")
end

-- The bulk fast path's screen, cheap enough for every item (two byte
-- reads; even one plain find over the source cost 3% of the fast path's
-- instructions): nil when src starts with "{" and ends with "}", otherwise
-- M.check decides. What the screen lets through unexamined is a source
-- malformed between its outer braces ({"a":}, or two objects {..}{..}):
-- refused on indices with explicit mappings (M.check runs there), stored
-- on the dynamic fast path.
function M.screen(src)
  local n = #src
  if byte(src, 1) ~= 123 or byte(src, n) ~= 125 then
    return M.check(src) -- (a source with blanks around it too: rare, and parsed in full)
  end
  return nil
end

function M.check(src)
  local first = find(src, "[^ \t\r\n]")
  if not first then return failure(1, "illegal_argument_exception", "Malformed content, must start with an object") end
  if byte(src, first) ~= 123 then -- not "{"
    local word = match(src, "^[%a_][%w_]*", first)
    if word and not LITERALS[word] then return unrecognized(src, first) end
    return failure(first, "illegal_argument_exception", "Malformed content, must start with an object")
  end
  local ok, err = pcall(decode, src)
  if ok then return nil end
  err = tostring(err)
  local found, at = match(err, "^Expected the end but found (.-) at character (%d+)")
  if found then
    at = tonumber(at)
    if TOKENS[found] then
      return failure(at, "illegal_argument_exception", "Malformed content, found extra data after parsing: "
        .. TOKENS[found])
    end
    return unrecognized(src, at)
  end
  return failure(tonumber(match(err, "at character (%d+)")) or first, "json_parse_exception", err)
end

return M
