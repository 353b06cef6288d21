#!/bin/sh
# Dev server search path: N documents (~350-byte sources, bodies of 20 000)
# loaded into a 2-shard index of `espipe serve`, then scanned match_all with
# pages of SIZE: PIT + search_after, scroll, and a 3-slice PIT scan
# (bench/server/scan.lua), with the nginx workers' CPU per document (user +
# system, from /proc; steadier than docs/s on a shared machine). Tunables: N
# (default 200000), SIZE (default 1000), MODES (default "pit scroll pit3").
set -eu
cd "$(dirname "$0")/../.."
N=${N:-200000}
SIZE=${SIZE:-1000}
MODES=${MODES:-pit scroll pit3}
work=$(mktemp -d "${TMPDIR:-/tmp}/espipe-bench-scan.XXXXXX")
pidfile="$work/serve.pid"
cleanup() {
    [ -s "$pidfile" ] && lua5.4 bin/espipe serve --stop --pid-file "$pidfile" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tries=0
while :; do
    port=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom) % 40000 ))
    if lua5.4 bin/espipe serve --daemon --port "$port" --pid-file "$pidfile" > "$work/serve.out" 2>&1; then
        break
    fi
    tries=$((tries + 1))
    [ $tries -lt 5 ] || { cat "$work/serve.out"; exit 1; }
done
url="http://127.0.0.1:$port"
curl -sf -o /dev/null -X PUT -H 'Content-Type: application/json' \
    -d '{"settings":{"number_of_shards":2,"refresh_interval":"-1"}}' "$url/scan"
left=$N b=0
while [ "$left" -gt 0 ]; do
    n=$left; [ "$n" -gt 20000 ] && n=20000
    b=$((b + 1))
    lua5.4 bench/server/make_body.lua "$work/body.ndjson" "$n" scan "b$b"
    curl -sf -o /dev/null -H 'Content-Type: application/x-ndjson' --data-binary "@$work/body.ndjson" "$url/_bulk"
    left=$((left - n))
done
rm -f "$work/body.ndjson"
curl -sf -o /dev/null -X POST "$url/scan/_refresh"
workers=$(ps -o pid= --ppid "$(cat "$pidfile")" | tr -s ' \n' ' ')
# shellcheck disable=SC2086
WORKERS=$workers CLK_TCK=$(getconf CLK_TCK) lua5.4 bench/server/scan.lua "$url" scan "$SIZE" $MODES
