-- luacheck over lua/, spec/, bench/, examples/, bin/ (run by `make check`).
std = "max"
max_line_length = false
-- The nginx-side modules run inside OpenResty.
files["lua/espipe/server"] = { globals = { "ngx" } }
files["lua/espipe/transport/ngx.lua"] = { globals = { "ngx" } }
files["lua/espipe/transport/init.lua"] = { read_globals = { "ngx" } }
files["lua/espipe/transport/phase.lua"] = { read_globals = { "ngx" } }
files["lua/espipe/ngx"] = { globals = { "ngx" } }
files["examples/openresty"] = { globals = { "ngx" } }
files["spec"] = { std = "+busted", globals = { "ngx" } }
files["bench/server"] = { globals = { "ngx" } }
