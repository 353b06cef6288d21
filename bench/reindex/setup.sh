# Sourced by bench/reindex/instructions.sh and bench/scale/*.sh: a source dev
# server holding $N documents of examples/sample_logs.lua in index "src"
# (2 shards) and a blackhole destination server (acknowledges without
# storing, so the figures are the client's), both stopped, and $TMP
# removed, on exit. $ESPIPE: the espipe that serves and loads (default bin/espipe).
#   N=20000 . bench/reindex/setup.sh   -> $TMP $SRC_URL $DEST_URL
TMP=$(mktemp -d "${TMPDIR:-/tmp}/espipe-bench-reindex.XXXXXX")
ESPIPE=${ESPIPE:-bin/espipe}
serve() { # name, serve options...  -> sets $PORT
    name=$1; shift
    for try in 1 2 3 4 5; do
        PORT=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom) % 30000 ))
        if bin/espipe serve --port "$PORT" --daemon --pid-file "$TMP/$name.pid" "$@" \
                >/dev/null 2>"$TMP/$name.err"; then return 0; fi
    done
    cat "$TMP/$name.err"
    return 1
}
cleanup() {
    for p in "$TMP"/*.pid; do
        [ -f "$p" ] && bin/espipe serve --stop --pid-file "$p" >/dev/null 2>&1
    done
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
serve source || exit 1
SRC_URL=http://127.0.0.1:$PORT
serve dest --blackhole --workers "${DEST_WORKERS:-1}" || exit 1
DEST_URL=http://127.0.0.1:$PORT
lua5.4 examples/sample_logs.lua "$N" > "$TMP/docs.ndjson"
curl -s -XPUT -H 'Content-Type: application/json' "$SRC_URL/src" -d '{"settings":{"number_of_shards":2}}' >/dev/null
bin/espipe load "$TMP/docs.ndjson" --index src --id-field request_id --quiet --url "$SRC_URL" \
    --dead-letter "$TMP/load-dl"
curl -s -XPOST "$SRC_URL/src/_refresh" >/dev/null
