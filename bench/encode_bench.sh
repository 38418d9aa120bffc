#!/usr/bin/env bash
# The encoder's per-token CPU stages outside attention (embedding, pooling),
# one core, on the dev data; with REV, the same harness linked against
# attn/embed.c and attn/pool.c of that revision too, in the same run.
#   bench/encode_bench.sh [REV]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
DATA=${FOLIO_DATA:-$SRC/../shared/data}
T=$(mktemp -d /tmp/folio-encode-bench.XXXXXX)
trap 'rm -rf "$T"' EXIT
head -c 3000000 "$DATA/pubmed-dev.jsonl" > "$T/text"
build() { # out embed.c pool.c
    cc -std=gnu11 -O3 -march=native -fopenmp -I"$SRC" -I"$SRC/attn" "$SRC/bench/encode_bench.c" "$2" "$3" \
       "$SRC"/shard/*.c "$SRC"/common/*.c -lm -pthread -o "$1"
}
build "$T/now" "$SRC/attn/embed.c" "$SRC/attn/pool.c"
if [ -n "${1:-}" ]; then
    git -C "$SRC" show "$1:attn/embed.c" > "$T/embed_old.c"
    git -C "$SRC" show "$1:attn/pool.c" > "$T/pool_old.c"
    build "$T/old" "$T/embed_old.c" "$T/pool_old.c"
fi
echo "# $(date -u '+%F %H:%M') UTC $(lscpu | sed -n 's/Model name: *//p'), 1 core, load $(cut -d' ' -f1 /proc/loadavg)"
for r in 1 2; do
    [ -n "${1:-}" ] && echo "$1: $(OMP_NUM_THREADS=1 "$T/old" "$T/text")"
    echo "working tree: $(OMP_NUM_THREADS=1 "$T/now" "$T/text")"
done
