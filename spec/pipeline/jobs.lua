-- Running espipe commands as real processes from the pipeline specs.
local S = require "pipeline.support"

local M = {}

M.bin = (os.getenv("ESPIPE_ROOT") or ".") .. "/bin/espipe"


-- os.execute's exit code on every Lua version
function M.exec(cmd)
  local a, _, c = os.execute(cmd)
  if type(a) == "number" then return math.floor(a / 256) end
  return c
end

function M.espipe(args, env)
  local dir = S.tmpdir()
  local code = M.exec((env or "") .. " " .. M.bin .. " " .. args .. " >" .. S.q(dir .. "/out") .. " 2>" .. S.q(dir .. "/err"))
  local out, err = S.read(dir .. "/out"), S.read(dir .. "/err")
  S.remove_dir(dir) -- now: not every spec that runs a job calls S.cleanup()
  return code, out, err
end

-- Starts bin/espipe args in the background; returns its pid (the Lua process).
function M.spawn(args, log)
  local p = io.popen("(exec " .. M.bin .. " " .. args .. " >" .. S.q(log) .. " 2>&1) & echo $!")
  local pid = tonumber(p:read("*l"))
  p:close()
  return pid
end

function M.alive(pid) return M.exec("kill -0 " .. pid .. " 2>/dev/null") == 0 end

-- Polls cond() until it returns a true value or seconds pass.
function M.wait_for(cond, seconds, what)
  local deadline = os.time() + (seconds or 30)
  while os.time() <= deadline do
    local v = cond()
    if v then return v end
    M.exec("sleep 0.05")
  end
  error("timed out waiting for " .. (what or "a condition"), 2)
end

-- NDJSON test documents with ids, written to path.
function M.write_docs(path, n, extra)
  local f = assert(io.open(path, "wb"))
  for i = 1, n do
    f:write(string.format('{"id":"doc-%d","n":%d,"big":9007199254740993,"tags":[],"nothing":null,"text":"caf\\u00e9 %d%s"}\n',
      i, i, i, extra or ""))
  end
  f:close()
end

-- A source index of n documents ({ n = i, s = "doc i" }, _id "<index>-i"),
-- on `shards` primaries (default 2), refreshed: what the job specs copy.
function M.seed(client, index, n, shards)
  assert(client.indices:create { index = index, settings = { number_of_shards = shards or 2 } })
  local bi = client:bulk_indexer { index = index, batch_docs = 500 }
  for i = 1, n do bi:index({ n = i, s = "doc " .. i }, { id = index .. "-" .. i }) end
  local ok = bi:close().ok
  assert(ok == n, "seeded " .. tostring(ok) .. " of " .. n .. " documents")
  assert(client:refresh { index = index })
end

-- id -> decoded _source for a whole index,
-- read with the client's own scan (not the pipelines' reader).
function M.dump(client, index)
  client:refresh { index = index }
  local out, n = {}, 0
  for hit in client:scan(index, nil, { size = 500 }) do
    out[hit._id] = hit._source
    n = n + 1
  end
  return out, n
end

return M
