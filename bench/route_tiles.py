#!/usr/bin/env python3
"""How many candidate tiles the routed top-k really needs, on real summaries.

Reads the first document of a `folio export --vectors` JSONL (its block
vectors), and per head reports: the share of (row, tile) and (64-row CTA,
tile) pairs holding a candidate within the GPU kernel's bf16 band of the
row's k-th best score (those reach exact scoring), and the share of tiles a
centroid + radius bound cannot prune.  Needs numpy.  bench/GPU_NOTES.md,
"Routing: what real summaries allow".
    python3 bench/route_tiles.py export.jsonl [heads]
"""
import json
import sys

import numpy as np


def main():
    path = sys.argv[1]
    heads = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    with open(path) as f:
        doc = json.loads(f.readline())
    d = doc["d"]
    blocks = np.array(doc["block_vecs"], dtype=np.float64).reshape(-1, d)
    nb, group, k, eps = blocks.shape[0], 64, 8, 0.0085
    ntile = (nb + 63) // 64
    dh = d // heads
    print(f"{doc['id']}: {nb} blocks, {ntile} tiles, {heads} heads of {dh}")
    for h in range(heads):
        kh = blocks[:, dh * h:dh * (h + 1)]
        norms = np.linalg.norm(kh, axis=1)
        cent = np.stack([kh[64 * t:64 * t + 64].mean(axis=0) for t in range(ntile)])
        rad = np.array([np.linalg.norm(kh[64 * t:64 * t + 64] - cent[t], axis=1).max() for t in range(ntile)])
        row_tiles = cta_tiles = cent_rows = cent_ctas = 0
        for c in range(ntile):
            r0, r1 = 64 * c, min(64 * c + 64, nb)
            s = kh[r0:r1] @ kh.T
            for i in range(r1 - r0):
                g0 = (r0 + i) // group * group
                s[i, g0:g0 + group] = -np.inf
            kth = np.partition(s, -k, axis=1)[:, -k]
            band = 2 * eps * norms[r0:r1, None] * norms[None, :]
            near = np.zeros((r1 - r0, ntile * 64), dtype=bool)
            near[:, :nb] = s >= kth[:, None] - band
            per_tile = near.reshape(r1 - r0, ntile, 64).any(axis=2)
            row_tiles += per_tile.sum()
            cta_tiles += per_tile.any(axis=0).sum()
            ub = kh[r0:r1] @ cent.T + norms[r0:r1, None] * rad[None, :]
            keep = ub >= kth[:, None]
            cent_rows += keep.sum()
            cent_ctas += keep.any(axis=0).sum()
        print(f"head {h}: tiles with candidates in the band: {row_tiles / (nb * ntile):.1%} per row "
              f"({row_tiles / nb:.1f} tiles), {cta_tiles / ntile ** 2:.1%} per CTA; "
              f"not prunable by centroid + radius: {cent_rows / (nb * ntile):.1%} per row, "
              f"{cent_ctas / ntile ** 2:.1%} per CTA (radius / |k| {np.median(rad) / np.median(norms):.2f})")


if __name__ == "__main__":
    main()
