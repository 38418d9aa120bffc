#!/usr/bin/env bash
# bench/gpu_ab.sh — runs ON THE GPU HOST (repository root, .gpu/ carried; see GPU_NOTES.md):
# one variant of the attention kernel against the default, in one process on the same inputs,
# in both orders (flex_compare's alt column reads 3-6 % slower for the same kernel: it runs
# after two 300 ms bursts, deeper in the card's power cap -- eleventh session), after the
# variant's device tests.
#   ALT="-DFOLIO_ATTN_PIPE=1 -DFOLIO_ATTN_STAGES=3" bash bench/gpu_ab.sh   (the same source, other flags)
#   ALT_SRC=.gpu/base_sparse.cu bash bench/gpu_ab.sh                       (another attn_sparse.cu, e.g. a baseline's)
# N (default 65536,262144,1048576), PATTERNS (default local), WARMUP_MS (default 1000: the
# power-capped state), TESTS (default 1: test_cuda_attn and test_cuda_select of the variant).
# Compare the main-position medians (`folio ms` of each order); the SASS of both goes to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/gpu_env.sh
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
ALT=${ALT:-}; ALT_SRC=${ALT_SRC:-}
[ -n "$ALT$ALT_SRC" ] || { echo "gpu_ab.sh: give ALT (flags) or ALT_SRC (a source file)" >&2; exit 2; }
N=${N:-65536,262144,1048576}; PATTERNS=${PATTERNS:-local}; WARMUP_MS=${WARMUP_MS:-1000}; TESTS=${TESTS:-1}
D=$PWD/.gpu/data; t0=$(date +%s)
B=/tmp/gpu_ab; rm -rf "$B"; mkdir -p "$B/so"
# the variant's tree for its tests: this one, with ALT_SRC in place of attn/attn_sparse.cu
R=$PWD
if [ -n "$ALT_SRC" ]; then
  R=$B/tree; mkdir -p "$R"; tar --exclude=./.gpu --exclude='./build*' -cf - . | tar -xf - -C "$R"; cp "$ALT_SRC" "$R/attn/attn_sparse.cu"
fi
if [ "$TESTS" = 1 ]; then
  cmake -S "$R" -B "$B/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a -DFOLIO_TESTS=ON \
        -DFOLIO_DATA_DIR="$D" "-DCMAKE_CUDA_FLAGS=$ALT" > "$OUT/ab_cmake.log" 2>&1 || tail -5 "$OUT/ab_cmake.log"
  ( cmake --build "$B/build" -j 14 --target test_cuda_attn test_cuda_select > "$OUT/ab_build.log" 2>&1 ||
      { echo "variant tests: BUILD FAILED"; grep -m5 -i error "$OUT/ab_build.log"; } ) &
fi
attn_libs "$B" main - - alt "${ALT:--}" "${ALT_SRC:--}" # (its wait includes the tests' build above)
cp "$B/alt.resources.txt" "$OUT/ab_alt_resources.txt"; cp "$B"/main.sass "$B"/alt.sass "$OUT/" 2>/dev/null
grep -E "C75|spill" "$OUT/ab_alt_resources.txt" 2>/dev/null | sed 's/in the function.*//' | sort | uniq -c
echo "built $(( $(date +%s) - t0 )) s"
if [ "$TESTS" = 1 ]; then
  for t in test_cuda_attn test_cuda_select; do
    echo -n "variant $t: "
    (cd "$B/build/tests" && timeout 150 ./$t -j4 --verbose=1 > "$OUT/ab_$t.log" 2>&1); grep -E "Synthesis" "$OUT/ab_$t.log"
    grep -E "FAIL|fail" "$OUT/ab_$t.log" | head -10
  done
  echo "tests $(( $(date +%s) - t0 )) s"
fi
ab() { timeout 250 python3 bench/flex_compare.py --lib "$B/lib_$1.so" --lib-alt "$B/lib_$2.so" --n "$N" \
           --patterns "$PATTERNS" --no-flex --warmup-ms "$WARMUP_MS" 2>&1 | grep -E "^(local|hier|pattern)|rror"; }
echo "-- main = default, alt = variant"; ab main alt
echo "-- main = variant, alt = default"; ab alt main
echo "total $(( $(date +%s) - t0 )) s"
