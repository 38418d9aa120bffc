#!/usr/bin/env bash
# The commit path of a GPU corpus ingest, A/B on the GPU host (repository root,
# .gpu/ carried): rank 0's single LMDB writer is what limits a 1-GPU ingest of
# many short documents.  Builds this tree (tests on) and, when BASE_SRC names
# another tree (e.g. a `git archive` of the commit before), that one too; runs
# the device tests; then, interleaved REPS times on the dev data (1.09M
# tokens): the base and this tree; the CPU backend on 16 cores for the
# ratio (REPS times too); and the dev data x4 (4.4M tokens) base vs this
# tree.  One line per run: job seconds and the rank-0 commit stages; then
# the medians.  ~3 minutes on a 1x H200 host.
#   BASE_SRC=.gpu/base REPS=5 bash bench/gpu_commit.sh
set -uo pipefail
. "$(dirname "$0")/gpu_env.sh"
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
D=$PWD/.gpu/data; REPS=${REPS:-3}; t0=$(date +%s)
nvidia-smi -L; nproc
cmake -S . -B /tmp/fN -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DFOLIO_TESTS=ON -DFOLIO_DATA_DIR=$D > /tmp/cN.log 2>&1
( cmake --build /tmp/fN -j 12 > /tmp/bN.log 2>&1 || { echo BUILD FAILED; grep -m5 error /tmp/bN.log; } ) &
if [ -n "${BASE_SRC:-}" ]; then
    cmake -S "$BASE_SRC" -B /tmp/fO -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a > /tmp/cO.log 2>&1
    ( cmake --build /tmp/fO -j 8 --target folio > /tmp/bO.log 2>&1 || { echo BASE BUILD FAILED; grep -m5 error /tmp/bO.log; } ) &
fi
wait; echo "built $(( $(date +%s) - t0 )) s"
echo "== device tests"
(cd /tmp/fN && timeout 150 ctest -R 'cuda|gpu' -E cuda_archs --output-on-failure > "$OUT/ctest.log" 2>&1; \
 grep -E "Test +#|tests passed|Failed" "$OUT/ctest.log")
W=/tmp/gc; rm -rf "$W"; mkdir -p "$W"
run() { # label binary backend [env...] -- inputs...
    local label=$1 bin=$2 be=$3; shift 3
    local envs=(); while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
    rm -rf "$W/db"
    local s e line
    s=$(date +%s.%N)
    line=$(env "${envs[@]}" "$bin" ingest --db "$W/db" --backend "$be" --threads 16 --progress "$@" 2> "$W/err" | tail -n 1)
    e=$(date +%s.%N)
    cp "$W/err" "$OUT/$label.err"
    printf '%-22s wall %6.2fs job %s | %s\n' "$label" "$(awk -v a="$s" -v b="$e" 'BEGIN { print b - a }')" \
        "$(grep -o '"seconds":[0-9.]*' <<< "$line" | cut -d: -f2)" \
        "$(grep '^ranks' "$W/err" | grep -o 'setup [0-9.]*s\|plan [0-9.]*s\|commit [^)]*)\|finish [0-9.]*s\|rank-0 compute [0-9.]*s' | tr '\n' ' ')" |
        tee -a "$OUT/table.txt"
}
NEW=/tmp/fN/folio; OLD=/tmp/fO/folio
echo "== dev data (1.09M tokens), 1 GPU: base / new, and the CPU backend on 16 cores" | tee -a "$OUT/table.txt"
for r in $(seq 1 "$REPS"); do
    [ -x "$OLD" ] && run "base-r$r" "$OLD" cuda X=1 -- "$D"/*.jsonl
    run "new-r$r" "$NEW" cuda X=1 -- "$D"/*.jsonl
    run "cpu16-r$r" "$NEW" cpu X=1 -- "$D"/*.jsonl
done
C4=$W/dev4.jsonl; dev_copies 4 "$C4"
echo "== dev data x4 (4.4M tokens), 1 GPU: base / new" | tee -a "$OUT/table.txt"
for r in 1 2 3; do
    [ -x "$OLD" ] && run "x4-base-r$r" "$OLD" cuda X=1 -- "$C4"
    run "x4-new-r$r" "$NEW" cuda X=1 -- "$C4"
done
med() { grep -h "^$1-r" "$OUT/table.txt" | grep -o 'job [0-9.]*' | cut -d' ' -f2 | sort -g |
        awk '{a[NR] = $1} END { if (NR) print a[int((NR + 1) / 2)] }'; }
echo "== medians of job seconds" | tee -a "$OUT/table.txt"
for l in base new cpu16 x4-base x4-new; do echo "$l $(med $l)"; done | tee -a "$OUT/table.txt"
awk '$1 == "cpu16" { c = $2 } $1 == "base" { b = $2 } $1 == "new" { n = $2 }
     END { if (c && n) printf "CPU 16 cores / 1 GPU: new %.1fx%s\n", c / n, b ? sprintf(", base %.1fx", c / b) : "" }' \
    <(for l in base new cpu16; do echo "$l $(med $l)"; done) | tee -a "$OUT/table.txt"
echo "total $(( $(date +%s) - t0 )) s"
