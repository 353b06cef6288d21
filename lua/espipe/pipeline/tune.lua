-- Destination tuning for a load: refresh_interval -1 and number_of_replicas 0
-- while documents flow, the previous values put back afterwards.
--
-- The previous values are first written to a state file (atomically), so
-- they survive the process: when the job ends normally it restores them and
-- removes the file; when it is killed (SIGTERM, Ctrl-C, kill -9) a watchdog
-- restores them (see watch), and a later run finding the file takes the
-- originals from it rather than from the (still tuned) index.
--
--   tune.apply(client, index, state_path, url) -> state | nil, err
--   tune.restore(client, state_path)           -> true | nil, err
--   tune.watch(pid, state_path, lua, espipe, url, args) -> starts the watchdog
--     (args: more arguments for `espipe reindex --restore`, e.g. TLS flags)
--   tune.restore_url(state)                    -> the URL to restore through
--
-- The state file holds the URL without credentials; the watchdog gets the
-- full URL on its stdin (never on a command line, which `ps` shows).
local json = require "espipe.json"
local checkpoint = require "espipe.pipeline.checkpoint"
local errors = require "espipe.client.errors"

local M = {}

local TUNED = { refresh_interval = "-1", number_of_replicas = "0" }

local function current(client, index)
  local resp, err = client.indices:get_settings { index = index }
  if not resp then return nil, err end
  local entry = resp[index] or select(2, next(resp))
  local s = entry and entry.settings and entry.settings.index
  if not s then return nil, errors.new { kind = "config", message = "no settings returned for index " .. index } end
  return s
end

function M.apply(client, index, state_path, url)
  local state, lerr = checkpoint.load(state_path)
  if lerr and not M.empty(state_path) then return nil, lerr end
  if not state then
    local s, err = current(client, index)
    if not s then return nil, err end
    local original = {}
    for k in pairs(TUNED) do
      local v = s[k]
      if v == nil then v = json.null end -- unset: restoring null puts the default back
      original[k] = v
    end
    state = { index = index, url = require("espipe.client.url").redact(url), settings = original }
    local ok, serr = checkpoint.save(state_path, state)
    if not ok then return nil, serr end
  end
  local ok, err = client.indices:put_settings { index = index, body = { index = TUNED } }
  if not ok then return nil, err end
  return state
end

-- true for an existing empty file (a fresh os.tmpname())
function M.empty(path)
  local f = io.open(path, "rb")
  local size = f and f:seek("end")
  if f then f:close() end
  return size == 0
end

function M.restore(client, state_path)
  if M.empty(state_path) then os.remove(state_path) return true end
  local state, lerr = checkpoint.load(state_path)
  if lerr then return nil, lerr end
  if not state then return true end -- nothing tuned, or already restored
  local ok, err = client.indices:put_settings { index = state.index, body = { index = state.settings } }
  if not ok then return nil, err end
  checkpoint.remove(state_path)
  return true
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- This process's pid (the parent of the shell io.popen starts).
function M.pid()
  local p = io.popen("echo $PPID")
  local pid = p and tonumber(p:read("*l"))
  if p then p:close() end
  return pid
end

-- A detached shell that ignores SIGINT/SIGTERM/SIGHUP, waits for pid to
-- exit, then runs `espipe reindex --restore STATE` (a no-op when the job
-- already restored and removed the file). Lua cannot trap signals; this
-- process, which outlives the job, is what makes restoring reliable.
function M.watch(pid, state_path, lua, espipe, url, args)
  local more = {}
  for i, a in ipairs(args or {}) do more[i] = " " .. q(a) end
  -- The URL goes over the pipe on fd 3: a background list's stdin is
  -- /dev/null (POSIX), so reading fd 0 got nothing, and once the outer shell
  -- exited the write below could die of SIGPIPE. fd 3 is set up by the outer
  -- shell before it forks, so the watchdog holds the pipe until it has read.
  local cmd = "{ (trap '' INT TERM HUP; IFS= read -r ESPIPE_RESTORE_URL <&3; exec 3<&-; "
    .. "export ESPIPE_RESTORE_URL; "
    .. "while kill -0 " .. tonumber(pid) .. " 2>/dev/null; do sleep 1; done; "
    .. "exec " .. q(lua) .. " " .. q(espipe) .. " reindex --restore " .. q(state_path) .. table.concat(more)
    .. ") </dev/null >/dev/null 2>&1 & } 3<&0"
  local p = io.popen(cmd, "w")
  if not p then return nil end
  p:write(url or "", "\n")
  return p:close()
end

-- The state names its cluster without credentials: take them from the
-- watchdog's URL or $ES_URL when either is that same cluster.
function M.restore_url(state)
  local redact = require("espipe.client.url").redact
  local function same(u) return u and state.url and redact(u):gsub("/$", "") == state.url:gsub("/$", "") end
  for _, u in ipairs { os.getenv("ESPIPE_RESTORE_URL"), os.getenv("ES_URL") } do
    if u ~= "" and same(u) then return u end
  end
  return state.url or os.getenv("ES_URL") or "http://127.0.0.1:9200"
end

return M
