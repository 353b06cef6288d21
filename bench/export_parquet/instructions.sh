#!/bin/sh
# Instructions per document of w:write_page (callgrind: repeatable on a busy
# machine, unlike timings), the harness's own start (0 documents) subtracted.
# Needs the bodies saved by run.lua once:
#   mkdir -p /tmp/pages && PAGES_DIR=/tmp/pages lua5.4 bench/export_parquet/run.lua 1000 100000 position
#   make && sh bench/export_parquet/instructions.sh /tmp/pages [docs=200000] [codecs="none snappy zstd"]
# LAYOUT=nested counts the nested layout (see write_pages.lua).
set -eu
cd "$(dirname "$0")/../.."
dir=$1
docs=${2:-200000}
codecs=${3:-none snappy zstd}
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        lua5.4 bench/export_parquet/write_pages.lua "$dir" "$1" "$2" 2>&1 |
        sed -n 's/.*Collected : *\([0-9]*\).*/\1/p' | head -n 1
}
base=$(count none 0)
for codec in $codecs; do
    n=$(count "$codec" "$docs")
    echo "$codec: $(( (n - base) / docs )) instructions/doc"
done
