-- A small option parser shared by the espipe commands.
--   local opts, rest = args.parse(argv, { port = "number", daemon = "boolean",
--                                        fields = "list", index = "string" })
-- "--name value", "--name=value", booleans as "--name" / "--no-name"; "list"
-- splits on commas; "--" ends the options. Returns opts and the positional
-- arguments, or nil and a message naming the offending argument.
local M = {}

local function convert(kind, name, value)
  if kind == "number" then
    local n = tonumber(value)
    if not n then return nil, "--" .. name .. " expects a number, got '" .. value .. "'" end
    return n
  elseif kind == "list" then
    local list = {}
    for item in value:gmatch("[^,]+") do list[#list + 1] = item end
    return list
  end
  return value
end

function M.parse(argv, spec)
  local opts, rest = {}, {}
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--" then
      for j = i + 1, #argv do rest[#rest + 1] = argv[j] end
      break
    elseif a:sub(1, 2) == "--" and #a > 2 then
      local name, value = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      local key = name:gsub("-", "_")
      local kind = spec[key]
      if kind == nil and name:sub(1, 3) == "no-" and spec[(name:sub(4):gsub("-", "_"))] == "boolean" then
        opts[(name:sub(4):gsub("-", "_"))] = false
      elseif kind == nil then
        return nil, "unknown option --" .. name
      elseif kind == "boolean" then
        if value then return nil, "--" .. name .. " takes no value" end
        opts[key] = true
      else
        if not value then
          i = i + 1
          value = argv[i]
          if value == nil then return nil, "--" .. name .. " needs a value" end
        end
        local v, err = convert(kind, name, value)
        if v == nil then return nil, err end
        opts[key] = v
      end
    else
      rest[#rest + 1] = a
    end
    i = i + 1
  end
  return opts, rest
end

return M
