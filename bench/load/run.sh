#!/bin/sh
# espipe load vs peers reading the same NDJSON file, same blackhole dev server, same run.
#   sh bench/load/run.sh [N=200000]
# N lines of examples/sample_logs.lua (~154 bytes each). Every client runs
# under /usr/bin/time; the figure is the client's CPU (user + sys) per
# document. espipe load: plain, --id-field, --id-field + --index-pattern,
# each also through its Lua line path (bench/load/lua_path.lua, the cost
# before csrc/bulk_lines.c); elasticsearch-py helpers.bulk (Debian
# python3-elasticsearch) the same three ways; elasticdump's file import
# (npm install --prefix spec/node elasticdump) when installed. elasticdump
# reads only its own dump format, one {"_index":..,"_id":..,"_source":{..}}
# per line (given a plain document per line it sends "undefined" sources),
# so it gets the same documents wrapped that way, with their request_id as _id.
set -eu
cd "$(dirname "$0")/../.."
N=${1:-200000}
WORKERS=2 . bench/load/setup.sh

measure() { # name command...
    name=$1; shift
    /usr/bin/time -f "%e %U %S %M" -o "$TMP/time" "$@" > "$TMP/out" 2>"$TMP/err" || {
        echo "$name FAILED: $(tail -3 "$TMP/err")"; return 0; }
    set -- $(cat "$TMP/time")
    awk -v name="$name" -v n="$N" -v e="$1" -v u="$2" -v s="$3" -v m="$4" 'BEGIN {
        printf "%-26s cpu us/doc %6.2f  cpu s %5.2f  docs/s %8.0f  peak RSS MB %6.1f\n",
            name, (u + s) * 1000000 / n, u + s, n / e, m / 1024 }'
}

LOAD="bin/espipe load $FILE --index bench --quiet --no-refresh --url $URL --dead-letter $TMP/dl"
printf "%d lines (%d bytes), server %s (blackhole)\n" "$N" "$(wc -c < "$FILE")" "$URL"
measure espipe_plain          $LOAD
measure espipe_id             $LOAD --id-field request_id
measure espipe_pattern_id     $LOAD --id-field request_id --index-pattern "$PATTERN"
measure espipe_lua_plain      lua5.4 bench/load/lua_path.lua "$URL" "$FILE" plain
measure espipe_lua_id         lua5.4 bench/load/lua_path.lua "$URL" "$FILE" id
measure espipe_lua_pattern_id lua5.4 bench/load/lua_path.lua "$URL" "$FILE" pattern
measure py_bulk_plain         /usr/bin/python3 bench/load/py_load.py "$URL" "$FILE" plain
measure py_bulk_id            /usr/bin/python3 bench/load/py_load.py "$URL" "$FILE" id
measure py_bulk_pattern_id    /usr/bin/python3 bench/load/py_load.py "$URL" "$FILE" pattern
DUMP=spec/node/node_modules/.bin/elasticdump
if [ -x "$DUMP" ]; then
    sed 's/^\({"request_id":\("[^"]*"\).*\)$/{"_index":"bench","_id":\2,"_source":\1}/' "$FILE" > "$TMP/dump.ndjson"
    measure elasticdump_import "$DUMP" --input="$TMP/dump.ndjson" --output="$URL/bench" --type=data --limit=1000 --quiet
else
    echo "elasticdump: not installed (npm install --prefix spec/node elasticdump)"
fi
