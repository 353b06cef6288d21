-- Command dispatch for bin/espipe. Each command is a module espipe.cli.<name>
-- returning { summary = "...", usage = "...", run = function(args) -> exit code,
-- flags = the option table it parses (name -> kind), which usage lists }.
local M = {}

M.commands = { "serve", "load", "reindex", "export", "job", "indices", "count", "route", "demo" }

local function load_command(name)
  local ok, mod = pcall(require, "espipe.cli." .. name)
  if ok then return mod end
  if type(mod) == "string" and mod:find("module 'espipe.cli." .. name .. "' not found", 1, true) then
    return nil
  end
  error(mod, 0)
end

local function usage(out)
  out:write("usage: espipe <command> [options]\n\ncommands:\n")
  for _, name in ipairs(M.commands) do
    local cmd = load_command(name)
    if cmd then out:write(string.format("  %-9s %s\n", name, cmd.summary or "")) end
  end
  out:write("\n`espipe <command> --help` describes one command; `espipe --version` the version.\n")
end

-- "espipe 0.2.0 (Lua 5.4)": the version and the interpreter running it
-- (a LuaRocks wrapper picks the interpreter; this shows which one it picked)
function M.version()
  return require("espipe")._VERSION .. " (" .. (jit and jit.version or _VERSION) .. ")"
end

function M.main(argv)
  local name = argv[1]
  if name == nil or name == "-h" or name == "--help" or name == "help" then
    usage(name and io.stdout or io.stderr)
    return name and 0 or 2
  end
  if name == "--version" then
    io.stdout:write(M.version(), "\n")
    return 0
  end
  local cmd = load_command(name)
  if not cmd then
    io.stderr:write("espipe: unknown command '", name, "'\n")
    usage(io.stderr)
    return 2
  end
  local args = {}
  for i = 2, #argv do args[#args + 1] = argv[i] end
  if args[1] == "-h" or args[1] == "--help" then
    io.stdout:write(cmd.usage or cmd.summary or "", "\n")
    return 0
  end
  local code = cmd.run(args)
  return code or 0
end

return M
