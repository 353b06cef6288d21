-- Loaded by busted before any spec (see .busted): fail early, and clearly,
-- when the C module was not built for the Lua running the specs.
local ok, err = pcall(require, "espipe.core")
if not ok then
  error("espipe.core is not built for " .. (jit and jit.version or _VERSION)
    .. " (run `make` or `make LUA=<version>` first): " .. tostring(err), 0)
end
