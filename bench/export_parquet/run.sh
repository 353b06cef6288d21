#!/bin/sh
# CPU docs/s of w:write_page alone, flat and nested layouts, every codec,
# `runs` times over (timings move with the machine's load: the load average
# is printed before each run). Needs the bodies saved by run.lua once:
#   mkdir -p /tmp/pages && PAGES_DIR=/tmp/pages lua5.4 bench/export_parquet/run.lua 1000 50000 position
#   make && sh bench/export_parquet/run.sh /tmp/pages [docs=500000] [runs=3]
set -eu
cd "$(dirname "$0")/../.."
dir=$1
docs=${2:-500000}
runs=${3:-3}
r=1
while [ "$r" -le "$runs" ]; do
    echo "run $r, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    for layout in flat nested; do
        for codec in none snappy zstd; do
            printf '%s ' "$layout"
            LAYOUT=$layout lua5.4 bench/export_parquet/write_pages.lua "$dir" "$codec" "$docs"
        done
    done
    r=$((r + 1))
done
