#!/bin/sh
# Reindex throughput: espipe reindex (passthrough and with a transform)
# against elasticsearch-py helpers.reindex and a hand-written client:scan +
# bulk_indexer loop, same dev server, same run. Each client runs under
# /usr/bin/time: docs/s from wall time, client CPU (user+sys) per 1M docs.
#   make && sh bench/reindex/run.sh [N=200000]
set -eu
cd "$(dirname "$0")/../.."
N=${1:-200000}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/espipe-bench.XXXXXX")
port=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 30000))
bin/espipe serve --daemon --port "$port" --pid-file "$tmp/pid" >/dev/null
url=http://127.0.0.1:$port
trap 'kill $(cat "$tmp/pid") 2>/dev/null; rm -rf "$tmp"' EXIT INT TERM
lua5.4 examples/sample_logs.lua "$N" > "$tmp/docs.ndjson"
curl -s -XPUT -H 'Content-Type: application/json' "$url/src" -d '{"settings":{"number_of_shards":2}}' >/dev/null
bin/espipe load "$tmp/docs.ndjson" --index src --id-field request_id --quiet --url "$url"
curl -s -XPOST "$url/src/_refresh" >/dev/null

measure() { # name, command...
  name=$1; shift
  /usr/bin/time -f "%e %U %S" -o "$tmp/time" "$@" 2>>"$tmp/log" >/dev/null
  read -r wall user sys < "$tmp/time"
  echo "$name $wall $user $sys" | awk -v n="$N" '{ printf "| %s | %.0f | %.2f |\n", $1, n / $2, ($3 + $4) * 1000000 / n }'
}

echo "N = $N documents, $(wc -c < "$tmp/docs.ndjson") bytes of NDJSON"
echo "| client | docs/s | CPU s / 1M docs |"
echo "| --- | --- | --- |"
measure espipe_reindex_passthrough bin/espipe reindex src d1 --slices 2 --quiet --source-url "$url"
measure espipe_reindex_transform bin/espipe reindex src d2 --slices 2 --transform bench/reindex/transform.lua --quiet --source-url "$url"
measure espipe_scan_bulk_loop lua5.4 bench/reindex/scan_bulk_loop.lua "$url" src d3
measure py_helpers_reindex /usr/bin/python3 bench/reindex/py_reindex.py "$url" src d4
for i in d1 d2 d3 d4; do
  curl -s -XPOST "$url/$i/_refresh" >/dev/null
  printf '%s: %s\n' "$i" "$(curl -s "$url/$i/_count")" >&2
done
