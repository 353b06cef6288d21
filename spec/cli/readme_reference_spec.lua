-- README's CLI reference agrees with the commands: its copy of every --help
-- is current (make cli-reference writes it), and each flag its prose names is
-- one some command parses.
local help = require "cli.help_support"
local pkg = require "packaging.support"

-- the text of each "## " section whose heading matches one of the patterns
-- (up to the next "## " heading; its "### " subsections included)
local function sections(text, patterns)
  local out, starts = {}, {}
  for pos in ("\n" .. text):gmatch("\n()## ") do starts[#starts + 1] = pos - 1 end
  starts[#starts + 1] = #text + 1
  for i = 1, #starts - 1 do
    local heading, body = text:sub(starts[i], starts[i + 1] - 1):match("^## ([^\n]*)\n(.*)$")
    for _, p in ipairs(patterns) do
      if heading and heading:find(p) then out[heading] = body end
    end
  end
  return out
end

describe("README's CLI reference", function()
  local readme = pkg.read("README.md")

  it("holds each command's current --help (make cli-reference)", function()
    local ok, out = pkg.sh("lua5.4 .ci/cli-reference --check")
    assert(ok, out)
  end)

  it("names only flags some command parses", function()
    local all = { ["--help"] = "boolean", ["--version"] = "boolean" }
    for _, name in ipairs(help.commands) do
      for flag, kind in pairs(help.parsed(require("espipe.cli." .. name))) do all[flag] = kind end
    end
    local found = sections(readme, { "^The `espipe` command", "^`espipe serve`" })
    assert.is_not_nil(found["The `espipe` command"], "README has no section '## The `espipe` command'")
    for heading, body in pairs(found) do
      assert.same({}, help.missing(help.named(body, all), all), "flags README's '" .. heading .. "' names")
    end
  end)
end)
