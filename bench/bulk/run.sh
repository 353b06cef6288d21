#!/bin/sh
# Bulk indexing: espipe vs peers, same documents, same server, same run.
#   sh bench/bulk/run.sh [N=1000000]
# Starts `espipe serve --blackhole` on a free port, runs every client under
# /usr/bin/time (wall, user+sys CPU, peak RSS of the client process) and
# prints one line per client. Needs `make`; the Node client needs
# `npm install --prefix spec/node`.
set -eu
cd "$(dirname "$0")/../.."
N=${1:-1000000}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/espipe-bench.XXXXXX")
# a random port may be taken: try a few
for try in 1 2 3 4 5; do
    PORT=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom) % 30000 ))
    if bin/espipe serve --blackhole --port "$PORT" --workers 2 --daemon --pid-file "$TMP/serve.pid" >/dev/null 2>"$TMP/serve.err"; then break; fi
    [ "$try" = 5 ] && { cat "$TMP/serve.err"; rm -rf "$TMP"; exit 1; }
done
URL=http://127.0.0.1:$PORT
cleanup() {
    bin/espipe serve --stop --pid-file "$TMP/serve.pid" >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

measure() { # name docs command...
    name=$1; n=$2; shift 2
    /usr/bin/time -f "%e %U %S %M" -o "$TMP/time" "$@" > "$TMP/out" 2>"$TMP/err" || {
        echo "$name FAILED: $(tail -3 "$TMP/err")"; return 0; }
    set -- $(cat "$TMP/time")
    awk -v name="$name" -v n="$n" -v e="$1" -v u="$2" -v s="$3" -v m="$4" 'BEGIN {
        printf "%-22s docs/s %9.0f  cpu s/1M %6.2f  peak RSS MB %6.1f  wall %6.2f\n",
            name, n / e, (u + s) * 1000000 / n, m / 1024, e }'
}

printf "%d documents, server %s (blackhole)\n" "$N" "$URL"
# gen_only: the same documents built and dropped, to tell generation from indexing
measure gen_only          "$N" lua5.4 bench/bulk/espipe_bulk.lua "$URL" "$N" gen
measure espipe_table      "$N" lua5.4 bench/bulk/espipe_bulk.lua "$URL" "$N" table
measure espipe_table_full "$N" lua5.4 bench/bulk/espipe_bulk.lua "$URL" "$N" table no
measure espipe_raw        "$N" lua5.4 bench/bulk/espipe_bulk.lua "$URL" "$N" raw
measure espipe_raw_full   "$N" lua5.4 bench/bulk/espipe_bulk.lua "$URL" "$N" raw no
measure espipe_rawpre      "$N" lua5.4 bench/bulk/espipe_bulk.lua "$URL" "$N" raw_pre
measure espipe_rawpre_full "$N" lua5.4 bench/bulk/espipe_bulk.lua "$URL" "$N" raw_pre no
# RSS must not grow with the document count: the same run at a fifth of N
N5=$(( N / 5 ))
measure espipe_table_full_N/5 "$N5" lua5.4 bench/bulk/espipe_bulk.lua "$URL" "$N5" table no
measure cjson_seq         "$N" lua5.4 bench/bulk/espipe_bulk.lua "$URL" "$N" cjson_seq
if lua5.4 -e 'require "socket"' 2>/dev/null; then
    measure cjson_socket  "$N" lua5.4 bench/bulk/cjson_socket.lua "$URL" "$N"
fi
measure py_bulk           "$N" /usr/bin/python3 bench/bulk/py_bulk.py "$URL" "$N" bulk
measure py_parallel       "$N" /usr/bin/python3 bench/bulk/py_bulk.py "$URL" "$N" parallel
if [ -d spec/node/node_modules/@elastic/elasticsearch ]; then
    measure node_bulk "$N" node bench/bulk/node_bulk.mjs "$URL" "$N"
fi
# The transport ceiling: the same documents pre-built as NDJSON bodies of
# 5000 documents, posted by the curl CLI, 4 in parallel (full responses, as
# the *_full lines ask for).
lua5.4 bench/bulk/make_ndjson.lua "$N" 5000 "$TMP/body" > "$TMP/bodies"
set --
while read -r f; do set -- "$@" --data-binary "@$f" -H "Content-Type: application/x-ndjson" "$URL/bench/_bulk" -o /dev/null --next; done < "$TMP/bodies"
measure curl_ceiling "$N" curl -sS -Z --parallel-max 4 "$@" -o /dev/null "$URL/"
