#!/bin/sh
# A reindex split into parts, started the way any runner that numbers its
# copies starts them (here a shell loop; GNU parallel, a Kubernetes Indexed
# Job or a Slurm array do the same on many machines). The checkpoint lives in
# Elasticsearch itself, so a part restarted anywhere resumes where it stood.
#   ES_URL=... examples/parts.sh SRC DEST [PARTS]
set -eu
cd "$(dirname "$0")/.."
parts=${3:-3}
checkpoint="es:espipe-jobs/copy-$1-to-$2"
pids=""
i=1
while [ "$i" -le "$parts" ]; do
  bin/espipe reindex "$1" "$2" --part "$i/$parts" --checkpoint "$checkpoint" --quiet &
  pids="$pids $!"
  i=$((i + 1))
done
failed=0
for pid in $pids; do wait "$pid" || failed=1; done
bin/espipe job status "$checkpoint"
exit "$failed"
