#!/bin/sh
# Shard-aware bulk: plain, pre-sorted and shard-direct bulk against a 3-node
# dev server holding a 6-shard index (not blackhole: the server must route
# each document to count what it forwards).
#   sh bench/bulk/run_shards.sh [N=200000]
# CAPACITY=SPEC runs the server with --capacity SPEC (its nodes= must be 3),
# so grouping by shard shows up as throughput (bench/adaptive).
# INSTR=1 runs the client under callgrind and adds its instructions per
# document (client CPU that the loaded machine does not blur; slow).
set -eu
cd "$(dirname "$0")/../.."
N=${1:-200000}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/espipe-bench.XXXXXX")
# a random port may be taken: try a few
for try in 1 2 3 4 5; do
    PORT=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom) % 30000 ))
    if bin/espipe serve --nodes 3 ${CAPACITY:+--capacity "$CAPACITY"} --port "$PORT" --daemon --pid-file "$TMP/serve.pid" >/dev/null 2>"$TMP/serve.err"; then break; fi
    [ "$try" = 5 ] && { cat "$TMP/serve.err"; rm -rf "$TMP"; exit 1; }
done
cleanup() {
    bin/espipe serve --stop --pid-file "$TMP/serve.pid" >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
printf "%d documents, 3 nodes from port %d, 6 shards\n" "$N" "$PORT"
printf "%-10s %8s %9s %10s %9s %12s %10s %9s%s\n" mode docs wall_s docs/s forwarded fwd/doc shards/req cpu_s/1M \
    "${INSTR:+ instr/doc}"
for mode in ${MODES:-plain presorted windowed direct}; do
    if [ -n "${INSTR:-}" ]; then
        /usr/bin/time -f "%U %S" -o "$TMP/time" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
            lua5.4 bench/bulk/shard_aware.lua "http://127.0.0.1:$PORT" "$N" "$mode" > "$TMP/out" 2>"$TMP/vg"
        instr=$(sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' "$TMP/vg")
    else
        /usr/bin/time -f "%U %S" -o "$TMP/time" lua5.4 bench/bulk/shard_aware.lua "http://127.0.0.1:$PORT" "$N" "$mode" > "$TMP/out"
        instr=
    fi
    set -- $(cat "$TMP/out") $(cat "$TMP/time")
    awk -v m="$1" -v n="$2" -v e="$3" -v r="$4" -v f="$5" -v fd="$6" -v sr="$7" -v u="$8" -v s="$9" -v i="$instr" 'BEGIN {
        printf "%-10s %8d %9.2f %10.0f %9d %12.4f %10.2f %9.2f", m, n, e, r, f, fd, sr, (u + s) * 1000000 / n
        if (i != "") printf " %10.0f", i / n
        printf "\n" }'
done
