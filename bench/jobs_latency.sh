#!/usr/bin/env bash
# bench/jobs_latency.sh — p50/p90 wall time of `folio summarize` (one doc),
# `folio ask --doc` and store-wide `folio ask`, each a whole CLI process
# (start, store open, read, job, print) pinned to one core, on a store of
# the whole dev data.  Usage: bench/jobs_latency.sh FOLIO [DB] [N]
set -euo pipefail
FOLIO=${1:?usage: jobs_latency.sh FOLIO [DB] [N]}
DATA=${FOLIO_DATA:-$(cd "$(dirname "$0")/../../shared/data" && pwd)}
DB=${2:-/tmp/folio-jobs-bench.lmdb}
N=${3:-50}
if [ ! -d "$DB" ]; then
    # FOLIO_BENCH_SPDX=1 adds the 727 licences (slow to ingest on a loaded 2-core box)
    extra=()
    [ "${FOLIO_BENCH_SPDX:-0}" = 1 ] && extra=("$DATA"/spdx-licenses.jsonl)
    "$FOLIO" ingest --db "$DB" --quiet "$DATA"/pubmed-dev.jsonl "$DATA"/billsum-dev.jsonl \
        "$DATA"/sciqa-dev.jsonl "${extra[@]}" >&2
fi
ids=$(sed -n 's/^{"id": *"\([^"]*\)".*/\1/p' "$DATA"/pubmed-dev.jsonl "$DATA"/billsum-dev.jsonl | head -n "$N")
qa_ids=$(sed -n 's/^{"id": *"\([^"]*\)".*/\1/p' "$DATA"/sciqa-dev.jsonl)
questions=$(grep -o '"question": *"[^"]*"' "$DATA"/sciqa-dev.jsonl | sed 's/"question": *"//; s/"$//' | head -n "$N")
ms() { local t0 t1; t0=$(date +%s%N); taskset -c 0 "$@" > /dev/null 2>&1 || true; t1=$(date +%s%N); echo $(((t1 - t0) / 1000)); }
stats() { sort -n | awk '{a[NR]=$1} END {printf "p50 %.1f ms  p90 %.1f ms  (n=%d)\n", a[int((NR+1)/2)]/1000, a[int(NR*0.9+0.5)]/1000, NR}'; }
echo "store: $DB"
echo -n "summarize --doc --words 200:   "; for id in $ids; do ms "$FOLIO" summarize --db "$DB" --doc "$id" --words 200 --json; done | stats
echo -n "ask --doc (sciqa paper):       "
i=0; set -f
while IFS= read -r q; do id=$(echo $qa_ids | tr ' ' '\n' | sed -n "$((i % 22 + 1))p"); i=$((i+1)); ms "$FOLIO" ask --db "$DB" --doc "$id" --top 5 --json "$q"; done <<< "$questions" | stats
echo -n "ask across the store:          "
while IFS= read -r q; do ms "$FOLIO" ask --db "$DB" --top 5 --json "$q"; done <<< "$questions" | stats
echo -n "process floor (folio --version): "; for i in $(seq 20); do ms "$FOLIO" --version; done | stats
