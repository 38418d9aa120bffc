#!/usr/bin/env bash
# End-to-end ingest on GPUs (issue 6 second half, issue 7): runs ON THE GPU HOST.
#   bash bench/gpu_ingest.sh [MAX_GPUS]
# Needs .gpu/debs (LMDB/ZeroMQ/Criterion .debs, see fetch-debs.sh), .gpu/unpack.sh
# and .gpu/data (the four dev JSONL files).  Prints one table; logs in $OUT.
# 1. agreement: --backend cuda vs --backend cpu exports (bf16 tolerance)
# 2. speed: one GPU vs the CPU backend on 16 cores of the same host, on the
#    dev data and on 8 renamed copies of it
# 3. strong scaling: one ~10M-token document over 1, 2, 4 GPUs
# 4. weak scaling: one document of ~2.2M tokens per GPU over 1, 2, 4 GPUs,
#    and over a corpus: the dev data x4 per GPU
# Exchange share = NCCL/MPI exchange seconds / rank-0 compute seconds.
# SKIP_BENCH=1 leaves out the kernel/selection timings (bench attn);
# ONLY_SCALING=1 also the agreement and the speed against the CPU backend;
# SKIP_SCALING=1 leaves out the scaling runs (3, 4) instead.
# REPS=n (default 3) runs each strong and weak (one document) case n times;
# the efficiencies at the end use the median rank-0 compute seconds.
set -euo pipefail
MAXG=${1:-$(nvidia-smi -L | wc -l)}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
. "$(dirname "$0")/gpu_env.sh"
nvidia-smi -L | tee "$OUT/cards.txt"
nproc
SRC=${SRC:-.}   # a clean snapshot (git archive) may be given
D=$PWD/.gpu/data
cmake -S "$SRC" -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DFOLIO_TESTS=ON \
      -DFOLIO_DATA_DIR="$D" > "$OUT/cmake.log" 2>&1
cmake --build build-gpu -j 16 > "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
F=$PWD/build-gpu/folio
# The device's own checks first: every CUDA kernel against its CPU reference,
# and the 2-GPU ingest against the 1-GPU and CPU ones.
echo "== GPU tests" | tee -a "$OUT/table.txt"
ctest --test-dir build-gpu -R 'cuda|gpu' --output-on-failure > "$OUT/ctest.log" 2>&1 \
    && echo "GPU tests passed" | tee -a "$OUT/table.txt" \
    || { echo "GPU TESTS FAILED"; tail -60 "$OUT/ctest.log"; } | tee -a "$OUT/table.txt"
grep -E 'tests passed|Passed|Failed|Skipped' "$OUT/ctest.log" | tail -8 | tee -a "$OUT/table.txt"
# The kernel and the summary-key selection alone (routing is O(blocks^2)).
echo "== bench attn --backend cuda (default pattern; select = hierarchy + routing of one layer)" | tee -a "$OUT/table.txt"
[ -n "${SKIP_BENCH:-}" ] || for n in 65536 1048576 9830400; do
    "$F" bench attn --backend cuda --n "$n" --reps 3 2>&1 | tee -a "$OUT/table.txt"
done
export FOLIO_PROFILE=1  # stage timings of documents >= 64k tokens on stderr
W=/tmp/gi; rm -rf "$W"; mkdir -p "$W"
MPI="mpirun --allow-run-as-root --oversubscribe --bind-to none -x NCCL_NVLS_ENABLE -x LD_LIBRARY_PATH"

ingest() { # label db np backend threads inputs...
    local label=$1 db=$2 np=$3 be=$4 th=$5; shift 5
    rm -rf "$db"
    local s e line stats
    s=$(date +%s.%N)
    if [ "$np" = 1 ]; then
        line=$("$F" ingest --db "$db" --backend "$be" --threads "$th" --progress "$@" 2> "$W/err" | tail -n 1)
    else
        line=$($MPI -np "$np" "$F" ingest --db "$db" --backend "$be" --threads "$th" --progress "$@" 2> "$W/err" | tail -n 1)
    fi
    e=$(date +%s.%N)
    stats=$(grep '^ranks' "$W/err" | tail -n 1 || true)
    cp "$W/err" "$OUT/$label.err"
    printf '%s\n' "$line" > "$OUT/$label.out"
    printf '%-28s wall %7.2fs  %s\n    %s\n' "$label" "$(awk -v a="$s" -v b="$e" 'BEGIN { print b - a }')" "$line" "$stats" | tee -a "$OUT/table.txt"
}

if [ -z "${ONLY_SCALING:-}" ]; then
echo "== agreement (sciqa + billsum)" | tee -a "$OUT/table.txt"
ingest cpu-dev "$W/cpu.lmdb" 1 cpu 16 "$D/sciqa-dev.jsonl" "$D/billsum-dev.jsonl"
ingest gpu-dev "$W/gpu.lmdb" 1 cuda 16 "$D/sciqa-dev.jsonl" "$D/billsum-dev.jsonl"
"$F" export --db "$W/cpu.lmdb" --vectors > "$W/cpu.jsonl"
"$F" export --db "$W/gpu.lmdb" --vectors > "$W/gpu.jsonl"
python3 "$SRC/bench/compare_exports.py" "$W/gpu.jsonl" "$W/cpu.jsonl" | tee -a "$OUT/table.txt" || echo "AGREEMENT FAILED" | tee -a "$OUT/table.txt"

echo "== speed: all dev data, 1 GPU vs CPU backend on 16 cores" | tee -a "$OUT/table.txt"
ingest cpu16-all "$W/c16.lmdb" 1 cpu 16 "$D"/*.jsonl
ingest gpu1-all "$W/g1.lmdb" 1 cuda 16 "$D"/*.jsonl

# The same at corpus scale: the dev data 8 times under new ids (each copy's
# texts prefixed by its number, so none is a duplicate), where the fixed
# costs (CUDA context, MPI start) no longer dominate a 1-second job.
C8=$W/dev8.jsonl; dev_copies 8 "$C8"
ingest cpu16-dev8 "$W/c16x8.lmdb" 1 cpu 16 "$C8"
ingest gpu1-dev8 "$W/g1x8.lmdb" 1 cuda 16 "$C8"
rm -rf "$W/c16x8.lmdb" "$W/g1x8.lmdb"
fi

if [ -z "${SKIP_SCALING:-}" ]; then
# One big document: the dev files concatenated, repeated.
mk() { local f=$1 reps=$2; : > "$f"; for i in $(seq 1 "$reps"); do cat "$D/spdx-licenses.jsonl" "$D/pubmed-dev.jsonl" >> "$f"; done; }
mk "$W/doc10m.txt" 9
echo "== strong scaling: one ~10M-token document" | tee -a "$OUT/table.txt"
REPS=${REPS:-3}
for g in 1 2 4; do
    [ "$g" -le "$MAXG" ] || continue
    for r in $(seq 1 "$REPS"); do ingest "strong-$g-r$r" "$W/s$g.lmdb" "$g" cuda 16 "$W/doc10m.txt"; done
done
[ "$MAXG" -ge 2 ] && { "$F" export --db "$W/s1.lmdb" --vectors > "$W/s1.jsonl"; }
for g in 2 4; do
    [ "$g" -le "$MAXG" ] || continue
    "$F" export --db "$W/s$g.lmdb" --vectors > "$W/s$g.jsonl"
    echo "strong $g GPUs vs 1: $(python3 "$SRC/bench/compare_exports.py" "$W/s$g.jsonl" "$W/s1.jsonl" || true)" | tee -a "$OUT/table.txt"
done
echo "== weak scaling: ~2.2M tokens per GPU in one shared document" | tee -a "$OUT/table.txt"
for g in 1 2 4; do
    [ "$g" -le "$MAXG" ] || continue
    mk "$W/weak$g.txt" $((2 * g))
    for r in $(seq 1 "$REPS"); do ingest "weak-$g-r$r" "$W/w$g.lmdb" "$g" cuda 16 "$W/weak$g.txt"; done
done
# medians of rank-0 compute seconds and exchange shares over the repeats
med() { # label, the text before the value, the text after it
    grep -h '^ranks' "$OUT"/$1-r*.err 2>/dev/null | grep -o "$2[0-9.]*$3" | sed -e "s/^$2//" -e "s/$3\$//" | sort -g |
        awk '{a[NR] = $1} END { if (NR) print a[int((NR + 1) / 2)] }'; }
echo "== efficiencies (median of $REPS; rank-0 compute seconds; exchange share of it)" | tee -a "$OUT/table.txt"
for kind in strong weak; do
    b=$(med "$kind-1" "rank-0 compute " "s,")
    for g in 1 2 4; do
        [ "$g" -le "$MAXG" ] && [ -n "$b" ] || continue
        t=$(med "$kind-$g" "rank-0 compute " "s,"); x=$(med "$kind-$g" "(" "% of compute")
        awk -v k="$kind" -v g="$g" -v b="$b" -v t="$t" -v x="$x" 'BEGIN {
            e = k == "strong" ? b / (g * t) : b / t
            printf "%-6s %d GPU(s): rank-0 compute %.3f s, efficiency %.0f %%, exchange %s %% of compute\n", k, g, t, 100 * e, x }' |
            tee -a "$OUT/table.txt"
    done
done
# Weak scaling over a corpus (the corpus-scale case): the dev data x4 per
# GPU, renamed copies, so each GPU gets the same tokens as whole documents;
# efficiency = job seconds on 1 GPU / job seconds on g GPUs.
echo "== weak scaling over a corpus: dev data x4 per GPU (renamed copies)" | tee -a "$OUT/table.txt"
for g in 1 2 4; do
    [ "$g" -le "$MAXG" ] || continue
    CW=$W/corpus-w$g.jsonl; dev_copies $((4 * g)) "$CW" w
    ingest "weakc-$g" "$W/wc$g.lmdb" "$g" cuda 16 "$CW"
    rm -rf "$W/wc$g.lmdb"
    # the same with the writer building commits in memory (the commit is the limit here)
    ingest "weakc-$g-buffer" "$W/wc$g.lmdb" "$g" cuda 16 --writes buffer "$CW"
    rm -rf "$W/wc$g.lmdb"
done
jsec() { sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p' "$OUT/$1.out" 2>/dev/null; }
for mode in "" "-buffer"; do
    b=$(jsec "weakc-1$mode")
    for g in 2 4; do
        [ "$g" -le "$MAXG" ] && [ -n "$b" ] || continue
        t=$(jsec "weakc-$g$mode")
        [ -n "$t" ] && awk -v m="${mode:--map}" -v g="$g" -v b="$b" -v t="$t" \
            'BEGIN { printf "corpus %s %d GPUs: job %.3f s vs %.3f s on 1, efficiency %.0f %%\n", substr(m, 2), g, t, b, 100 * b / t }' |
            tee -a "$OUT/table.txt"
    done
done
fi
cp "$W"/*.err "$OUT/" 2>/dev/null || true
echo "== per-document profile (FOLIO_PROFILE=1), strong and weak runs" | tee -a "$OUT/table.txt"
for f in "$OUT"/gpu1-all.err "$OUT"/strong-*-r1.err "$OUT"/weak-*-r1.err; do
    [ -f "$f" ] && grep -h 'profile' "$f" | sed "s|^|$(basename "$f" .err): |" | tee -a "$OUT/table.txt"
done
echo "== table"; cat "$OUT/table.txt"
# one archive, so that every log comes back from the GPU host (written
# outside $OUT: tar fails on an archive that grows inside what it reads)
tar -czf /tmp/gi-logs.tgz -C "$OUT" . && mv /tmp/gi-logs.tgz "$OUT/logs.tgz" \
    && find "$OUT" -maxdepth 1 -type f ! -name logs.tgz ! -name table.txt -delete
