-- Every command's --help names exactly the flags it accepts: each flag of the
-- table it gives args.parse is in its help, and each flag its help names is
-- in that table (--help itself is the dispatcher's).
local help = require "cli.help_support"

describe("espipe <command> --help", function()
  local interp = jit and "luajit" or "lua" .. _VERSION:match("%d+%.%d+")

  for _, name in ipairs(help.commands) do
    it("of " .. name .. " lists every flag it parses, and no other", function()
      local cmd = require("espipe.cli." .. name)
      assert(type(cmd.flags) == "table", "espipe.cli." .. name .. " has no flags table (the one given to args.parse)")
      local parsed = help.parsed(cmd)
      local text = help.help_text(name, interp)
      assert.matches("^usage: espipe " .. name, text)
      local named = help.named(text, parsed)
      named["--help"] = nil
      assert.same({}, help.missing(parsed, named), "flags " .. name .. " parses but its --help does not list")
      assert.same({}, help.missing(named, parsed), "flags " .. name .. "'s --help lists but it does not parse")
    end)
  end

  it("is what the flags table says also for booleans written --no-x", function()
    local named = help.named("  --no-refresh  do not\n  --url URL", { ["--refresh"] = "boolean" })
    assert.same({ ["--refresh"] = true, ["--url"] = true }, named)
  end)
end)
