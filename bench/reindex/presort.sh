#!/bin/sh
# Shard pre-sort: the same reindex into a 6-shard index on a 3-node dev
# server with and without --presort (2 slices, 500-doc requests); the dev
# server's /_espipe/stats give documents per shard per bulk request and the
# documents nodes had to forward to the node holding the shard.
#   make && sh bench/reindex/presort.sh [N=60000]
set -eu
cd "$(dirname "$0")/../.."
N=${1:-60000}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/espipe-bench.XXXXXX")
port=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 30000))
bin/espipe serve --daemon --nodes 3 --port "$port" --pid-file "$tmp/pid" >/dev/null
url=http://127.0.0.1:$port
trap 'kill $(cat "$tmp/pid") 2>/dev/null; rm -rf "$tmp"' EXIT INT TERM
lua5.4 examples/sample_logs.lua "$N" > "$tmp/docs.ndjson"
bin/espipe load "$tmp/docs.ndjson" --index src --id-field request_id --quiet --url "$url"
curl -s -XPOST "$url/src/_refresh" >/dev/null
stats() {
  curl -s "$url/_espipe/stats" | lua5.4 -e '
    package.path = "./lua/?.lua;" .. package.path; package.cpath = "./build/5.4/?.so;" .. package.cpath
    local s = require("espipe.json").decode(io.read("a"))
    local fwd = 0
    for _, n in pairs(s.nodes) do fwd = fwd + n.forwarded end
    print(s.bulk.items, s.bulk.shard_batches, fwd)'
}
echo "| run | bulk requests' docs | docs per shard per request | forwarded docs |"
echo "| --- | --- | --- | --- |"
for mode in plain presort; do
  curl -s -XPUT -H 'Content-Type: application/json' "$url/dst-$mode" -d '{"settings":{"number_of_shards":6}}' >/dev/null
  set -- $(stats); i0=$1 b0=$2 f0=$3
  flag=""; [ "$mode" = presort ] && flag=--presort
  bin/espipe reindex src "dst-$mode" --slices 2 --batch-docs 500 $flag --quiet --source-url "$url"
  set -- $(stats)
  echo "$mode $(($1 - i0)) $(($2 - b0)) $(($3 - f0))" | awk '{ printf "| %s | %d | %.1f | %d |\n", $1, $2, $2 / $3, $4 }'
done
