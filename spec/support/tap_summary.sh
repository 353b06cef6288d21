#!/bin/sh
# Count TAP results across files and end with "N passed, N failed[, N skipped]".
# Failing tests are listed with their file. Exit 1 when any test failed or a
# file holds no test at all (a suite that crashed before its plan).
# --brief: one count line per call, no final verdict line.
brief=0
[ "${1:-}" = --brief ] && { brief=1; shift; }
awk -v brief="$brief" '
FNR == 1 { files++; seen[FILENAME] = 0 }
/^not ok / { failed++; seen[FILENAME]++; fails = fails "  " FILENAME ": " $0 "\n"; next }
/^ok .*# (SKIP|skip)/ { skipped++; seen[FILENAME]++; next }
/^ok / { passed++; seen[FILENAME]++; next }
END {
    for (f in seen) if (seen[f] == 0) { empty++; fails = fails "  " f ": no test ran\n" }
    if (fails != "") printf "%s", fails
    if (brief) { printf "   %d passed, %d failed, %d skipped\n", passed, failed + empty, skipped }
    else printf "%d passed, %d failed, %d skipped\n", passed, failed + empty, skipped
    exit (failed + empty > 0) ? 1 : 0
}' "$@"
