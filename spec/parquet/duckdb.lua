-- Test helper: run SQL through DuckDB (spec/support/duckdb_query.mjs) and
-- return the rows. When DuckDB cannot be run, it raises, so a spec that needs
-- it fails with the reason instead of passing quietly.
local json = require "espipe.json"

local M = {}

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

local function exit_ok(a, b, c)
  if type(a) == "number" then return a == 0 end -- Lua 5.1: the raw status
  return a == true and b == "exit" and c == 0
end

--- query({ sql, ... }) -> { rows_of_sql1, ... } ; each row a table keyed by column.
-- BIGINT values come back as strings (exact), other numbers as numbers.
function M.query(statements)
  local input, output, errfile = os.tmpname(), os.tmpname(), os.tmpname()
  local f = assert(io.open(input, "wb"))
  f:write(json.encode(statements))
  f:close()
  local ok = exit_ok(os.execute(string.format(
    -- no sanitizer runtimes (make check preloads them) inside node
    "env -u LD_PRELOAD %s spec/support/duckdb_query.mjs < %s > %s 2> %s", os.getenv("ESPIPE_NODE") or "node",
    input, output, errfile)))
  local out, err = read_all(output), read_all(errfile)
  os.remove(input)
  os.remove(output)
  os.remove(errfile)
  if not ok then
    error("DuckDB query failed (is node installed and `npm install --prefix spec/node` done?): "
      .. err, 2)
  end
  return json.decode(out)
end

--- A SQL string literal.
function M.quote(s)
  return "'" .. s:gsub("'", "''") .. "'"
end

return M
