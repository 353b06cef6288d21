#!/bin/sh
# Instructions per document of the _bulk handler alone (bench/server/handler.lua
# in LuaJIT, no nginx), counted by callgrind: repeatable on a busy machine,
# unlike timings. The baseline (loading the body and the modules) is
# subtracted. Storing: the first round creates the documents, the others
# overwrite them (as in bench/server/run.sh).
#   sh bench/server/instructions.sh [docs=20000] [rounds=5]   (MODES="storing blackhole")
set -eu
cd "$(dirname "$0")/../.."
docs=${1:-20000}
rounds=${2:-5}
out=$(mktemp -d "${TMPDIR:-/tmp}/espipe-bench-instr.XXXXXX")
trap 'rm -rf "$out"' EXIT
lua5.4 bench/server/make_body.lua "$out/body.ndjson" "$docs" bench c1
count() { # rounds mode
    valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file="$out/cg" \
        luajit bench/server/handler.lua "$out/body.ndjson" "$1" "$2" 2>&1 |
        sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' | head -n 1
}
for mode in ${MODES:-storing blackhole}; do
    base=$(count 0 "$mode")
    all=$(count "$rounds" "$mode")
    echo "$mode: $(( (all - base) / (docs * rounds) )) instructions/doc ($docs docs x $rounds rounds)"
done
