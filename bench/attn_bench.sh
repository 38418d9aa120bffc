#!/bin/bash
# bench/attn_bench.sh — the attn (CPU) figures of bench/RESULTS.md, section
# "attn (CPU)": FMA peak, linear time (n = 65,536 vs 1,048,576), useful
# GFLOP/s per core against the peak, thread scaling 1 -> 2, and the
# `eval pattern` tables on the dev data.
#
# usage: bench/attn_bench.sh [FOLIO_BINARY] [quick]
#   FOLIO_BINARY defaults to $FOLIO, else ./build/folio.
#   "quick" skips the 1M-token run and the eval tables.
# Each line of stdout is one JSON object from folio; progress on stderr.
# The machine is shared: run it when nothing else is busy, and compare the
# CPU-time figures (cpu_ms_kernel, ratio_cpu_kernel) when it is not.
set -euo pipefail
FOLIO=${1:-${FOLIO:-./build/folio}}
MODE=${2:-full}
DATA=${FOLIO_DATA:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data}
[ -x "$FOLIO" ] || { echo "attn_bench: no folio binary at $FOLIO" >&2; exit 2; }

echo "# $(date -u +%FT%TZ) $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores)" >&2
echo "# linear time: default pattern, n = 65536 then 1048576" >&2
"$FOLIO" bench attn --n 65536 --reps 3
[ "$MODE" = quick ] || "$FOLIO" bench attn --n 1048576 --reps 1
echo "# thread scaling (n = 262144), each twice" >&2
for rep in 1 2; do
    for t in 1 2; do "$FOLIO" bench attn --n 262144 --threads "$t" --reps 3; done
done
if [ "$MODE" != quick ]; then
    echo "# eval pattern" >&2
    "$FOLIO" eval pattern --data "$DATA/pubmed-dev.jsonl"
    "$FOLIO" eval pattern --data "$DATA/sciqa-dev.jsonl"
fi
