#!/bin/sh
# The body of `make test`: busted specs on every Lua given as an argument
# (server specs, tagged #server, on Lua 5.4 only: they start nginx and need no
# second run), then the real-client conformance suites. Every stage writes TAP
# into build/test/; tap_summary.sh counts them all.
set -u
cd "$(dirname "$0")/../.."
out=build/test
rm -rf "$out" && mkdir -p "$out"

for v in "$@"; do
    case $v in
        luajit) run=luajit ;;
        *) run=lua$(echo "$v" | tr -d .) ;;
    esac
    if [ "$v" = 5.4 ]; then
        tags=""
    else
        tags="--exclude-tags=server"
    fi
    echo "== busted on Lua $v"
    busted --run="$run" $tags -o TAP > "$out/busted-$v.tap" 2>&1
    sh spec/support/tap_summary.sh --brief "$out/busted-$v.tap"
done

if [ -x spec/conformance/run.sh ]; then
    echo "== conformance: real clients against espipe serve"
    spec/conformance/run.sh > "$out/conformance.tap" 2>&1
    sh spec/support/tap_summary.sh --brief "$out/conformance.tap"
fi

echo "== all stages"
exec sh spec/support/tap_summary.sh "$out"/*.tap
