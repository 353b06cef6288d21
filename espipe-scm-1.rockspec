rockspec_format = "3.0"
package = "espipe"
version = "scm-1"
source = {
  url = "git+https://github.com/espipe/espipe.git",
}
description = {
  summary = "Move data into, through and out of Elasticsearch fast, from Lua",
  detailed = [[
espipe bulk-loads, re-indexes (with Lua enrichment), and exports Elasticsearch
data. A C core does the hot paths: an exact JSON codec, bulk NDJSON bodies,
Elasticsearch's Murmur3 shard routing, parallel HTTP through libcurl multi, and
Parquet writing. It includes `espipe serve`, an Elasticsearch 8 compatible
development server on nginx + Lua, and runs inside OpenResty.
]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1",
  "lua-cjson",
}
-- Library checks only: Debian keeps curl.h under the multiarch include dir,
-- where the compiler finds it but LuaRocks' header check does not.
external_dependencies = {
  CURL = { library = "curl" },
  ZLIB = { library = "z" },
  ZSTD = { library = "zstd" },
  SNAPPY = { library = "snappy" },
}
build = {
  type = "builtin",
  modules = {
    -- @MODULES@ (kept in sync with the tree by spec/packaging/rockspec_spec.lua)
  },
  install = {
    bin = { espipe = "bin/espipe" },
  },
}
test = {
  type = "command",
  command = "make test",
}
