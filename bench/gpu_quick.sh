#!/usr/bin/env bash
# Quick device check (GPU host, repository root, .gpu/ carried): builds the default
# kernel and one variant (ALT, default -DFOLIO_ATTN_STAGES=3), runs the device tests
# (default) and test_cuda_attn, test_cuda_select, test_cuda_embed (variant), times both with `folio bench attn`
# (kernel TFLOP/s and the routed top-k's route_ms), then one
# document on 1 and 2 GPUs with FOLIO_PROFILE (weak scaling, rank-0 stages).  ~2 minutes.
#   bash bench/gpu_quick.sh            ALT="-DFOLIO_ATTN_STAGES=3" bash bench/gpu_quick.sh
#   ALT="-DFOLIO_ROUTE_WG_MIN_BLOCKS=3" bash bench/gpu_quick.sh   (a routing variant; for routing
#   work bench/gpu_route.sh compares several builds at 1M-9.8M tokens)
set -uo pipefail
. "$(dirname "$0")/gpu_env.sh"
D=$PWD/.gpu/data; t0=$(date +%s)
cmake -S . -B /tmp/fA -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DFOLIO_TESTS=ON -DFOLIO_DATA_DIR=$D > /tmp/cA.log 2>&1
cmake -S . -B /tmp/fB -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DFOLIO_TESTS=ON -DFOLIO_DATA_DIR=$D "-DCMAKE_CUDA_FLAGS=${ALT:--DFOLIO_ATTN_STAGES=3}" > /tmp/cB.log 2>&1
( cmake --build /tmp/fA -j 20 > /tmp/bA.log 2>&1 || { echo BUILD A FAILED; grep -m5 error /tmp/bA.log; } ) &
( cmake --build /tmp/fB -j 12 --target folio test_cuda_attn test_cuda_select test_cuda_embed > /tmp/bB.log 2>&1 || { echo BUILD B FAILED; grep -m5 error /tmp/bB.log; } ) &
wait; echo "built $(( $(date +%s) - t0 )) s"
echo "== device tests (default = lazy)"; (cd /tmp/fA && timeout 90 ctest -R 'cuda|gpu' 2>&1 | grep -E "Test +#|tests passed|Failed")
for t in test_cuda_attn test_cuda_select test_cuda_embed; do
  echo -n "variant (${ALT:--DFOLIO_ATTN_STAGES=3}) $t: "; timeout 60 /tmp/fB/tests/$t 2>&1 | grep Synthesis
done
echo "== bench (useful TFLOP/s)"
for pat in "local,window=256,heads=16,layers=1" "hier+topk,heads=16,layers=1"; do for n in 65536 1048576; do
  [ "$pat" != "${pat#hier}" ] && [ $n = 65536 ] && continue
  for v in A B; do echo -n "$v ${pat%%,*} $n: "; timeout 30 /tmp/f$v/folio bench attn --backend cuda --n $n --reps 5 --pattern $pat 2>&1 | grep -o '"ms_median":[0-9.]*\|"tflops_useful":[0-9.]*\|"route_ms":[0-9.]*' | tr '\n' ' '; echo; done
done; done
echo "== weak 1 vs 2 GPUs (one document), FOLIO_PROFILE"
mk() { local f=$1 reps=$2; : > "$f"; for i in $(seq 1 "$reps"); do cat "$D/spdx-licenses.jsonl" "$D/pubmed-dev.jsonl" >> "$f"; done; }
mk /tmp/w1.txt 2; mk /tmp/w2.txt 4
for v in A B; do # the device timeline of one 2.2M-token document, default and variant
  rm -rf /tmp/w1.lmdb
  echo -n "$v timeline: "; FOLIO_PROFILE=2 timeout 60 /tmp/f$v/folio ingest --db /tmp/w1.lmdb --backend cuda --threads 16 /tmp/w1.txt 2>&1 | grep -o "timeline.*" | cut -c1-400
done
export FOLIO_PROFILE=1
rm -rf /tmp/w1.lmdb /tmp/w2.lmdb
timeout 60 /tmp/fA/folio ingest --db /tmp/w1.lmdb --backend cuda --threads 16 --progress /tmp/w1.txt 2>&1 | grep -E "profile /|^ranks|rank-0" | cut -c1-330
timeout 90 mpirun --allow-run-as-root --oversubscribe --bind-to none -x NCCL_NVLS_ENABLE -x LD_LIBRARY_PATH -x FOLIO_PROFILE -np 2 /tmp/fA/folio ingest --db /tmp/w2.lmdb --backend cuda --threads 16 --progress /tmp/w2.txt 2>&1 | grep -E "profile /|^ranks" | cut -c1-330
echo "total $(( $(date +%s) - t0 )) s"
