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
-- lua-cjson is used only by `espipe serve`, which runs inside Debian's nginx
-- and loads Debian's lua-cjson there (apt: nginx libnginx-mod-http-lua
-- lua-resty-core lua-cjson); the library itself has its own JSON codec.
dependencies = {
  "lua >= 5.1",
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
    ["espipe.bulk"] = "lua/espipe/bulk.lua",
    ["espipe.bulk_indexer"] = "lua/espipe/bulk_indexer.lua",
    ["espipe.bulk_indexer_shards"] = "lua/espipe/bulk_indexer_shards.lua",
    ["espipe.cli.args"] = "lua/espipe/cli/args.lua",
    ["espipe.cli.demo"] = "lua/espipe/cli/demo.lua",
    ["espipe.cli.export"] = "lua/espipe/cli/export.lua",
    ["espipe.cli"] = "lua/espipe/cli/init.lua",
    ["espipe.cli.load"] = "lua/espipe/cli/load.lua",
    ["espipe.cli.reindex"] = "lua/espipe/cli/reindex.lua",
    ["espipe.cli.route"] = "lua/espipe/cli/route.lua",
    ["espipe.cli.serve"] = "lua/espipe/cli/serve.lua",
    ["espipe.client"] = "lua/espipe/client.lua",
    ["espipe.client.indices"] = "lua/espipe/client/indices.lua",
    ["espipe.client.url"] = "lua/espipe/client/url.lua",
    ["espipe.errors"] = "lua/espipe/errors.lua",
    ["espipe.options"] = "lua/espipe/options.lua",
    ["espipe"] = "lua/espipe/init.lua",
    ["espipe.json"] = "lua/espipe/json.lua",
    ["espipe.ngx.log_shipper"] = "lua/espipe/ngx/log_shipper.lua",
    ["espipe.parquet"] = "lua/espipe/parquet.lua",
    ["espipe.parquet.schema"] = "lua/espipe/parquet/schema.lua",
    ["espipe.pipeline.checkpoint"] = "lua/espipe/pipeline/checkpoint.lua",
    ["espipe.pipeline.cli_common"] = "lua/espipe/pipeline/cli_common.lua",
    ["espipe.pipeline.codec"] = "lua/espipe/pipeline/codec.lua",
    ["espipe.pipeline.csv"] = "lua/espipe/pipeline/csv.lua",
    ["espipe.pipeline.deadletter"] = "lua/espipe/pipeline/deadletter.lua",
    ["espipe.pipeline.export"] = "lua/espipe/pipeline/export.lua",
    ["espipe.pipeline.index_pattern"] = "lua/espipe/pipeline/index_pattern.lua",
    ["espipe.pipeline.lines"] = "lua/espipe/pipeline/lines.lua",
    ["espipe.pipeline.load"] = "lua/espipe/pipeline/load.lua",
    ["espipe.pipeline.pit_pages"] = "lua/espipe/pipeline/pit_pages.lua",
    ["espipe.pipeline.presort"] = "lua/espipe/pipeline/presort.lua",
    ["espipe.pipeline.progress"] = "lua/espipe/pipeline/progress.lua",
    ["espipe.pipeline.reindex"] = "lua/espipe/pipeline/reindex.lua",
    ["espipe.pipeline.tune"] = "lua/espipe/pipeline/tune.lua",
    ["espipe.pipeline.writer"] = "lua/espipe/pipeline/writer.lua",
    ["espipe.routing"] = "lua/espipe/routing.lua",
    ["espipe.scan"] = "lua/espipe/scan.lua",
    ["espipe.server.api_bulk"] = "lua/espipe/server/api_bulk.lua",
    ["espipe.server.api_docs"] = "lua/espipe/server/api_docs.lua",
    ["espipe.server.api_indices"] = "lua/espipe/server/api_indices.lua",
    ["espipe.server.api_info"] = "lua/espipe/server/api_info.lua",
    ["espipe.server.api_search"] = "lua/espipe/server/api_search.lua",
    ["espipe.server.app"] = "lua/espipe/server/app.lua",
    ["espipe.server.chaos"] = "lua/espipe/server/chaos.lua",
    ["espipe.server.cluster"] = "lua/espipe/server/cluster.lua",
    ["espipe.server.es_errors"] = "lua/espipe/server/es_errors.lua",
    ["espipe.server.filter_path"] = "lua/espipe/server/filter_path.lua",
    ["espipe.server.index_names"] = "lua/espipe/server/index_names.lua",
    ["espipe.server.gzip"] = "lua/espipe/server/gzip.lua",
    ["espipe.server.json"] = "lua/espipe/server/json.lua",
    ["espipe.server.mapping"] = "lua/espipe/server/mapping.lua",
    ["espipe.server.nginx_conf"] = "lua/espipe/server/nginx_conf.lua",
    ["espipe.server.params"] = "lua/espipe/server/params.lua",
    ["espipe.server.persist"] = "lua/espipe/server/persist.lua",
    ["espipe.server.query"] = "lua/espipe/server/query.lua",
    ["espipe.server.router"] = "lua/espipe/server/router.lua",
    ["espipe.server.routing"] = "lua/espipe/server/routing.lua",
    ["espipe.server.search_context"] = "lua/espipe/server/search_context.lua",
    ["espipe.server.stats"] = "lua/espipe/server/stats.lua",
    ["espipe.server.writes"] = "lua/espipe/server/writes.lua",
    ["espipe.shard_map"] = "lua/espipe/shard_map.lua",
    ["espipe.transport.curl"] = "lua/espipe/transport/curl.lua",
    ["espipe.transport"] = "lua/espipe/transport/init.lua",
    ["espipe.transport.ngx"] = "lua/espipe/transport/ngx.lua",
    ["espipe.core"] = {
      sources = {
        "csrc/bulk.c",
        "csrc/bulk_response.c",
        "csrc/compat.c",
        "csrc/core.c",
        "csrc/json_decode.c",
        "csrc/json_encode.c",
        "csrc/json_lua.c",
        "csrc/json_number.c",
        "csrc/murmur3.c",
        "csrc/routing.c",
        "csrc/search_response.c",
        "csrc/strbuf.c",
        "csrc/stream_codec.c",
        "csrc/utf8.c",
      },
      incdirs = { "csrc" },
      defines = { "_POSIX_C_SOURCE=200809L" },
      libraries = { "z", "zstd" },
    },
    ["espipe.curl_multi"] = {
      sources = {
        "csrc/compat.c",
        "csrc/curl/curl_codes.c",
        "csrc/curl/curl_multi.c",
        "csrc/curl/gzip_body.c",
        "csrc/curl/transfer.c",
        "csrc/strbuf.c",
      },
      incdirs = { "csrc" },
      defines = { "_POSIX_C_SOURCE=200809L" },
      libraries = { "curl", "z" },
    },
    ["espipe.parquet_writer"] = {
      sources = {
        "csrc/compat.c",
        "csrc/json_decode.c",
        "csrc/json_encode.c",
        "csrc/json_number.c",
        "csrc/parquet/codec.c",
        "csrc/parquet/coerce.c",
        "csrc/parquet/datetime.c",
        "csrc/parquet/dict.c",
        "csrc/parquet/encoding.c",
        "csrc/parquet/page_reader.c",
        "csrc/parquet/parquet_lua.c",
        "csrc/parquet/thrift.c",
        "csrc/parquet/writer.c",
        "csrc/strbuf.c",
        "csrc/utf8.c",
      },
      incdirs = { "csrc" },
      defines = { "_POSIX_C_SOURCE=200809L" },
      libraries = { "snappy", "zstd", "z" },
    },
  },
  install = {
    bin = { espipe = "bin/espipe" },
  },
}
test = {
  type = "command",
  command = "make test",
}
