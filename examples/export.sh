#!/bin/sh
# Export the 5xx requests of an index to rotated, gzip-compressed CSV files
# with a manifest.
#   ES_URL=... examples/export.sh INDEX DIR
set -eu
cd "$(dirname "$0")/.."
bin/espipe export "$1" --to "$2" --format csv --compress gzip --file-bytes 20000 \
  --query '{"range":{"status":{"gte":500}}}' --fields '@timestamp,host,path,status,country.region' \
  --url "${ES_URL:-http://127.0.0.1:9200}" ${ESPIPE_FLAGS:-}
