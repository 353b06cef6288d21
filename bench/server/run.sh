#!/bin/sh
# Dev server throughput: _bulk bodies of ~350-byte documents posted over
# CONNS parallel connections (curl --parallel, one keep-alive connection
# each), against `espipe serve` storing in memory and with --blackhole.
# Prints docs/s for each and the nginx workers' CPU time per document
# (user + system; steadier than docs/s on a shared machine). Tunables: DOCS
# (per body, default 20000 = ~7.8 MB), ROUNDS (bodies per connection,
# default 6), CONNS (default 4), CLIENT
# (transport = bench/server/load.lua on espipe's C curl transport, the
# default when built; curl-cli = curl --parallel).
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

# the load generator: espipe's curl transport (C) when built, else curl --parallel
client=${CLIENT:-}
if [ -z "$client" ]; then
    if [ -f build/5.4/espipe/curl_multi.so ] && [ -f lua/espipe/transport/curl.lua ]; then
        client=transport
    else
        client=curl-cli
    fi
fi

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

# user + system CPU ticks of the nginx workers (children of the master)
server_ticks() {
    master=$(cat "$pidfile")
    ticks=0
    for p in $(ps -o pid= --ppid "$master"); do
        t=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)
        ticks=$((ticks + t))
    done
    echo "$ticks"
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
    # warm-up: one body, so the index exists and the worker's code is loaded
    curl -s -o /dev/null -H 'Content-Type: application/x-ndjson' --data-binary "@$work/body1.ndjson" "$url"
    requests=$((ROUNDS * CONNS))
    cpu0=$(server_ticks)
    if [ "$client" = transport ]; then
        set -- $(lua5.4 bench/server/load.lua "http://127.0.0.1:$port" "$requests" "$CONNS" "$work"/body*.ndjson)
        secs=$2 bad=$3
    else
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
        start=$(date +%s.%N)
        curl -s --no-progress-meter --parallel --parallel-max "$CONNS" -K "$work/curl.cfg" > "$work/codes"
        end=$(date +%s.%N)
        secs=$(awk -v s="$start" -v e="$end" 'BEGIN { print e - s }')
        bad=$(grep -vc '^200$' "$work/codes" || true)
    fi
    cpu1=$(server_ticks)
    n=$((ROUNDS * CONNS * DOCS))
    awk -v n="$n" -v t="$secs" -v l="$label" -v b="$bad" -v bytes="$bytes" -v conns="$CONNS" -v c="$client" \
        -v cpu=$((cpu1 - cpu0)) -v hz="$(getconf CLK_TCK)" 'BEGIN {
        printf "%-10s %8d docs in %6.2f s = %8.0f docs/s, server CPU %.2f us/doc  (%.1f MB bodies, %d connections, client %s, failed: %d)\n",
            l, n, t, n / t, cpu / hz * 1e6 / n, bytes / 1048576, conns, c, b }'
    lua5.4 bin/espipe serve --stop --pid-file "$pidfile" >/dev/null
}

run storing
run blackhole --blackhole
run bh-2wkrs --blackhole --workers 2
