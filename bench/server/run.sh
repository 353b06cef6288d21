#!/bin/sh
# Dev server throughput: _bulk bodies of ~350-byte documents posted over
# CONNS parallel connections (curl --parallel, one keep-alive connection
# each), against `espipe serve` storing in memory and with --blackhole.
# Prints docs/s for both. Tunables: DOCS (per body, default 20000 = ~7.5 MB),
# ROUNDS (bodies per connection, default 6), CONNS (default 4).
set -eu
cd "$(dirname "$0")/../.."
DOCS=${DOCS:-20000}
ROUNDS=${ROUNDS:-6}
CONNS=${CONNS:-4}
work=$(mktemp -d "${TMPDIR:-/tmp}/espipe-bench-server.XXXXXX")
pidfile="$work/serve.pid"
cleanup() {
    [ -s "$pidfile" ] && lua5.4 bin/espipe serve --stop --pid-file "$pidfile" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

i=1
while [ $i -le "$CONNS" ]; do
    lua5.4 bench/server/make_body.lua "$work/body$i.ndjson" "$DOCS" bench "c$i"
    i=$((i + 1))
done
bytes=$(wc -c < "$work/body1.ndjson")

free_port() {
    # a random port in 20000-59999 that nothing listens on (retried by start)
    echo $(( 20000 + $(od -An -N2 -tu2 /dev/urandom) % 40000 ))
}

run() { # $1 = label, rest = serve flags
    label=$1; shift
    tries=0
    while :; do
        port=$(free_port)
        if lua5.4 bin/espipe serve --daemon --port "$port" --pid-file "$pidfile" "$@" > "$work/serve.out" 2>&1; then
            break
        fi
        tries=$((tries + 1))
        [ $tries -lt 5 ] || { cat "$work/serve.out"; exit 1; }
    done
    url="http://127.0.0.1:$port/_bulk"
    # the request list: CONNS distinct bodies, ROUNDS times each
    : > "$work/curl.cfg"
    r=1
    while [ $r -le "$ROUNDS" ]; do
        c=1
        while [ $c -le "$CONNS" ]; do
            # `next` keeps curl from joining the bodies of successive transfers
            printf 'next\nurl = "%s"\ndata-binary = "@%s"\noutput = "/dev/null"\nheader = "Content-Type: application/x-ndjson"\nwrite-out = "%%{http_code}\\n"\n' \
                "$url" "$work/body$c.ndjson" >> "$work/curl.cfg"
            c=$((c + 1))
        done
        r=$((r + 1))
    done
    # warm-up: one body, so the index exists and the worker's code is loaded
    curl -s -o /dev/null -H 'Content-Type: application/x-ndjson' --data-binary "@$work/body1.ndjson" "$url"
    start=$(date +%s.%N)
    curl -s --no-progress-meter --parallel --parallel-max "$CONNS" -K "$work/curl.cfg" > "$work/codes"
    end=$(date +%s.%N)
    bad=$(grep -vc '^200$' "$work/codes" || true)
    n=$((ROUNDS * CONNS * DOCS))
    awk -v n="$n" -v s="$start" -v e="$end" -v l="$label" -v b="$bad" -v bytes="$bytes" -v conns="$CONNS" 'BEGIN {
        t = e - s
        printf "%-10s %8d docs in %6.2f s = %8.0f docs/s  (%.1f MB bodies, %d connections, non-200: %d)\n",
            l, n, t, n / t, bytes / 1048576, conns, b }'
    lua5.4 bin/espipe serve --stop --pid-file "$pidfile" >/dev/null
}

run storing
run blackhole --blackhole
