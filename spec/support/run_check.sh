#!/bin/sh
# The body of `make check`:
#  1. espipe's C modules built with gcc -fsanitize=address,undefined into
#     build/asan-5.4, and every non-server spec run against them on Lua 5.4
#     (the sanitizer runtimes are preloaded, since lua5.4 is not built with them);
#  2. the specs of the C-heavy modules under valgrind;
#  0. luacheck (.luacheckrc) over lua/ spec/ bench/ examples/ bin/, and
#     cppcheck over csrc/ and spec/fuzz/: zero findings each;
#  3. every spec/fuzz/fuzz_*.c built with clang -fsanitize=fuzzer,address,undefined
#     and run for FUZZ_TIME seconds (default 30), seeded from
#     spec/fuzz/seeds/<target>/ when present and, for fuzz_json_*, spec/json/corpus.
# Results are also written as TAP into build/check/ (.ci/run counts them).
# Any failure makes the script exit non-zero.
set -u
cd "$(dirname "$0")/../.."

FUZZ_TIME=${FUZZ_TIME:-30}
asan_dir=build/asan-5.4
fuzz_dir=build/fuzz
tap_dir=build/check
status=0
rm -rf "$tap_dir" && mkdir -p "$tap_dir"
fuzz_tap="$tap_dir/fuzz.tap"
: > "$fuzz_tap"

echo "== luacheck and cppcheck (zero findings)"
lint_tap="$tap_dir/lint.tap"
: > "$lint_tap"
if luacheck -q --no-color lua spec bench examples bin/espipe > "$tap_dir/luacheck.log" 2>&1; then
    echo "ok - luacheck" | tee -a "$lint_tap"
else
    grep ": " "$tap_dir/luacheck.log" | head -n 40
    echo "not ok - luacheck (see $tap_dir/luacheck.log)" | tee -a "$lint_tap"
    status=1
fi
# --error-exitcode counts every finding of the enabled classes
if cppcheck --enable=warning,performance,portability --std=c99 --quiet --error-exitcode=3 \
        --inline-suppr -Icsrc -I/usr/include/lua5.4 csrc spec/fuzz > "$tap_dir/cppcheck.log" 2>&1; then
    echo "ok - cppcheck" | tee -a "$lint_tap"
else
    head -n 40 "$tap_dir/cppcheck.log"
    echo "not ok - cppcheck (see $tap_dir/cppcheck.log)" | tee -a "$lint_tap"
    status=1
fi

echo "== sanitizer build ($asan_dir)"
if ! make --no-print-directory LUA=5.4 CC=gcc BUILD="$asan_dir" OPT=-O1 \
        EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
        EXTRA_LDFLAGS="-fsanitize=address,undefined" all; then
    echo "not ok - sanitizer build failed" | tee "$tap_dir/asan-build.tap"
    exit 1
fi

echo "== specs under ASan+UBSan"
preload="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
# Lua leaves its state to the OS when busted calls os.exit, which LSan would
# report as leaks: leak checking is valgrind's job (see bench/README.md).
if ! LD_PRELOAD="$preload" \
     ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
     UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
     busted --lua=lua5.4 --cpath="./$asan_dir/?.so" --exclude-tags=server -o TAP \
        > "$tap_dir/asan-specs.tap" 2>&1; then
    grep -v '^ok ' "$tap_dir/asan-specs.tap" | tail -n 40
    echo "not ok - specs failed under sanitizers"
    status=1
fi
sh spec/support/tap_summary.sh --brief "$tap_dir/asan-specs.tap"

echo "== C-heavy specs under valgrind (definite leaks and memory errors fail)"
# --ignore-lua: busted would otherwise re-exec the interpreter outside valgrind.
if ! valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite \
        --show-leak-kinds=definite lua5.4 /usr/bin/busted --ignore-lua --exclude-tags=server -o TAP \
        spec/json spec/bulk spec/routing spec/search spec/parquet spec/transport/curl_spec.lua \
        > "$tap_dir/valgrind.tap" 2>&1; then
    grep -v '^ok ' "$tap_dir/valgrind.tap" | tail -n 40
    echo "not ok - valgrind found errors"
    status=1
fi
sh spec/support/tap_summary.sh --brief "$tap_dir/valgrind.tap"

echo "== libFuzzer targets"
mkdir -p "$fuzz_dir"
# espipe.core: every folder but curl/ and parquet/ (see csrc/README.md)
core_src=$(find csrc -name "*.c" ! -path "csrc/curl/*" ! -path "csrc/parquet/*" | sort)
for target in spec/fuzz/fuzz_*.c; do
    [ -e "$target" ] || continue
    name=$(basename "$target" .c)
    bin="$fuzz_dir/$name"
    extra_src="" extra_libs=""
    # targets that link the Parquet writer (fuzz_parquet_encoding includes its own parts)
    case $name in fuzz_parquet_page|fuzz_parquet_shred) extra_src=$(ls csrc/parquet/*.c | grep -v parquet_lua.c) extra_libs=-lsnappy ;; esac
    if ! clang -std=c99 -D_POSIX_C_SOURCE=200809L -g -O1 \
            -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
            -I/usr/include/lua5.4 -Icsrc -o "$bin" "$target" $core_src $extra_src \
            -llua5.4 -lz -lzstd -lm $extra_libs; then
        echo "not ok - $name does not build" | tee -a "$fuzz_tap"
        status=1
        continue
    fi
    seeds=""
    [ -d "spec/fuzz/seeds/$name" ] && seeds="spec/fuzz/seeds/$name"
    case $name in fuzz_json_*) seeds="$seeds spec/json/corpus" ;; esac
    work=$(mktemp -d)
    echo "-- $name for ${FUZZ_TIME}s"
    if UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
       "$bin" -max_total_time="$FUZZ_TIME" -max_len=65536 -print_final_stats=0 \
              -artifact_prefix="$fuzz_dir/$name-" "$work" $seeds > "$fuzz_dir/$name.log" 2>&1; then
        echo "ok - $name" | tee -a "$fuzz_tap"
    else
        echo "not ok - $name (see $fuzz_dir/$name.log; crash inputs in $fuzz_dir/$name-*)" | tee -a "$fuzz_tap"
        tail -n 30 "$fuzz_dir/$name.log"
        status=1
    fi
    rm -rf "$work"
done

exit $status
