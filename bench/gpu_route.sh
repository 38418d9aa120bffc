#!/usr/bin/env bash
# Ninth session, one device call (2-GPU host, repository root, .gpu/ carried,
# ~5 minutes, every line streamed): the routed top-k with 1-4 warpgroups a
# CTA sharing the candidate ring, and where rank 1's input skew comes from.
# 1. device tests (test_cuda_select runs every warpgroup count);
# 2. route_ms at 1M-9.8M tokens, FOLIO_ROUTE_WG = 1, 2, 3, 4 and the default;
# 3. weak scaling 1 vs 2 GPUs (3 reps), rank-0 compute and exchange share;
# 4. the weak-2 timeline (FOLIO_PROFILE=2) of both ranks, --bind-to none and
#    --bind-to numa, with the host's NUMA layout and the GPUs' affinity.
set -uo pipefail
. "$(dirname "$0")/gpu_env.sh"
D=$PWD/.gpu/data; t0=$(date +%s)
say() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
cmake -S . -B /tmp/frA -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DFOLIO_TESTS=ON \
      -DFOLIO_DATA_DIR="$D" > /tmp/crA.log 2>&1
cmake --build /tmp/frA -j 30 > /tmp/brA.log 2>&1 || { echo "BUILD FAILED"; grep -m10 -B2 -A5 error /tmp/brA.log; exit 1; }
say built
(cd /tmp/frA && timeout 150 ctest -R 'test_cuda|gpu_ingest' 2>&1 | grep -E "Test +#|tests passed|Failed")
timeout 90 /tmp/frA/tests/test_cuda_select --verbose 2>&1 | grep -E "warpgroup|FAIL|Synthesis" | head -12
say "route_ms (routed top-k of one layer, H = 4) by warpgroups a CTA"
for n in 1048576 2097152 4194304 9830400; do for w in 1 2 3 4 auto; do
    if [ $w = auto ]; then unset FOLIO_ROUTE_WG; else export FOLIO_ROUTE_WG=$w; fi
    echo "WG=$w n=$n: $(timeout 90 /tmp/frA/folio bench attn --backend cuda --n $n --reps 5 2>&1 |
                     grep -o '"select_ms":[0-9.]*\|"route_ms":[0-9.]*' | tr '\n' ' ')"
done; done
unset FOLIO_ROUTE_WG
lscpu | grep -i "numa\|socket\|model name"; nvidia-smi topo -m 2>&1 | head -6
mk() { local f=$1 reps=$2; : > "$f"; for i in $(seq 1 "$reps"); do cat "$D/spdx-licenses.jsonl" "$D/pubmed-dev.jsonl" >> "$f"; done; }
mk /tmp/wn1.txt 2; mk /tmp/wn2.txt 4
MPI="mpirun --allow-run-as-root --oversubscribe -x NCCL_NVLS_ENABLE -x LD_LIBRARY_PATH -x FOLIO_PROFILE"
say "weak 1 vs 2 GPUs (3 reps)"
for r in 1 2 3; do for g in 1 2; do
    rm -rf /tmp/wn$g.lmdb
    echo "weak-$g rep $r: $($MPI --bind-to none -np $g /tmp/frA/folio ingest --db /tmp/wn$g.lmdb --backend cuda --threads 16 --progress /tmp/wn$g.txt 2>&1 |
                               grep '^ranks' | grep -o 'rank-0 compute [0-9.]*s, exchange [0-9.]*s ([0-9.]*%')"
done; done
say "weak-2 timelines (FOLIO_PROFILE=2)"
export FOLIO_PROFILE=2
for b in none numa none numa; do
    rm -rf /tmp/wn2.lmdb
    echo "--bind-to $b:"
    $MPI --bind-to $b -np 2 /tmp/frA/folio ingest --db /tmp/wn2.lmdb --backend cuda --threads 16 --progress /tmp/wn2.txt 2>&1 |
        grep -E 'profile (timeline|payload)|^ranks' | cut -c1-2500
done
say done
