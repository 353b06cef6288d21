#!/bin/sh
# Client CPU (user + sys) per 1M documents of espipe reindex, passthrough and
# with bench/reindex/transform.lua, source on one dev server, destination on a
# blackhole dev server (so the figure is the client's), RUNS runs each.
#   sh bench/reindex/cpu.sh [N=200000] [RUNS=3] [espipe=bin/espipe]
set -eu
cd "$(dirname "$0")/../.."
N=${1:-200000}
RUNS=${2:-3}
BIN=${3:-bin/espipe}
. bench/reindex/setup.sh
echo "N = $N, load average $(cut -d' ' -f1-3 /proc/loadavg)"
measure() { # name, reindex options...
    name=$1; shift
    line="$name"
    for run in $(seq "$RUNS"); do
        /usr/bin/time -f "%e %U %S" -o "$TMP/time" lua5.4 "$BIN" reindex src "dst$run" --quiet --no-refresh \
            --slices 2 --source-url "$SRC_URL" --dest-url "$DEST_URL" --dead-letter "$TMP/dl" "$@" \
            >/dev/null 2>"$TMP/err" || { echo "$name FAILED: $(tail -3 "$TMP/err")"; return 0; }
        line="$line $(awk -v n="$N" '{ printf "%.2f/%.0f", ($2 + $3) * 1000000 / n, n / $1 }' "$TMP/time")"
    done
    echo "$line"
}
echo "client CPU s per 1M docs / docs/s, per run:"
measure passthrough
measure transform --transform bench/reindex/transform.lua
