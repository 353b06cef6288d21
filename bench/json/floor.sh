#!/bin/sh
# The floor of an encoder on Lua 5.4's public C API, in instructions per
# document (callgrind): bench/json/walk_floor.c walks each document as any
# encoder must and writes nothing ("walk"), then also pushes a string of
# the JSON text's length ("walk_push"); espipe and cjson encode alongside.
# The document-building baseline is subtracted from each.
#   make && sh bench/json/floor.sh [docs=2000] [rounds=10]
set -eu
cd "$(dirname "$0")/../.."
docs=${1:-2000}
rounds=${2:-10}
mkdir -p build/bench
${CC:-cc} -std=c99 -O2 -Wall -Wextra -Werror -fPIC -shared -I/usr/include/lua5.4 \
    -o build/bench/walk_floor.so bench/json/walk_floor.c
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() {
    valgrind --tool=callgrind --callgrind-out-file="$out/cg" \
        lua5.4 bench/json/one_codec.lua "$1" encode "$docs" "$rounds" 2>&1 |
        sed -n 's/.*Collected : *\([0-9]*\).*/\1/p; s/.*I *refs: *\([0-9,]*\).*/\1/p' | tr -d , | head -n 1
}
base=$(count none)
n=$((docs * rounds))
for w in walk walk_push espipe cjson; do
    c=$(count "$w")
    echo "$w: $(( (c - base) / n )) instructions/doc"
done
lua5.4 bench/json/floor.lua 20000 5
lua5.4 bench/json/floor.lua 2000 30
