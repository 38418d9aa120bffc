#!/usr/bin/env bash
# The routed top-k on the GPU host (2-GPU host, repository root, .gpu/ carried,
# ~4 minutes, every line streamed).  A = default build; B, C = the flags in
# ALT_B, ALT_C (VARIANTS="B C" by default; "B" or "" for fewer).
# 1. device tests on A, test_cuda_select on the variants;
# 2. route_ms of A and the variants at 1M-9.8M tokens;
# 3. weak scaling 1 vs 2 GPUs with A and the variants (3 reps), rank-0 compute
#    and exchange share;
# 4. the FOLIO_PROFILE=2 timelines of weak-1 and weak-2 (A and the variants).
set -uo pipefail
. "$(dirname "$0")/gpu_env.sh"
D=$PWD/.gpu/data; t0=$(date +%s)
ALT_B=${ALT_B:--DFOLIO_ROUTE_WG_MIN_BLOCKS=3}; ALT_C=${ALT_C:--DFOLIO_ROUTE_WG_STAGES=8 -DFOLIO_ROUTE_WG_MIN_BLOCKS=2}; VARIANTS=${VARIANTS-B C}
say() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
conf() { cmake -S . -B "/tmp/fr$1" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DFOLIO_TESTS=ON \
         -DFOLIO_DATA_DIR="$D" ${2:+"-DCMAKE_CUDA_FLAGS=$2"} > "/tmp/cr$1.log" 2>&1; }
conf A; for v in $VARIANTS; do eval "conf $v \"\$ALT_$v\""; done
( cmake --build /tmp/frA -j 16 > /tmp/brA.log 2>&1 || { echo "BUILD A FAILED"; grep -m10 -A3 error /tmp/brA.log; } ) &
for v in $VARIANTS; do
  ( cmake --build /tmp/fr$v -j 8 --target folio test_cuda_select > /tmp/br$v.log 2>&1 || { echo "BUILD $v FAILED"; grep -m10 -A3 error /tmp/br$v.log; } ) &
done
wait; say built
(cd /tmp/frA && timeout 150 ctest -R 'test_cuda|gpu_ingest' 2>&1 | grep -E "Test +#|tests passed|Failed")
for v in $VARIANTS; do echo -n "$v test_cuda_select: "; timeout 90 /tmp/fr$v/tests/test_cuda_select 2>&1 | grep -E "Synthesis|FAIL" | head -5; done
say "route_ms (routed top-k of one layer, H = 4)"
for n in 1048576 2097152 4194304 9830400; do for v in A $VARIANTS; do
    echo "$v n=$n: $(timeout 90 /tmp/fr$v/folio bench attn --backend cuda --n $n --reps 5 2>&1 |
                     grep -o '"select_ms":[0-9.]*\|"route_ms":[0-9.]*' | tr '\n' ' ')"
done; done
mk() { local f=$1 reps=$2; : > "$f"; for i in $(seq 1 "$reps"); do cat "$D/spdx-licenses.jsonl" "$D/pubmed-dev.jsonl" >> "$f"; done; }
mk /tmp/wn1.txt 2; mk /tmp/wn2.txt 4
MPI="mpirun --allow-run-as-root --oversubscribe --bind-to none -x NCCL_NVLS_ENABLE -x LD_LIBRARY_PATH -x FOLIO_PROFILE"
say "weak 1 vs 2 GPUs (3 reps)"
for r in 1 2 3; do for v in A $VARIANTS; do for g in 1 2; do
    rm -rf /tmp/wn$g.lmdb
    echo "$v weak-$g rep $r: $($MPI -np $g /tmp/fr$v/folio ingest --db /tmp/wn$g.lmdb --backend cuda --threads 16 --progress /tmp/wn$g.txt 2>&1 |
                               grep '^ranks' | grep -o 'rank-0 compute [0-9.]*s, exchange [0-9.]*s ([0-9.]*%')"
done; done; done
say "timelines (FOLIO_PROFILE=2)"
export FOLIO_PROFILE=2
for v in A $VARIANTS; do for g in 1 2; do
    rm -rf /tmp/wn$g.lmdb
    echo "$v:"
    $MPI -np $g /tmp/fr$v/folio ingest --db /tmp/wn$g.lmdb --backend cuda --threads 16 --progress /tmp/wn$g.txt 2>&1 |
        grep -E 'profile timeline|^ranks' | cut -c1-2500
done; done
say done
