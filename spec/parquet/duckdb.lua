-- Test helper: the two independent Parquet readers. SQL through DuckDB
-- (spec/support/duckdb_query.mjs), and whole files through parquet-wasm, the
-- Rust Arrow/Parquet implementation (spec/parquet/arrow_read.mjs). When a
-- reader cannot be run, it raises, so a spec that needs it fails with the
-- reason instead of passing quietly.
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

-- node script args < stdin_text: its decoded JSON output, or raises.
local function run_node(what, script, args, stdin_text)
  local input, output, errfile = os.tmpname(), os.tmpname(), os.tmpname()
  local f = assert(io.open(input, "wb"))
  f:write(stdin_text)
  f:close()
  local ok = exit_ok(os.execute(string.format(
    -- no sanitizer runtimes (make check preloads them) inside node
    "env -u LD_PRELOAD %s %s %s < %s > %s 2> %s", os.getenv("ESPIPE_NODE") or "node",
    script, args, input, output, errfile)))
  local out, err = read_all(output), read_all(errfile)
  os.remove(input)
  os.remove(output)
  os.remove(errfile)
  if not ok then
    error(what .. " failed (is node installed and `npm install --prefix spec/node` done?): "
      .. err, 3)
  end
  return json.decode(out)
end

--- query({ sql, ... }) -> { rows_of_sql1, ... } ; each row a table keyed by column.
-- BIGINT values come back as strings (exact), other numbers as numbers.
function M.query(statements)
  return run_node("DuckDB query", "spec/support/duckdb_query.mjs", "", json.encode(statements))
end

--- arrow({ path, ... }) -> { { schema = { {name, type} }, metadata = {k = v}, rows = { row } }, ... }
-- read by parquet-wasm; values in the same JSON forms as query's.
function M.arrow(paths)
  local quoted = {}
  for i, p in ipairs(paths) do quoted[i] = "'" .. p:gsub("'", "'\\''") .. "'" end
  return run_node("parquet-wasm read", "spec/parquet/arrow_read.mjs", table.concat(quoted, " "), "")
end

--- A SQL string literal.
function M.quote(s)
  return "'" .. s:gsub("'", "''") .. "'"
end

return M
