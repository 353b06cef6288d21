#!/bin/sh
# Month-based indices: load the sample logs into logs-YYYY.MM by @timestamp,
# with request_id as the document id (so a rerun overwrites, never duplicates).
#   ES_URL=http://127.0.0.1:9200 examples/month_load.sh [COUNT]
set -eu
cd "$(dirname "$0")/.."
LUA=${LUA:-lua5.4}
"$LUA" examples/sample_logs.lua "${1:-3000}" | gzip -c |
  bin/espipe load - --index-pattern 'logs-{@timestamp:%Y.%m}' --id-field request_id \
    --url "${ES_URL:-http://127.0.0.1:9200}" ${ESPIPE_FLAGS:-}
