-- What the help specs compare: the flags a command parses (its `flags`
-- table, given to args.parse), the flags its --help text names, and the
-- flags README's CLI reference names. Flags are "--name" strings; a boolean
-- may be written --name or --no-name (args.parse accepts both).
local M = {}

M.commands = require("espipe.cli").commands

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

-- "--name" -> kind, from a command module's flags table (keys use _ or -)
function M.parsed(cmd)
  local out = {}
  for key, kind in pairs(cmd.flags) do
    out["--" .. key:gsub("_", "-")] = (kind == "boolean" or kind == "bool") and "boolean" or "value"
  end
  return out
end

local is_command = set_of(M.commands)

-- what text says about other programs' flags: `curl --cacert ...`, and
-- another command's flag named as such ("formats as load's --index-pattern")
local function own_words(text)
  text = text:gsub("curl [^\n`]*", "")
  return (text:gsub("(%w+)'s %-%-[%w%-]+", function(cmd)
    if is_command[cmd] then return "" end
  end))
end

-- every --flag token in text, with --no-x read as --x when x is a boolean of known
function M.named(text, known)
  text = own_words(text)
  local out = {}
  for flag in text:gmatch("%-%-(%a[%w%-]*%w)") do
    local name = "--" .. flag
    local positive = name:match("^%-%-no%-(.+)$")
    if positive and known and known["--" .. positive] == "boolean" then name = "--" .. positive end
    out[#out + 1] = name
  end
  return set_of(out)
end

-- sorted keys of a set minus another
function M.missing(want, have)
  local out = {}
  for k in pairs(want) do if not have[k] then out[#out + 1] = k end end
  table.sort(out)
  return out
end

function M.help_text(name, interp)
  return require("packaging.support").run((interp or "lua5.4") .. " bin/espipe " .. name .. " --help")
end

return M
