#!/usr/bin/env python3
"""Compare two `folio export --vectors` dumps (e.g. CUDA vs CPU backend).

Documents are matched by id; the text-derived fields (hash, spans) must be
equal; vectors and salience are compared numerically:
  rel  = ||a - b|| / ||b|| over all sentence vectors of all documents,
  cos  = per-sentence cosine similarity (min and mean),
  sal  = ||sal_a - sal_b|| / ||sal_b|| over all documents,
  and rel for the block and section vectors too (blk, sec).
Exit 1 when rel, blk, sec or sal > --tol (default 1e-2, the bf16 tolerance of
issue 6), a document's vector table has another shape, or a structural field
differs.  Prints one JSON line.
"""
import argparse, json, math, sys


def load(path):
    docs = {}
    with open(path) as f:
        for line in f:
            o = json.loads(line)
            if "id" in o and "sentences" in o:
                docs[o["id"]] = o
    return docs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b", help="reference")
    ap.add_argument("--tol", type=float, default=1e-2)
    args = ap.parse_args()
    A, B = load(args.a), load(args.b)
    faults = []
    if set(A) != set(B):
        faults.append("document ids differ: %d vs %d" % (len(A), len(B)))
    num = den = snum = sden = 0.0
    cmin, csum, cn = 1.0, 0.0, 0
    worst = (0.0, None)
    tab = {"block_vecs": [0.0, 0.0], "section_vecs": [0.0, 0.0]}
    for k in sorted(set(A) & set(B)):
        a, b = A[k], B[k]
        for f in ("hash", "tokens", "sentences", "sections"):
            if a.get(f) != b.get(f):
                faults.append("%s: %s differs" % (k, f))
        va, vb = a.get("sent_vecs") or [], b.get("sent_vecs") or []
        dn = dd = 0.0
        for x, y in zip(va, vb):
            d2 = sum((p - q) ** 2 for p, q in zip(x, y))
            n2 = sum(q * q for q in y)
            dn += d2
            dd += n2
            na = math.sqrt(sum(p * p for p in x))
            nb = math.sqrt(n2)
            if na > 0 and nb > 0:
                c = sum(p * q for p, q in zip(x, y)) / (na * nb)
                cmin = min(cmin, c)
                csum += c
                cn += 1
        num += dn
        den += dd
        if dd > 0 and math.sqrt(dn / dd) > worst[0]:
            worst = (math.sqrt(dn / dd), k)
        for f, acc in tab.items():
            ta, tb = a.get(f) or [], b.get(f) or []
            if len(ta) != len(tb) or any(len(x) != len(y) for x, y in zip(ta, tb)):
                faults.append("%s: %s has another shape" % (k, f))
                continue
            for x, y in zip(ta, tb):
                acc[0] += sum((p - q) ** 2 for p, q in zip(x, y))
                acc[1] += sum(q * q for q in y)
        sa, sb = a.get("salience") or [], b.get("salience") or []
        snum += sum((p - q) ** 2 for p, q in zip(sa, sb))
        sden += sum(q * q for q in sb)
    rel = math.sqrt(num / den) if den else 0.0
    sal = math.sqrt(snum / sden) if sden else 0.0
    out = {"docs": len(set(A) & set(B)), "rel_err_sent_vecs": rel, "cos_min": cmin,
           "cos_mean": csum / cn if cn else 1.0, "rel_err_salience": sal,
           "worst_doc": worst[1], "worst_rel": worst[0], "faults": faults[:5]}
    for f, (n, d) in tab.items():
        out["rel_err_" + f] = math.sqrt(n / d) if d else 0.0
    print(json.dumps(out))
    worst_tab = max(out["rel_err_block_vecs"], out["rel_err_section_vecs"], sal)
    return 1 if faults or rel > args.tol or worst_tab > args.tol else 0


if __name__ == "__main__":
    sys.exit(main())
