# Sourced by bench/load/*.sh: a blackhole dev server on a free port (stopped,
# and $TMP removed, on exit) and $FILE, $N lines of examples/sample_logs.lua.
#   WORKERS=2 . bench/load/setup.sh   -> $TMP $URL $FILE
TMP=$(mktemp -d "${TMPDIR:-/tmp}/espipe-bench-load.XXXXXX")
for try in 1 2 3 4 5; do
    PORT=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom) % 30000 ))
    if bin/espipe serve --blackhole --port "$PORT" --workers "${WORKERS:-1}" --daemon \
            --pid-file "$TMP/serve.pid" >/dev/null 2>"$TMP/serve.err"; then break; fi
    [ "$try" = 5 ] && { cat "$TMP/serve.err"; rm -rf "$TMP"; exit 1; }
done
URL=http://127.0.0.1:$PORT
cleanup() {
    bin/espipe serve --stop --pid-file "$TMP/serve.pid" >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
FILE=$TMP/logs.ndjson
lua5.4 examples/sample_logs.lua "$N" > "$FILE"
PATTERN="logs-{@timestamp:%Y.%m}"
