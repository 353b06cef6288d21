#!/bin/sh
# Scale-out on one machine: a reindex of N documents with a CPU-heavy Lua
# transform (bench/scale/transform.lua, ~30 us of pure Lua per document)
# into a blackhole dev server, as --workers 1, 2 and 4; --part 1/2 and
# --part 2/2 (each --workers 1) as two processes at once against --workers 2; and the seed-000
# recipe as the peer (elasticsearch-py scan + multiprocessing Pool(2) running
# transform.py + helpers.parallel_bulk, bench/scale/py_scale.py), same
# documents, same servers, same run. docs/s from wall time (the documents
# each client reported indexed / seconds); CPU = user + sys of the client
# and its children, per 1M documents.
#   make && sh bench/scale/run.sh [N=200000] [espipe=bin/espipe]
# An espipe without --workers / --part (before #18.1) runs the single-process
# case only; the rest are reported as not supported.
set -eu
cd "$(dirname "$0")/../.."
N=${1:-200000}
BIN=${2:-bin/espipe}
DEST_WORKERS=2
. bench/reindex/setup.sh
XFORM=bench/scale/transform.lua
supports() { lua5.4 "$BIN" reindex --help 2>/dev/null | grep -q -- "$1"; }

# name seconds user+sys docs  (one line of the table; docs/s kept for ratios)
row() {
    awk -v name="$1" -v e="$2" -v c="$3" -v docs="$4" -v n="$N" 'BEGIN {
        printf "| %s | %d | %.0f | %.2f |\n", name, docs, docs / e, c * 1000000 / n }'
    echo "$1 $(awk -v e="$2" -v d="$4" 'BEGIN { printf "%.1f", d / e }')" >> "$TMP/rates"
}

# espipe reindex into its own destination index: name, options...
espipe_run() {
    name=$1; shift
    /usr/bin/time -f "%e %U %S" -o "$TMP/time" lua5.4 "$BIN" reindex src "d-$name" --json --quiet \
        --no-refresh --source-url "$SRC_URL" --dest-url "$DEST_URL" --dead-letter "$TMP/dl-$name" \
        --transform "$XFORM" "$@" > "$TMP/out" 2> "$TMP/err" || {
        echo "| $name | FAILED: $(tail -n 2 "$TMP/err" | tr '\n' ' ') | | |"; return 0; }
    read -r wall user sys < "$TMP/time"
    docs=$(sed -n 's/.*"ok":\([0-9]*\).*/\1/p' "$TMP/out")
    row "$name" "$wall" "$(echo "$user + $sys" | bc)" "${docs:-0}"
}

# --part 1/2 and 2/2 (1-based) as two processes started together; wall = until both ended
parts_run() {
    start=$(date +%s.%N)
    pids=""
    for i in 1 2; do
        /usr/bin/time -f "%U %S" -o "$TMP/time.$i" lua5.4 "$BIN" reindex src d-parts --json --quiet \
            --no-refresh --workers 1 --part "$i/2" --source-url "$SRC_URL" --dest-url "$DEST_URL" \
            --dead-letter "$TMP/dl-part$i" --transform "$XFORM" > "$TMP/out.$i" 2> "$TMP/err.$i" &
        pids="$pids $!"
    done
    fail=0
    for pid in $pids; do wait "$pid" || fail=1; done
    end=$(date +%s.%N)
    [ "$fail" = 0 ] || {
        echo "| parts_1/2+2/2 | FAILED: $(cat "$TMP/err.1" "$TMP/err.2" | tail -n 2 | tr '\n' ' ') | | |"; return 0; }
    docs=0 cpu=0
    for i in 1 2; do
        docs=$((docs + $(sed -n 's/.*"ok":\([0-9]*\).*/\1/p' "$TMP/out.$i")))
        cpu=$(echo "$cpu + $(sed 's/ / + /' "$TMP/time.$i")" | bc)
    done
    row "parts_1/2+2/2" "$(echo "$end - $start" | bc)" "$cpu" "$docs"
}

py_run() {
    /usr/bin/time -f "%e %U %S" -o "$TMP/time" /usr/bin/python3 bench/scale/py_scale.py "$SRC_URL" src \
        "$DEST_URL" d-py > /dev/null 2> "$TMP/err" || { echo "| py | FAILED: $(tail -n 2 "$TMP/err" | tr '\n' ' ') | | |"; return 0; }
    read -r wall user sys < "$TMP/time"
    docs=$(sed -n 's/^py scale: ok=\([0-9]*\).*/\1/p' "$TMP/err")
    row "py_scan_pool2_parallel_bulk" "$wall" "$(echo "$user + $sys" | bc)" "${docs:-0}"
}

rate() { awk -v k="$1" '$1 == k { print $2 }' "$TMP/rates"; }
ratio() { # label, numerator row, denominator row
    a=$(rate "$2"); b=$(rate "$3")
    [ -n "$a" ] && [ -n "$b" ] && awk -v l="$1" -v a="$a" -v b="$b" 'BEGIN { printf "%s: %.2f\n", l, a / b }'
    return 0
}

: > "$TMP/rates"
echo "N = $N, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), espipe $BIN"
echo "| client | docs indexed | docs/s | client CPU s / 1M docs |"
echo "| --- | --- | --- | --- |"
if supports --workers; then
    espipe_run workers_1 --workers 1
    espipe_run workers_2 --workers 2
    espipe_run workers_4 --workers 4
else
    espipe_run workers_1
    echo "| workers_2, workers_4 | not supported by $BIN (no --workers) | | |"
fi
if supports --part; then parts_run; else echo "| parts_1/2+2/2 | not supported by $BIN (no --part) | | |"; fi
py_run
ratio "workers 2 / workers 1" workers_2 workers_1
ratio "workers 4 / workers 1" workers_4 workers_1
ratio "workers 2 / python Pool(2)" workers_2 py_scan_pool2_parallel_bulk
ratio "workers 1 / python Pool(2)" workers_1 py_scan_pool2_parallel_bulk
ratio "2 parts / workers 2" "parts_1/2+2/2" workers_2
