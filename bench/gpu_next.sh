#!/usr/bin/env bash
# The eighth session's unmeasured work in one device call (GPU host, repository
# root, .gpu/ carried; a 2-GPU host; ~5 minutes).  Every line goes to stdout as it
# is made, so a call that hits its time limit still returns what it measured.
#   A = default build; B = -DFOLIO_ROUTE_WGMMA=1 (routed top-k on wgmma);
#   C = -DFOLIO_EMBED_FAST=1 (embedding kernel with the lanes sharing the work).
# 1. device tests on A; test_cuda_select on B; test_cuda_embed on C (adopt a
#    variant only if its test passes);
# 2. route_ms of A and B at 1M, 2M, 4M and 9.8M tokens (`folio bench attn`);
# 3. the "embedded" step of the FOLIO_PROFILE=2 timeline, A and C, 2.2M tokens;
# 4. weak scaling 1 vs 2 GPUs (one shared document, 3 reps) with A and with B;
# 5. a corpus (dev data x4 per GPU) on 1 and 2 GPUs, --writes map vs buffer.
set -uo pipefail
. "$(dirname "$0")/gpu_env.sh"
D=$PWD/.gpu/data; t0=$(date +%s)
say() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
conf() { cmake -S . -B "/tmp/fn$1" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DFOLIO_TESTS=ON \
         -DFOLIO_DATA_DIR="$D" ${2:+"-DCMAKE_CUDA_FLAGS=$2"} > "/tmp/cn$1.log" 2>&1; }
conf A; conf B -DFOLIO_ROUTE_WGMMA=1; conf C -DFOLIO_EMBED_FAST=1
( cmake --build /tmp/fnA -j 12 > /tmp/bnA.log 2>&1 || { echo "BUILD A FAILED"; grep -m5 error /tmp/bnA.log; } ) &
( cmake --build /tmp/fnB -j 10 --target folio test_cuda_select > /tmp/bnB.log 2>&1 || { echo "BUILD B FAILED"; grep -m5 error /tmp/bnB.log; } ) &
( cmake --build /tmp/fnC -j 10 --target folio test_cuda_embed > /tmp/bnC.log 2>&1 || { echo "BUILD C FAILED"; grep -m5 error /tmp/bnC.log; } ) &
wait; say built
(cd /tmp/fnA && timeout 120 ctest -R 'test_cuda|gpu_ingest' 2>&1 | grep -E "Test +#|tests passed|Failed")
echo -n "B test_cuda_select: "; timeout 90 /tmp/fnB/tests/test_cuda_select 2>&1 | grep Synthesis
echo -n "C test_cuda_embed: "; timeout 90 /tmp/fnC/tests/test_cuda_embed 2>&1 | grep Synthesis
say "route_ms (routed top-k of one layer, H = 4)"
for n in 1048576 2097152 4194304 9830400; do for v in A B; do
    echo "$v n=$n: $(timeout 60 /tmp/fn$v/folio bench attn --backend cuda --n $n --reps 5 2>&1 |
                     grep -o '"select_ms":[0-9.]*\|"route_ms":[0-9.]*' | tr '\n' ' ')"
done; done
mk() { local f=$1 reps=$2; : > "$f"; for i in $(seq 1 "$reps"); do cat "$D/spdx-licenses.jsonl" "$D/pubmed-dev.jsonl" >> "$f"; done; }
mk /tmp/wn1.txt 2; mk /tmp/wn2.txt 4
say "timeline of one 2.2M-token document (embedded = input + embedding)"
for v in A C A C; do
    rm -rf /tmp/wn1.lmdb
    echo "$v: $(FOLIO_PROFILE=2 timeout 60 /tmp/fn$v/folio ingest --db /tmp/wn1.lmdb --backend cuda --threads 16 /tmp/wn1.txt 2>&1 |
                grep -o 'input copied [^)]*) embedded [^)]*)')"
done
say "weak 1 vs 2 GPUs, rank-0 compute and exchange share (A, B)"
MPI="mpirun --allow-run-as-root --oversubscribe --bind-to none -x NCCL_NVLS_ENABLE -x LD_LIBRARY_PATH"
for r in 1 2 3; do for v in A B; do for g in 1 2; do
    rm -rf /tmp/wn$g.lmdb
    echo "$v weak-$g rep $r: $($MPI -np $g /tmp/fn$v/folio ingest --db /tmp/wn$g.lmdb --backend cuda --threads 16 --progress /tmp/wn$g.txt 2>&1 |
                               grep '^ranks' | grep -o 'rank-0 compute [0-9.]*s, exchange [0-9.]*s ([0-9.]*%')"
done; done; done
say "corpus (dev data x4 per GPU), job seconds, --writes map vs buffer (A)"
for g in 1 2; do
    CW=/tmp/cn$g.jsonl; : > "$CW"
    for i in $(seq 1 $((4 * g))); do for src in pubmed-dev billsum-dev sciqa-dev spdx-licenses; do
        sed -e "s/^{\"id\": *\"/{\"id\": \"w$i-/" -e "s/\"text\": *\"/\"text\": \"Copy $i. /" "$D/$src.jsonl" >> "$CW"
    done; done
    for w in map buffer map buffer; do
        rm -rf /tmp/cn$g.lmdb
        out=$($MPI -np $g /tmp/fnA/folio ingest --db /tmp/cn$g.lmdb --backend cuda --threads 16 --progress --writes $w "$CW" 2>&1)
        echo "corpus $g GPU(s) --writes $w: $(printf '%s\n' "$out" | grep -o '"seconds":[0-9.]*') $(printf '%s\n' "$out" |
             grep '^ranks' | grep -o 'commit [0-9.]*s (overlapped; waited for [0-9.]*s)\|peak anon RSS [0-9]* MB' | tr '\n' ' ')"
    done
done
say done
