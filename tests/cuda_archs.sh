#!/usr/bin/env bash
# The multi-architecture CUDA build the README offers ("80;90a"): every .cu file
# must compile for sm_80 beside sm_90a, i.e. the sm_90a-only instructions (wgmma,
# TMA, mbarrier expect_tx) stay behind their guards.  The default build makes
# sm_90a alone, so without this a guard could go missing unnoticed.
# Env: NVCC (the CUDA compiler), FOLIO_SRC (source tree).
set -euo pipefail
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for f in "$FOLIO_SRC"/attn/*.cu; do
    "$NVCC" -O1 -std=c++17 --expt-relaxed-constexpr -DFOLIO_HAVE_CUDA=1 -DFOLIO_WGMMA=1 \
        -I"$FOLIO_SRC" -I"$FOLIO_SRC/common" -I"$FOLIO_SRC/attn" \
        --generate-code=arch=compute_80,code=sm_80 --generate-code=arch=compute_90a,code=sm_90a \
        -c "$f" -o "$out/$(basename "$f").o" || { echo "cuda_archs: $f does not build for sm_80 + sm_90a" >&2; exit 1; }
    echo "cuda_archs: $(basename "$f") ok"
done
