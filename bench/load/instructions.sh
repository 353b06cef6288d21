#!/bin/sh
# Instructions per document of espipe load (the whole client process under
# callgrind: start, reading, building, sending), per mode, C line path vs Lua;
# "start" is the whole count of a one-line load (what every figure includes once).
#   sh bench/load/instructions.sh [N=20000]
set -eu
cd "$(dirname "$0")/../.."
N=${1:-20000}
WORKERS=1 . bench/load/setup.sh

count() { # name command...  (N documents; ONE=1: the whole count)
    name=$1; shift
    valgrind --tool=callgrind --callgrind-out-file="$TMP/cg" "$@" > /dev/null 2> "$TMP/err" || {
        echo "$name FAILED: $(tail -3 "$TMP/err")"; return 0; }
    ir=$(sed -n 's/^summary: //p' "$TMP/cg")
    if [ "${ONE:-}" = 1 ]; then
        printf "%-22s instructions %.0f\n" "$name" "$ir"
    else
        awk -v name="$name" -v n="$N" -v ir="$ir" 'BEGIN { printf "%-22s instructions/doc %7.0f\n", name, ir / n }'
    fi
}
LOAD="lua5.4 bin/espipe load $FILE --index bench --quiet --no-refresh --url $URL --dead-letter $TMP/dl"
head -1 "$FILE" > "$TMP/one.ndjson"
ONE=1 count start lua5.4 bin/espipe load "$TMP/one.ndjson" --index bench --quiet --no-refresh --url "$URL" --dead-letter "$TMP/dl"
count c_plain      $LOAD
count c_id         $LOAD --id-field request_id
count c_pattern_id $LOAD --id-field request_id --index-pattern "$PATTERN"
count lua_plain      lua5.4 bench/load/lua_path.lua "$URL" "$FILE" plain
count lua_id         lua5.4 bench/load/lua_path.lua "$URL" "$FILE" id
count lua_pattern_id lua5.4 bench/load/lua_path.lua "$URL" "$FILE" pattern
