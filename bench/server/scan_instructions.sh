#!/bin/sh
# Instructions per document served by the search handlers alone
# (bench/server/scan_handler.lua in LuaJIT, no nginx), counted by callgrind:
# repeatable on a busy machine, unlike timings. Each mode runs in its own
# process, so each pays what the first scan of an index pays (settling the
# dynamic mapping, the snapshot); the load (a run of mode "none") is
# subtracted.
#   sh bench/server/scan_instructions.sh [docs=50000] [size=1000]   (MODES="pit scroll pit3")
set -eu
cd "$(dirname "$0")/../.."
docs=${1:-50000}
size=${2:-1000}
out=$(mktemp -d "${TMPDIR:-/tmp}/espipe-bench-instr.XXXXXX")
trap 'rm -rf "$out"' EXIT
# the fewest of 3 runs: LuaJIT's runs vary by a few percent (where its
# allocator maps memory changes what tables and the collector do)
count() { # mode
    best=
    for _ in 1 2 3; do
        n=$(valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file="$out/cg" \
            luajit bench/server/scan_handler.lua "$docs" "$size" "$1" 2>&1 |
            sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' | head -n 1)
        if [ -z "$best" ] || [ "$n" -lt "$best" ]; then best=$n; fi
    done
    echo "$best"
}
base=$(count none)
for mode in ${MODES:-pit scroll pit3}; do
    all=$(count "$mode")
    echo "$mode: $(( (all - base) / docs )) instructions/doc ($docs docs, pages of $size)"
done
