#!/usr/bin/env bash
# Nsight Compute on the routed top-k (GPU host, repository root, .gpu/ carried;
# ~3 minutes): the kernel on random summaries (`folio bench attn`, 2M tokens)
# and on a real document's first layer (ingest of ~2.2M tokens), so the two
# can be told apart (real summaries send more candidates to exact scoring).
# Full reports in $OUT/ncu_*.txt; the lines that place the time, streamed.
set -uo pipefail
. "$(dirname "$0")/gpu_env.sh"
D=$PWD/.gpu/data; OUT=${OUT:-/tmp}
cmake -S . -B /tmp/fq -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DFOLIO_DATA_DIR="$D" > /tmp/cq.log 2>&1
cmake --build /tmp/fq -j 30 --target folio > /tmp/bq.log 2>&1 || { echo "BUILD FAILED"; grep -m10 error /tmp/bq.log; exit 1; }
SEC="--section SpeedOfLight --section Occupancy --section WarpStateStats --section SchedulerStats
     --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section InstructionStats --section LaunchStats"
KEEP='Duration|Throughput|Pipe|Stall|Issue|Eligible|Active Warps|Achieved|L2|L1|Registers|Executed Ipc|Instructions|Warp Cycles|Block Limit|Shared Memory|DRAM|Bank'
f=${1:-both}
if [ "$f" != ingest ]; then
  timeout 200 ncu --clock-control none --kernel-name regex:route_topk_wg --launch-skip 1 --launch-count 1 $SEC \
      /tmp/fq/folio bench attn --backend cuda --n 2097152 --reps 1 > "$OUT/ncu_bench.txt" 2>&1
  echo "== bench, random summaries, 2M tokens"; grep -E "$KEEP" "$OUT/ncu_bench.txt" | head -90
fi
if [ "$f" != bench ]; then
  : > /tmp/w1.txt; for i in 1 2; do cat "$D/spdx-licenses.jsonl" "$D/pubmed-dev.jsonl" >> /tmp/w1.txt; done
  rm -rf /tmp/w1.lmdb
  timeout 200 ncu --clock-control none --kernel-name regex:route_topk_wg --launch-count 1 $SEC \
      /tmp/fq/folio ingest --db /tmp/w1.lmdb --backend cuda --threads 16 /tmp/w1.txt > "$OUT/ncu_ingest.txt" 2>&1
  echo "== ingest, a real 2.2M-token document, layer 1"; grep -E "$KEEP" "$OUT/ncu_ingest.txt" | head -90
fi
