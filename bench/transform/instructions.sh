#!/bin/sh
# Client instructions per document of bench/transform/lookup.lua's two
# transforms (callgrind, the espipe process alone: nginx and the dev server
# are other processes), each run counted alone and less an empty run (setup).
#   make && sh bench/transform/instructions.sh [seq_docs=200] [batch_docs=4000]
set -eu
cd "$(dirname "$0")/../.."
SEQ=${1:-200}
BATCH=${2:-4000}
count() {
  out=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file=/dev/null lua5.4 bench/transform/lookup.lua "$1" "$2" >/dev/null 2>"$out"
  sed -n 's/.*refs: *\([0-9,]*\).*/\1/p' "$out" | tr -d ,
  rm -f "$out"
}
base=$(count 0 0)
seq=$(count "$SEQ" 0)
batch=$(count 0 "$BATCH")
echo "sequential: $(( (seq - base) / SEQ )) instructions per document ($SEQ documents)"
echo "batch:      $(( (batch - base) / BATCH )) instructions per document ($BATCH documents)"
