#!/bin/sh
# Instructions per document for each codec (callgrind; repeatable on a busy
# machine, unlike timings): the document-building baseline is subtracted.
#   make && sh bench/json/instructions.sh [docs=2000] [rounds=10]
set -eu
cd "$(dirname "$0")/../.."
docs=${1:-2000}
rounds=${2:-10}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() {
    valgrind --tool=callgrind --callgrind-out-file="$out/cg" \
        lua5.4 bench/json/one_codec.lua "$1" "$2" "$docs" "$rounds" 2>&1 |
        sed -n 's/.*Collected : *\([0-9]*\).*/\1/p; s/.*I *refs: *\([0-9,]*\).*/\1/p' | tr -d , | head -n 1
}
for op in encode decode; do
    base=$(count none "$op")
    e=$(count espipe "$op")
    c=$(count cjson "$op")
    n=$((docs * rounds))
    echo "$op: espipe $(( (e - base) / n )) instructions/doc, cjson $(( (c - base) / n )), ratio $(echo "scale=2; ($c - $base) / ($e - $base)" | bc)"
    if [ "$op" = encode ]; then
        k=$(count bulk encode)
        echo "bulk builder index: $(( (k - base) / n )) instructions/doc, encode alone / builder $(echo "scale=2; ($e - $base) / ($k - $base)" | bc)"
    fi
done
