#!/bin/sh
# Load the sample logs through a batch transform that enriches each one from
# a lookup index (examples/enrich_batch.lua): the `hosts` index first, then
# the logs into logs-enriched, request_id as the document id.
#   ES_URL=http://127.0.0.1:9200 examples/load_enrich.sh [COUNT]
set -eu
cd "$(dirname "$0")/.."
LUA=${LUA:-lua5.4}
url="${ES_URL:-http://127.0.0.1:9200}"
# db-1 is left out on purpose: its documents are dead-lettered
printf '%s\n' '{"name":"web-1","team":"shop","datacenter":"fra"}' \
  '{"name":"web-2","team":"shop","datacenter":"ams"}' \
  '{"name":"web-3","team":"search","datacenter":"fra"}' |
  bin/espipe load - --index hosts --id-field name --url "$url" --quiet
"$LUA" examples/sample_logs.lua "${1:-3000}" |
  bin/espipe load - --index logs-enriched --id-field request_id --transform examples/enrich_batch.lua \
    --url "$url" ${ESPIPE_FLAGS:-}
