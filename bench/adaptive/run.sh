#!/bin/sh
# Adaptive concurrency and batch size against the dev server's capacity model:
# a sweep of static settings against `auto`, for a fast and a slow cluster,
# and a run whose capacity halves after 30 s.
#   sh bench/adaptive/run.sh [OUT_DIR]
# Env: SECONDS_STATIC (10), SECONDS_AUTO (30), SECONDS_CHANGE (60),
#      BATCHES ("1 2 5 10 20 40", MB), CONCS ("1 2 4 8 16"), MODELS ("fast slow"),
#      PHASES ("static auto change": run a part, e.g. static now and auto later
#      into the same OUT_DIR), MAX_INFLIGHT_MB (160: static settings with more
#      than concurrency x batch MB in flight are skipped; on the slow model
#      their drain alone takes minutes, and the server holds every document).
# Prints one table per model; OUT_DIR (default: a temporary directory, removed)
# keeps the tables and the auto runs' traces (t concurrency batch_bytes) and
# sparklines (bench/adaptive/sparkline.lua).
set -eu
cd "$(dirname "$0")/../.."
FAST="docs_per_s=8000,per_request_ms=5,per_shard_ms=2,hop_ms=1,queue=24,nodes=3"
SLOW="docs_per_s=2500,per_request_ms=40,per_shard_ms=15,hop_ms=2,queue=12,nodes=3"
S_STATIC=${SECONDS_STATIC:-10}
S_AUTO=${SECONDS_AUTO:-30}
S_CHANGE=${SECONDS_CHANGE:-60}
BATCHES=${BATCHES:-"1 2 5 10 20 40"}
CONCS=${CONCS:-"1 2 4 8 16"}
MODELS=${MODELS:-"fast slow"}
PHASES=${PHASES:-"static auto change"}
MAX_INFLIGHT_MB=${MAX_INFLIGHT_MB:-160}
has() { case " $PHASES " in *" $1 "*) return 0;; esac; return 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/espipe-bench.XXXXXX")
OUT=${1:-$TMP/out}
mkdir -p "$OUT"
cleanup() {
    [ -f "$TMP/serve.pid" ] && bin/espipe serve --stop --pid-file "$TMP/serve.pid" >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

start() { # capacity spec
    for try in 1 2 3 4 5; do
        PORT=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom) % 30000 ))
        if bin/espipe serve --capacity "$1" --port "$PORT" --daemon --pid-file "$TMP/serve.pid" \
            >/dev/null 2>"$TMP/serve.err"; then return 0; fi
        [ "$try" = 5 ] && { cat "$TMP/serve.err"; exit 1; }
    done
}
stop() { bin/espipe serve --stop --pid-file "$TMP/serve.pid" >/dev/null; }
one() { # seconds concurrency batch [trace]
    lua5.4 bench/adaptive/run.lua "http://127.0.0.1:$PORT" "$@"
}

HEAD="conc batch_mb docs elapsed_s docs/s retried retried_%"
for model in $MODELS; do
    if [ "$model" = fast ]; then spec=$FAST; else spec=$SLOW; fi
    if has static; then
        start "$spec"
        echo "model $model: $spec" | tee "$OUT/$model.txt"
        echo "$HEAD" | tee -a "$OUT/$model.txt"
        for b in $BATCHES; do
            for c in $CONCS; do
                if [ $((c * b)) -gt "$MAX_INFLIGHT_MB" ]; then
                    echo "$c $b skipped: more than $MAX_INFLIGHT_MB MB in flight" | tee -a "$OUT/$model.txt"
                else
                    one "$S_STATIC" "$c" "$b" | tee -a "$OUT/$model.txt"
                fi
            done
        done
        stop
    fi
    if has auto; then
        start "$spec"
        one "$S_AUTO" auto auto "$OUT/$model.trace" | tee -a "$OUT/$model.txt"
        stop
        lua5.4 bench/adaptive/sparkline.lua "$OUT/$model.trace" | tee "$OUT/$model.spark"
    fi
done
has change || exit 0

# capacity halves after 30 s: the CHANGE_TOP (3) best static settings of the
# fast sweep (or CHANGE_SETTINGS, e.g. "4x10 16x20": concurrency x MB), then
# auto (a full sweep of 60 s runs would take half an hour)
change="$FAST,change_after_s=30,change_factor=0.5"
echo "model change: $change" | tee "$OUT/change.txt"
echo "$HEAD" | tee -a "$OUT/change.txt"
if [ -n "${CHANGE_SETTINGS:-}" ]; then
    for s in $CHANGE_SETTINGS; do echo "${s%x*} ${s#*x}"; done
else
    sed -n '3,$p' "$OUT/fast.txt" | grep -v '^auto' | grep -v skipped | sort -k5 -n -r | head -"${CHANGE_TOP:-3}"
fi |
while read -r bc bb _; do
    start "$change"; one "$S_CHANGE" "$bc" "$bb" | tee -a "$OUT/change.txt"; stop
done
start "$change"; one "$S_CHANGE" auto auto "$OUT/change.trace" | tee -a "$OUT/change.txt"; stop
lua5.4 bench/adaptive/sparkline.lua "$OUT/change.trace" | tee "$OUT/change.spark"
