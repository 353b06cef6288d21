-- Helpers shared by the pipeline specs: temp paths that are removed again,
-- shell quoting, whole-file reads.
local M = {}

function M.q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

function M.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- The file's contents, or nil when there is no such file (yet).
function M.read_if(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

function M.write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- A fresh temporary directory; M.cleanup() removes every one made.
local made = {}
function M.tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p " .. M.q(p)))
  made[#made + 1] = p
  return p
end

-- Removes one directory M.tmpdir made, before M.cleanup().
function M.remove_dir(p)
  for i, q in ipairs(made) do
    if q == p then table.remove(made, i) break end
  end
  os.execute("rm -rf " .. M.q(p))
end

function M.cleanup()
  for _, p in ipairs(made) do os.execute("rm -rf " .. M.q(p)) end
  made = {}
end

function M.sh(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("*a")
  p:close()
  return out
end

function M.listdir(dir)
  local names = {}
  for name in M.sh("ls -A " .. M.q(dir)):gmatch("[^\n]+") do names[#names + 1] = name end
  table.sort(names)
  return names
end

return M
