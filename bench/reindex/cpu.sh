#!/bin/sh
# Client CPU (user + sys) per 1M documents of espipe reindex, passthrough and
# with bench/reindex/transform.lua, source on one dev server, destination on
# a blackhole dev server (so the figure is the client's alone): RUNS runs of
# each case for each espipe given, the espipes alternating run by run, so a
# change of load on the shared machine falls on all of them.
#   sh bench/reindex/cpu.sh [N=200000] [RUNS=3] [espipe...=bin/espipe]
set -eu
cd "$(dirname "$0")/../.."
N=${1:-200000}
RUNS=${2:-3}
shift 2 2>/dev/null || shift $#
[ $# -gt 0 ] || set -- bin/espipe
. bench/reindex/setup.sh
echo "N = $N, load average $(cut -d' ' -f1-3 /proc/loadavg) before, client CPU s per 1M docs (docs/s) per run:"
one() { # espipe, case, reindex options...  -> appends to $TMP/<case>.<espipe number>
    bin=$1; case=$2; shift 2
    /usr/bin/time -f "%e %U %S" -o "$TMP/time" lua5.4 "$bin" reindex src dst --quiet --no-refresh \
        --slices 2 --source-url "$SRC_URL" --dest-url "$DEST_URL" --dead-letter "$TMP/dl" "$@" \
        >/dev/null 2>"$TMP/err" || { echo "$bin $case FAILED: $(tail -n 3 "$TMP/err")"; exit 1; }
    awk -v n="$N" '{ printf " %.2f (%.0f)", ($2 + $3) * 1000000 / n, n / $1 }' "$TMP/time" >> "$TMP/$case.$k"
}
for run in $(seq "$RUNS"); do
    k=0
    for bin in "$@"; do
        k=$((k + 1))
        one "$bin" passthrough
        one "$bin" transform --transform bench/reindex/transform.lua
    done
done
k=0
for bin in "$@"; do
    k=$((k + 1))
    for case in passthrough transform; do echo "$bin $case:$(cat "$TMP/$case.$k")"; done
done
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) after"
