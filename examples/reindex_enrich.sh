#!/bin/sh
# Reindex the monthly log indices into one enriched index (see enrich.lua),
# 2 slices, shard pre-sort, destination tuned during the copy, resumable.
#   ES_URL=... examples/reindex_enrich.sh SRC DEST [CHECKPOINT]
set -eu
cd "$(dirname "$0")/.."
bin/espipe reindex "$1" "$2" --transform examples/enrich.lua --slices 2 --presort --tune-dest \
  ${3:+--checkpoint "$3"} --source-url "${ES_URL:-http://127.0.0.1:9200}" ${ESPIPE_FLAGS:-}
