#!/bin/sh
# Instructions per document of espipe reindex on the client alone: the
# whole client process under callgrind (start, scan, transform, bulk),
# source on one dev server, destination on a blackhole dev server.
# "start" is the whole count of a reindex of a 1-document index (what every
# figure includes once); the per-document figures subtract it.
#   sh bench/reindex/instructions.sh [N=20000] [espipe=bin/espipe]
#   CALLGRIND_OUT=DIR keeps the callgrind files (callgrind_annotate them).
set -eu
cd "$(dirname "$0")/../.."
N=${1:-20000}
BIN=${2:-bin/espipe}
. bench/reindex/setup.sh
curl -s -XPUT -H 'Content-Type: application/json' "$SRC_URL/one" -d '{}' >/dev/null
head -1 "$TMP/docs.ndjson" | bin/espipe load - --index one --quiet --url "$SRC_URL" --dead-letter "$TMP/load-dl"
curl -s -XPOST "$SRC_URL/one/_refresh" >/dev/null

START=0
count() { # name index command...  (prints instructions/doc beyond the start)
    name=$1; index=$2; shift 2
    out=${CALLGRIND_OUT:-$TMP}/cg.$name
    valgrind --tool=callgrind --callgrind-out-file="$out" "$@" > /dev/null 2> "$TMP/err" || {
        echo "$name FAILED: $(tail -3 "$TMP/err")"; return 0; }
    ir=$(sed -n 's/^summary: //p' "$out")
    if [ "$index" = one ]; then
        START=$ir
        printf "%-22s instructions %.0f\n" "$name" "$ir"
    else
        awk -v name="$name" -v n="$N" -v ir="$ir" -v s="$START" \
            'BEGIN { printf "%-22s instructions/doc %7.0f\n", name, (ir - s) / n }'
    fi
}
reindex() { # index, options...
    index=$1; shift
    echo lua5.4 "$BIN" reindex "$index" dst --quiet --no-refresh --slices 2 --source-url "$SRC_URL" \
        --dest-url "$DEST_URL" --dead-letter "$TMP/dl" "$@"
}
count start one $(reindex one)
count passthrough src $(reindex src)
count transform src $(reindex src --transform bench/reindex/transform.lua)
