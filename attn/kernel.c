/* attn/kernel.c — the CPU attention kernels: the fast block-sparse forward,
 * the dense reference with an explicit mask, the mask builder, and the FMA
 * peak probe.
 *
 * Fast kernel layout.  One task = (query block, head).  The task keeps, for
 * each of its <= B queries, the online-softmax state (running max m, sum l,
 * accumulator acc (d_h)).  Keys are processed in tiles of T = 32: first the
 * block's selected summary nodes (gathered once per task), then the window
 * [max(0, qs-W), min(n, qe+W)) in tiles anchored at its start (so tile
 * boundaries depend only on the block, never on the caller's split).  A tile
 * is transposed once, (d_h, T), and reused by every query whose window meets
 * it; queries go 4 at a time through a 4x32 score micro-kernel and a 4 x d_h
 * value micro-kernel, both register-resident vectors of 16 floats (GCC/Clang
 * vector extensions: AVX-512 or AVX2 under -march=native, narrower ISAs get
 * the same code lowered).  Each task runs on one thread in a fixed order, so
 * results do not depend on threads or scheduling.
 */
#include "attn.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attn_cpu_simd.h"

#define NK 4              /* 16-float vectors per key tile */
#define TILE (16 * NK)    /* keys per tile */
#define QR 4    /* queries per micro-kernel call */

/* Per-thread scratch of one task. */
typedef struct {
    int dhp;        /* d_h rounded up to 16 */
    float *kt;      /* (d_h, TILE) transposed keys of the current tile */
    float *vb;      /* (TILE, dhp) values of the current tile, zero padded */
    float *m, *l;   /* (B) */
    float *acc;     /* (B, dhp) */
    float *sc;      /* (B, s_max) exp(score - m_t) of the summary keys (for node mass) */
    float *smx;     /* (B, nst) m_t: a query's running max after summary tile t */
    float *nmacc;   /* (s_max + 16) node mass accumulator */
    float *dacc;    /* (QR, dhp) sink for the padding rows of a partial query group */
    int64_t *mass;  /* (n_nodes) this thread's share of a->mass, or NULL */
    float *ckt;     /* (d_h, ldk) keys of the chunk's window range, transposed */
    float *cv;      /* (nk + TILE, dhp) values of the chunk's window range */
    size_t ckt_cap, cv_cap;
    float dm[QR], dl[QR];
} scratch_t;

static void scratch_free(scratch_t *s)
{
    free(s->kt);
    free(s->vb);
    free(s->m);
    free(s->l);
    free(s->acc);
    free(s->sc);
    free(s->smx);
    free(s->dacc);
    free(s->nmacc);
    free(s->ckt);
    free(s->cv);
    memset(s, 0, sizeof *s);
}

static bool scratch_alloc(scratch_t *s, int B, int d_h, int s_max)
{
    memset(s, 0, sizeof *s);
    s->dhp = (d_h + 15) / 16 * 16;
    s->kt = aligned_alloc(64, sizeof(float) * (size_t)d_h * TILE + 64);
    s->vb = aligned_alloc(64, sizeof(float) * (size_t)TILE * s->dhp);
    s->m = malloc(sizeof(float) * B);
    s->l = malloc(sizeof(float) * B);
    s->acc = aligned_alloc(64, sizeof(float) * (size_t)B * s->dhp);
    s->sc = malloc(sizeof(float) * ((size_t)B * (s_max > 0 ? s_max : 1) + 16)); /* +16: vector tail reads */
    s->nmacc = malloc(sizeof(float) * ((size_t)s_max + 32));
    s->smx = malloc(sizeof(float) * ((size_t)B * (s_max / TILE + 1) + 1));
    s->dacc = aligned_alloc(64, sizeof(float) * QR * s->dhp);
    if (!s->kt || !s->vb || !s->m || !s->l || !s->acc || !s->sc || !s->dacc || !s->nmacc || !s->smx) {
        scratch_free(s);
        return false;
    }
    memset(s->vb, 0, sizeof(float) * (size_t)TILE * s->dhp);
    return true;
}

/* Value micro-kernel: acc[r] = acc[r]*alpha[r] + sum_j p[r][j] v[j] for QR
 * rows, nv vectors of 16 per row (NV known at compile time when inlined). */
static inline __attribute__((always_inline)) void pv_rows(float *const accr[QR], const float alpha[QR],
                                                          const float p[QR][TILE], const float *vb,
                                                          int dhp, int tl, const int NV)
{
    v16f a[QR][4];
    for (int r = 0; r < QR; r++)
        for (int v = 0; v < NV; v++) a[r][v] = v16_load(accr[r] + 16 * v) * alpha[r];
    for (int j = 0; j < tl; j++) {
        const float *vr = vb + (size_t)j * dhp;
        v16f x[4];
        for (int v = 0; v < NV; v++) {
            x[v] = v16_load(vr + 16 * v);
            V16_IN_REG(x[v]);
        }
        for (int r = 0; r < QR; r++) {
            v16f pr = v16_bcast(p[r][j]);
            for (int v = 0; v < NV; v++) a[r][v] += pr * x[v];
        }
    }
    for (int r = 0; r < QR; r++)
        for (int v = 0; v < NV; v++) v16_store(accr[r] + 16 * v, a[r][v]);
}

static void pv_generic(float *const accr[QR], const float alpha[QR], const float p[QR][TILE],
                       const float *vb, int dhp, int tl)
{
    int NV = dhp / 16;
    for (int v0 = 0; v0 < NV; v0 += 4) {
        int nv = NV - v0 < 4 ? NV - v0 : 4;
        float *ar[QR];
        for (int r = 0; r < QR; r++) ar[r] = accr[r] + 16 * v0;
        /* vb rows offset by 16*v0: pass a shifted base with the same stride */
        switch (nv) {
        case 1: pv_rows(ar, alpha, p, vb + 16 * v0, dhp, tl, 1); break;
        case 2: pv_rows(ar, alpha, p, vb + 16 * v0, dhp, tl, 2); break;
        case 3: pv_rows(ar, alpha, p, vb + 16 * v0, dhp, tl, 3); break;
        default: pv_rows(ar, alpha, p, vb + 16 * v0, dhp, tl, 4); break;
        }
    }
}

/* Process one key tile for QR query rows.
 * qr[r]: the d_h query values of row r (head slice).  kt (d_h, TILE), vb (TILE, dhp).
 * lo[r], hi[r]: allowed key lanes [lo, hi] of row r within the tile (lo > hi:
 * row sees nothing).  live[r]: whether row r is a real query (else ignored).
 * scores_out[r] (optional): the tile's exp(score - m) for row r, m = the
 * row's running max after the tile, 0 where masked (16 * nk lanes). */
static inline __attribute__((always_inline)) void tile_rows_n(const float *const qr[QR], const float *kt, int ldk,
                                                              const float *vb, int d_h, int dhp, int tl,
                                                              float scale, const int lo[QR], const int hi[QR],
                                                              float *mrow[QR], float *lrow[QR], float *accr[QR],
                                                              float *scores_out[QR], const float *bias, const int nk)
{
    v16f sv[QR][NK];
    for (int r = 0; r < QR; r++)
        for (int u = 0; u < nk; u++) sv[r][u] = (v16f){0};
    for (int c = 0; c < d_h; c++) {
        v16f k[NK];
        for (int u = 0; u < nk; u++) {
            k[u] = v16_load(kt + (size_t)c * ldk + 16 * u);
            V16_IN_REG(k[u]); /* load once, reuse for every row (else GCC re-loads per FMA) */
        }
        for (int r = 0; r < QR; r++) {
            v16f q = v16_bcast(qr[r][c]);
            for (int u = 0; u < nk; u++) sv[r][u] += q * k[u];
        }
    }
    const v16i iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    const v16f ninf = v16_bcast(-INFINITY);
    float p[QR][TILE] __attribute__((aligned(64)));
    float alpha[QR];
    for (int r = 0; r < QR; r++) {
        for (int u = 0; u < nk; u++) sv[r][u] *= scale;
        if (bias)
            for (int u = 0; u < nk; u++) sv[r][u] += v16_load(bias + 16 * u);
        int l0 = lo[r], h0 = hi[r] < tl - 1 ? hi[r] : tl - 1;
        if (l0 > h0) { /* nothing visible for this row in this tile */
            alpha[r] = 1.0f;
            memset(p[r], 0, sizeof p[r]);
            if (scores_out[r])
                for (int u = 0; u < nk; u++) v16_store(scores_out[r] + 16 * u, (v16f){0});
            continue;
        }
        v16i mk[NK];
        v16f t[NK];
        v16f mx = ninf;
        for (int u = 0; u < nk; u++) {
            mk[u] = (iota >= l0 - 16 * u) & (iota <= h0 - 16 * u);
            t[u] = v16_sel(mk[u], sv[r][u], ninf);
            mx = v16_max(mx, t[u]);
        }
        float mt = v16_hmax(mx);
        float mo = *mrow[r];
        float mn = mt > mo ? mt : mo;
        /* the running max rarely moves after the first tiles: skip the exp then */
        alpha[r] = mo == mn ? 1.0f : (mo == -INFINITY ? 0.0f : expf(mo - mn));
        v16f sum = (v16f){0};
        for (int u = 0; u < nk; u++) {
            v16f e = v16_exp(t[u] - mn);
            e = (v16f)((v16i)e & mk[u]);
            v16_store(p[r] + 16 * u, e);
            if (scores_out[r]) v16_store(scores_out[r] + 16 * u, e);
            sum += e;
        }
        *lrow[r] = *lrow[r] * alpha[r] + v16_hsum(sum);
        *mrow[r] = mn;
    }
    switch (dhp) {
    case 16: pv_rows(accr, alpha, p, vb, dhp, tl, 1); break;
    case 32: pv_rows(accr, alpha, p, vb, dhp, tl, 2); break;
    case 48: pv_rows(accr, alpha, p, vb, dhp, tl, 3); break;
    case 64: pv_rows(accr, alpha, p, vb, dhp, tl, 4); break;
    default: pv_generic(accr, alpha, p, vb, dhp, tl); break;
    }
}

/* A full tile (TILE keys). */
static inline __attribute__((always_inline)) void tile_rows(const float *const qr[QR], const float *kt, int ldk,
                                                            const float *vb, int d_h, int dhp, int tl,
                                                            float scale, const int lo[QR], const int hi[QR],
                                                            float *mrow[QR], float *lrow[QR], float *accr[QR],
                                                            float *scores_out[QR], const float *bias)
{
    tile_rows_n(qr, kt, ldk, vb, d_h, dhp, tl, scale, lo, hi, mrow, lrow, accr, scores_out, bias, NK);
}

/* A summary-key tile of tl <= TILE keys: only the 16-key vectors that hold
 * keys are computed (a block's last summary tile is often nearly empty: 9
 * of 64 keys at n = 1M with the default pattern).  Lanes past tl are masked
 * out either way, and adding the missing vectors' zeros to the row sum
 * changes nothing, so the result is the full tile's bit for bit. */
static void summary_tile(const float *const qr[QR], const float *kt, const float *vb, int d_h, int dhp, int tl,
                         float scale, const int lo[QR], const int hi[QR], float *mrow[QR], float *lrow[QR],
                         float *accr[QR], float *scores_out[QR], const float *bias)
{
    switch ((tl + 15) / 16) {
    case 1: tile_rows_n(qr, kt, TILE, vb, d_h, dhp, tl, scale, lo, hi, mrow, lrow, accr, scores_out, bias, 1); break;
    case 2: tile_rows_n(qr, kt, TILE, vb, d_h, dhp, tl, scale, lo, hi, mrow, lrow, accr, scores_out, bias, 2); break;
    case 3: tile_rows_n(qr, kt, TILE, vb, d_h, dhp, tl, scale, lo, hi, mrow, lrow, accr, scores_out, bias, 3); break;
    default: tile_rows(qr, kt, TILE, vb, d_h, dhp, tl, scale, lo, hi, mrow, lrow, accr, scores_out, bias); break;
    }
}

/* Fill kt (d_h, TILE) and vb (TILE, dhp) from tl rows (pointers to the head slice). */
static inline void load_tile(const float *const *krow, const float *const *vrow, int tl, int d_h, int dhp,
                             float *kt, float *vb)
{
    for (int j = 0; j < tl; j++) {
        const float *kr = krow[j];
        for (int c = 0; c < d_h; c++) kt[(size_t)c * TILE + j] = kr[c];
        memcpy(vb + (size_t)j * dhp, vrow[j], sizeof(float) * d_h);
    }
    for (int j = tl; j < TILE; j++) {
        for (int c = 0; c < d_h; c++) kt[(size_t)c * TILE + j] = 0.0f;
        memset(vb + (size_t)j * dhp, 0, sizeof(float) * d_h);
    }
}

/* One query block qb (relative to q0) and head h.  The window keys come from
 * the chunk buffers: S->ckt (d_h, ldk) and S->cv (rows, dhp), both starting
 * at global token kr0. */
static void run_block(const folio_attn_args_t *a, scratch_t *S, int64_t qb, int h, int64_t kr0, int ldk)
{
    const int d_h = a->d_h, dhp = S->dhp, B = a->B;
    const int64_t qs = a->q0 + qb * B;
    const int64_t qe = qs + B < a->q1 ? qs + B : a->q1;
    const int nq = (int)(qe - qs);
    const int64_t W = a->W;
    const int hoff = h * d_h;
    const int s_max = a->s_max;
    const int ns = s_max > 0 ? a->sel_n[qb * a->H + h] : 0;
    const int32_t *sel = s_max > 0 ? a->sel + (qb * a->H + h) * (int64_t)s_max : NULL;
    const bool want_mass = a->node_mass || a->mass;
    const int nst = s_max / TILE + 1; /* summary tiles, at most */

    for (int i = 0; i < nq; i++) {
        S->m[i] = -INFINITY;
        S->l[i] = 0.0f;
    }
    memset(S->acc, 0, sizeof(float) * (size_t)nq * dhp);

    const float *krow[TILE], *vrow[TILE];
    const float *qr[QR];
    float *mrow[QR], *lrow[QR], *accr[QR], *sco[QR];
    int lo[QR], hi[QR];

    /* 1. summary keys: every query of the block sees all of them */
    for (int t0 = 0; t0 < ns; t0 += TILE) {
        int tl = ns - t0 < TILE ? ns - t0 : TILE;
        for (int j = 0; j < tl; j++) {
            int64_t nd = sel[t0 + j];
            krow[j] = a->node_k + nd * a->ld_nodes + hoff;
            vrow[j] = a->node_v + nd * a->ld_nodes + hoff;
        }
        load_tile(krow, vrow, tl, d_h, dhp, S->kt, S->vb);
        float btile[TILE] __attribute__((aligned(64)));
        const float *bt = NULL;
        if (a->node_bias) {
            for (int j = 0; j < TILE; j++) btile[j] = j < tl ? a->node_bias[sel[t0 + j]] : 0.0f;
            bt = btile;
        }
        for (int i0 = 0; i0 < nq; i0 += QR) {
            for (int r = 0; r < QR; r++) {
                int i = i0 + r < nq ? i0 + r : nq - 1;
                bool live = i0 + r < nq;
                qr[r] = a->q + (qs + i - a->x0) * a->ld + hoff;
                mrow[r] = live ? &S->m[i] : &S->dm[r];
                lrow[r] = live ? &S->l[i] : &S->dl[r];
                accr[r] = live ? S->acc + (size_t)i * dhp : S->dacc + (size_t)r * dhp;
                lo[r] = live ? 0 : 1;
                hi[r] = live ? tl - 1 : 0;
                sco[r] = (live && want_mass) ? S->sc + (size_t)i * s_max + t0 : NULL;
            }
            if (want_mass && t0 + TILE > s_max) {
                /* the score store writes TILE lanes: use a bounce buffer at the end */
                float bounce[QR][TILE];
                float *real[QR];
                for (int r = 0; r < QR; r++) {
                    real[r] = sco[r];
                    sco[r] = real[r] ? bounce[r] : NULL;
                }
                summary_tile(qr, S->kt, S->vb, d_h, dhp, tl, a->scale, lo, hi, mrow, lrow, accr, sco, bt);
                for (int r = 0; r < QR; r++)
                    if (real[r]) memcpy(real[r], bounce[r], sizeof(float) * tl);
            } else {
                summary_tile(qr, S->kt, S->vb, d_h, dhp, tl, a->scale, lo, hi, mrow, lrow, accr, sco, bt);
            }
            if (want_mass) /* the running max these probabilities are relative to */
                for (int r = 0; r < QR && i0 + r < nq; r++) S->smx[(size_t)(i0 + r) * nst + t0 / TILE] = S->m[i0 + r];
        }
    }

    /* 2. window tiles, anchored at the window start of the block */
    const int64_t ks = qs - W > 0 ? qs - W : 0;
    const int64_t ke = qe + W < a->n_doc ? qe + W : a->n_doc;
    for (int r = 0; r < QR; r++) sco[r] = NULL;
    for (int64_t t0 = ks; t0 < ke; t0 += TILE) {
        int tl = ke - t0 < TILE ? (int)(ke - t0) : TILE;
        /* queries whose window meets [t0, t0+tl): qs+i >= t0 - W and qs+i <= t0+tl-1+W */
        int64_t ia = t0 - W - qs, ib = t0 + tl - 1 + W - qs;
        int i_first = ia > 0 ? (int)(ia < nq ? ia : nq) : 0;
        int i_last = ib < nq - 1 ? (int)ib : nq - 1;
        if (i_first > i_last) continue;
        const float *ckt = S->ckt + (t0 - kr0), *cv = S->cv + (size_t)(t0 - kr0) * dhp;
        for (int i0 = i_first; i0 <= i_last; i0 += QR) {
            for (int r = 0; r < QR; r++) {
                int i = i0 + r <= i_last ? i0 + r : i_last;
                bool live = i0 + r <= i_last;
                int64_t g = qs + i;
                qr[r] = a->q + (g - a->x0) * a->ld + hoff;
                mrow[r] = live ? &S->m[i] : &S->dm[r];
                lrow[r] = live ? &S->l[i] : &S->dl[r];
                accr[r] = live ? S->acc + (size_t)i * dhp : S->dacc + (size_t)r * dhp;
                int64_t l0 = g - W - t0, h0 = g + W - t0;
                lo[r] = l0 < 0 ? 0 : (l0 > TILE ? TILE : (int)l0);
                hi[r] = h0 > TILE ? TILE : (h0 < -1 ? -1 : (int)h0);
                if (!live) {
                    lo[r] = 1;
                    hi[r] = 0;
                }
            }
            /* the window's edge tiles: when the 4 rows need only one half of
             * the tile, compute that half (saves ~5 % of the window work) */
            int lmin = TILE, hmax = -1;
            for (int r = 0; r < QR; r++) {
                int h0 = hi[r] < tl - 1 ? hi[r] : tl - 1;
                if (lo[r] > h0) continue;
                lmin = lo[r] < lmin ? lo[r] : lmin;
                hmax = h0 > hmax ? h0 : hmax;
            }
            if (hmax < TILE / 2) {
                tile_rows_n(qr, ckt, ldk, cv, d_h, dhp, tl < TILE / 2 ? tl : TILE / 2, a->scale, lo, hi, mrow, lrow,
                            accr, sco, NULL, NK / 2);
            } else if (lmin >= TILE / 2) {
                int lo2[QR], hi2[QR];
                for (int r = 0; r < QR; r++) {
                    lo2[r] = lo[r] - TILE / 2;
                    hi2[r] = hi[r] - TILE / 2;
                }
                tile_rows_n(qr, ckt + TILE / 2, ldk, cv + (size_t)(TILE / 2) * dhp, d_h, dhp, tl - TILE / 2, a->scale,
                            lo2, hi2, mrow, lrow, accr, sco, NULL, NK / 2);
            } else {
                tile_rows(qr, ckt, ldk, cv, d_h, dhp, tl, a->scale, lo, hi, mrow, lrow, accr, sco, NULL);
            }
        }
    }

    /* 3. outputs (and the optional residual + normalization epilogue) */
    const double rms_target = sqrt((double)d_h);
    for (int i0 = 0; i0 < nq; i0 += 8) {
        float *o8[8];
        const int m = nq - i0 < 8 ? nq - i0 : 8;
        for (int r = 0; r < m; r++) {
            const int i = i0 + r;
            float *o = o8[r] = a->out + (qs + i - a->q0) * a->ld_out + hoff;
            float inv = S->l[i] > 0 ? 1.0f / S->l[i] : 0.0f;
            const float *ac = S->acc + (size_t)i * dhp;
            for (int c = 0; c < d_h; c++) o[c] = ac[c] * inv;
            if (a->residual) {
                const float *rr = a->residual + (qs + i - a->q0) * a->ld_res + hoff;
                /* the products are rounded to float before the addition (no
                 * contraction into an FMA), as in a separate residual pass */
                __asm__ volatile("" ::: "memory");
                for (int c = 0; c < d_h; c++) o[c] = rr[c] + o[c];
            }
        }
        if (a->rmsnorm) attn_rms_rows8(o8, m, (uint32_t)d_h, rms_target);
    }
    if (want_mass && s_max > 0) {
        /* mass of each selected node: sum over the block's queries, in query
         * order, of exp(score - m) / l = exp(score - m_t) exp(m_t - m) / l:
         * the softmax's own exp(score - m_t) of summary tile t, rescaled by
         * one exp per query and tile (vectorized over the nodes) */
        float *tot = S->nmacc;
        for (int s = 0; s < ns + 16; s++) tot[s] = 0.0f;
        for (int i = 0; i < nq; i++) {
            if (!(S->l[i] > 0)) continue;
            const float inv = 1.0f / S->l[i];
            const float *pe = S->sc + (size_t)i * s_max;
            for (int t0 = 0; t0 < ns; t0 += TILE) {
                const v16f f = v16_bcast(v16_exp(v16_bcast(S->smx[(size_t)i * nst + t0 / TILE] - S->m[i]))[0] * inv);
                const int t1 = t0 + TILE < ns ? t0 + TILE : ns;
                for (int s = t0; s < t1; s += 16) v16_store(tot + s, v16_load(tot + s) + v16_load(pe + s) * f);
            }
        }
        if (a->node_mass) {
            float *nm = a->node_mass + (qb * a->H + h) * (int64_t)s_max;
            for (int s = 0; s < s_max; s++) nm[s] = s < ns ? tot[s] : 0.0f;
        }
        /* as folio_mass_accumulate would from node_mass: the same integers */
        if (S->mass)
            for (int s = 0; s < ns; s++) S->mass[sel[s]] += llrint((double)tot[s] * (double)FOLIO_MASS_ONE);
    }
}

#define CHUNK 8 /* query blocks per task: their window keys are transposed once */

/* Query blocks [cb0, cb1) (relative to q0), head h: gathers the union of
 * their window keys once ((d_h, ldk) transposed keys, (rows, dhp) values),
 * then runs each block.  Only the layout is shared, never arithmetic, so the
 * result of a block does not depend on the chunking.  Returns false on OOM. */
static bool run_chunk(const folio_attn_args_t *a, scratch_t *S, int64_t cb0, int64_t cb1, int h)
{
    const int d_h = a->d_h, dhp = S->dhp, hoff = h * d_h;
    const int64_t qs0 = a->q0 + cb0 * a->B, qe1 = a->q0 + cb1 * a->B < a->q1 ? a->q0 + cb1 * a->B : a->q1;
    const int64_t kr0 = qs0 - a->W > 0 ? qs0 - a->W : 0;
    const int64_t kr1 = qe1 + a->W < a->n_doc ? qe1 + a->W : a->n_doc;
    const int64_t nk = kr1 - kr0;
    const int64_t ldk = (nk + 15) / 16 * 16 + TILE; /* tiles may read past the end: zero padding */
    if ((size_t)(d_h * ldk) > S->ckt_cap) {
        free(S->ckt);
        S->ckt_cap = (size_t)d_h * ldk;
        S->ckt = aligned_alloc(64, sizeof(float) * S->ckt_cap);
        if (!S->ckt) { S->ckt_cap = 0; return false; }
    }
    if ((size_t)((nk + TILE) * dhp) > S->cv_cap) {
        free(S->cv);
        S->cv_cap = (size_t)(nk + TILE) * dhp;
        S->cv = aligned_alloc(64, sizeof(float) * S->cv_cap);
        if (!S->cv) { S->cv_cap = 0; return false; }
    }
    float *kt = S->ckt, *cv = S->cv;
    for (int64_t j0 = 0; j0 < nk; j0 += 16) {
        int jn = nk - j0 < 16 ? (int)(nk - j0) : 16;
        const float *kr[16];
        for (int j = 0; j < jn; j++) kr[j] = a->k + (kr0 + j0 + j - a->x0) * a->ld + hoff;
        /* 16 keys x d_h: write one contiguous run of 16 per feature */
        for (int c = 0; c < d_h; c++) {
            float *dst = kt + (size_t)c * ldk + j0;
            for (int j = 0; j < jn; j++) dst[j] = kr[j][c];
        }
        for (int j = 0; j < jn; j++) {
            const float *vr = a->v + (kr0 + j0 + j - a->x0) * a->ld + hoff;
            float *dst = cv + (size_t)(j0 + j) * dhp;
            memcpy(dst, vr, sizeof(float) * d_h);
            for (int c = d_h; c < dhp; c++) dst[c] = 0.0f;
        }
    }
    for (int c = 0; c < d_h; c++)
        for (int64_t j = nk; j < ldk; j++) kt[(size_t)c * ldk + j] = 0.0f;
    for (int64_t qb = cb0; qb < cb1; qb++) run_block(a, S, qb, h, kr0, (int)ldk);
    return true;
}

folio_status_t folio_attn_sparse_fwd_cpu(const folio_attn_args_t *a)
{
    FOLIO_CHECK_GENERIC(a && a->q && a->k && a->v && a->out, FOLIO_ERR_ARG, "attn: NULL q/k/v/out");
    FOLIO_CHECK_GENERIC(a->H >= 1 && a->d_h >= 1 && a->B >= 1 && a->W >= 0, FOLIO_ERR_ARG,
                        "attn: bad shape H=%d d_h=%d B=%d W=%d", a->H, a->d_h, a->B, a->W);
    FOLIO_CHECK_GENERIC(a->ld >= (int64_t)a->H * a->d_h && a->ld_out >= (int64_t)a->H * a->d_h, FOLIO_ERR_ARG,
                        "attn: row strides ld=%lld ld_out=%lld smaller than H*d_h=%d", (long long)a->ld,
                        (long long)a->ld_out, a->H * a->d_h);
    FOLIO_CHECK_GENERIC(a->q0 >= 0 && a->q0 < a->q1 && a->q1 <= a->n_doc && a->q0 % a->B == 0, FOLIO_ERR_ARG,
                        "attn: queries [%lld, %lld) must be non-empty, inside [0, %lld) and start at a block boundary (B=%d)",
                        (long long)a->q0, (long long)a->q1, (long long)a->n_doc, a->B);
    int64_t need0 = a->q0 - a->W > 0 ? a->q0 - a->W : 0;
    int64_t need1 = a->q1 + a->W < a->n_doc ? a->q1 + a->W : a->n_doc;
    FOLIO_CHECK_GENERIC(a->x0 <= need0 && a->x0 + a->nx >= need1, FOLIO_ERR_ARG,
                        "attn: X covers [%lld, %lld) but the window keys of queries [%lld, %lld) need [%lld, %lld)",
                        (long long)a->x0, (long long)(a->x0 + a->nx), (long long)a->q0, (long long)a->q1,
                        (long long)need0, (long long)need1);
    FOLIO_CHECK_GENERIC(!a->residual || a->ld_res >= (int64_t)a->H * a->d_h, FOLIO_ERR_ARG,
                        "attn: residual row stride ld_res=%lld smaller than H*d_h=%d", (long long)a->ld_res,
                        a->H * a->d_h);
    const int64_t nqb = (a->q1 - a->q0 + a->B - 1) / a->B;
    FOLIO_CHECK_GENERIC(a->s_max >= 0, FOLIO_ERR_ARG, "attn: s_max < 0");
    if (a->s_max > 0) {
        FOLIO_CHECK_GENERIC(a->sel && a->sel_n && a->node_k && a->node_v && a->ld_nodes >= (int64_t)a->H * a->d_h,
                            FOLIO_ERR_ARG, "attn: s_max > 0 needs sel, sel_n, node_k, node_v and ld_nodes >= H*d_h");
        for (int64_t i = 0; i < nqb * a->H; i++) {
            int ns = a->sel_n[i];
            FOLIO_CHECK_GENERIC(ns >= 0 && ns <= a->s_max, FOLIO_ERR_ARG,
                                "attn: sel_n[%lld] = %d outside 0 .. s_max=%d", (long long)i, ns, a->s_max);
            for (int s = 0; s < ns; s++) {
                int32_t nd = a->sel[i * a->s_max + s];
                FOLIO_CHECK_GENERIC(nd >= 0 && nd < a->n_nodes, FOLIO_ERR_ARG,
                                    "attn: sel[%lld][%d] = %d outside the %lld nodes", (long long)i, s, nd,
                                    (long long)a->n_nodes);
            }
        }
    }
    const int64_t nchunk = (nqb + CHUNK - 1) / CHUNK, ntask = nchunk * a->H;
    int failed = 0;
    int nth = a->threads > 0 ? a->threads : omp_get_max_threads();
    if (nth > ntask) nth = (int)ntask;
#pragma omp parallel num_threads(nth) reduction(| : failed)
    {
        scratch_t S;
        if (!scratch_alloc(&S, a->B, a->d_h, a->s_max)) {
            failed = 1;
        } else {
            /* node mass in exact integers: per-thread sums, added up in any
             * order, are the same */
            if (a->mass && a->s_max > 0 && !(S.mass = calloc((size_t)a->n_nodes + 1, sizeof(int64_t)))) failed = 1;
#pragma omp for schedule(dynamic, 1)
            for (int64_t t = 0; t < ntask; t++) {
                if (failed) continue;
                int64_t ch = t / a->H, cb0 = ch * CHUNK, cb1 = cb0 + CHUNK < nqb ? cb0 + CHUNK : nqb;
                if (!run_chunk(a, &S, cb0, cb1, (int)(t % a->H))) failed = 1;
            }
            if (S.mass && !failed) {
#pragma omp critical(folio_attn_mass)
                for (int64_t f = 0; f < a->n_nodes; f++) a->mass[f] += S.mass[f];
            }
            free(S.mass);
            scratch_free(&S);
        }
    }
    FOLIO_CHECK_GENERIC(!failed, FOLIO_ERR_NOMEM, "attn: out of memory for kernel scratch");
    return FOLIO_OK;
}

/* ------------------------------------------------------------------ reference */

folio_status_t folio_attn_dense_ref(const float *X, uint32_t n, const float *nodes, uint32_t n_nodes,
                                    uint32_t H, uint32_t d_h, float scale, const uint8_t *mask,
                                    float *out, float *node_w)
{
    return folio_attn_dense_ref_bias(X, n, nodes, n_nodes, NULL, H, d_h, scale, mask, out, node_w);
}

folio_status_t folio_attn_dense_ref_bias(const float *X, uint32_t n, const float *nodes, uint32_t n_nodes,
                                         const float *node_bias, uint32_t H, uint32_t d_h, float scale,
                                         const uint8_t *mask, float *out, float *node_w)
{
    FOLIO_CHECK_GENERIC(X && mask && out && (n_nodes == 0 || nodes), FOLIO_ERR_ARG, "dense_ref: NULL argument");
    const size_t d = (size_t)H * d_h, nk = (size_t)n + n_nodes;
    double *w = malloc(sizeof(double) * (nk ? nk : 1));
    double *acc = malloc(sizeof(double) * d_h);
    if (!w || !acc) {
        free(w);
        free(acc);
        FOLIO_CHECK_ALLOC(NULL);
    }
    for (uint32_t h = 0; h < H; h++) {
        for (uint32_t i = 0; i < n; i++) {
            const uint8_t *mk = mask + ((size_t)h * n + i) * nk;
            const float *q = X + i * d + (size_t)h * d_h;
            double mx = -INFINITY;
            for (size_t j = 0; j < nk; j++) {
                if (!mk[j]) continue;
                const float *k = j < n ? X + j * d + (size_t)h * d_h : nodes + (j - n) * d + (size_t)h * d_h;
                double s = 0;
                for (uint32_t c = 0; c < d_h; c++) s += (double)q[c] * k[c];
                s *= scale;
                if (j >= n && node_bias) s += node_bias[j - n];
                w[j] = s;
                if (s > mx) mx = s;
            }
            double sum = 0;
            for (size_t j = 0; j < nk; j++)
                if (mk[j]) sum += (w[j] = exp(w[j] - mx));
            for (uint32_t c = 0; c < d_h; c++) acc[c] = 0;
            for (size_t j = 0; j < nk; j++) {
                if (!mk[j]) continue;
                const float *v = j < n ? X + j * d + (size_t)h * d_h : nodes + (j - n) * d + (size_t)h * d_h;
                double p = w[j] / sum;
                for (uint32_t c = 0; c < d_h; c++) acc[c] += p * v[c];
            }
            for (uint32_t c = 0; c < d_h; c++) out[i * d + (size_t)h * d_h + c] = sum > 0 ? (float)acc[c] : 0.0f;
            if (node_w)
                for (uint32_t s = 0; s < n_nodes; s++)
                    node_w[((size_t)i * H + h) * n_nodes + s] = mk[n + s] ? (float)(w[n + s] / sum) : 0.0f;
        }
    }
    free(w);
    free(acc);
    return FOLIO_OK;
}

uint8_t *folio_attn_build_mask(const folio_pattern_t *p, uint32_t n, uint32_t n_nodes, const int32_t *sel,
                               const int32_t *sel_n, int s_max, folio_status_t *st)
{
    const uint32_t H = p->heads, B = p->block;
    const size_t nk = (size_t)n + n_nodes;
    uint8_t *m = calloc((size_t)H * n * nk, 1);
    if (!m) {
        if (st) *st = FOLIO_ERR_NOMEM;
        return NULL;
    }
    uint64_t W = p->kind == FOLIO_PATTERN_DENSE ? n : p->window;
    for (uint32_t h = 0; h < H; h++)
        for (uint32_t i = 0; i < n; i++) {
            uint8_t *row = m + ((size_t)h * n + i) * nk;
            uint64_t j0 = i > W ? i - W : 0, j1 = (uint64_t)i + W + 1 < n ? (uint64_t)i + W + 1 : n;
            for (uint64_t j = j0; j < j1; j++) row[j] = 1;
            if (s_max > 0) {
                uint32_t qb = i / B;
                int ns = sel_n[(size_t)qb * H + h];
                for (int s = 0; s < ns; s++) row[n + sel[((size_t)qb * H + h) * s_max + s]] = 1;
            }
        }
    if (st) *st = FOLIO_OK;
    return m;
}

/* ------------------------------------------------------------------ probe */

/* The widest float vector the compiler targets natively. */
#if defined(__AVX512F__)
#define PROBE_W 16
#elif defined(__AVX__)
#define PROBE_W 8
#else
#define PROBE_W 4
#endif
typedef float vpf __attribute__((vector_size(PROBE_W * 4)));

static double thread_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#if defined(__x86_64__) || defined(__i386__)
#define KEEP(v) __asm__ volatile("" : "+x"(v))
#else
#define KEEP(v) __asm__ volatile("" : "+w"(v))
#endif

double folio_fma_peak_gflops(void)
{
    /* 12 independent FMA chains (enough to cover latency x throughput on
     * current x86/ARM cores), operands pinned in registers by empty asm.
     * Timed in thread CPU time so a busy machine does not lower the peak. */
    vpf b = (vpf){0} + 0.999999f, c = (vpf){0} + 1e-7f;
    vpf a0 = b + 0.001f, a1 = b + 0.002f, a2 = b + 0.003f, a3 = b + 0.004f, a4 = b + 0.005f, a5 = b + 0.006f;
    vpf a6 = b + 0.007f, a7 = b + 0.008f, a8 = b + 0.009f, a9 = b + 0.010f, a10 = b + 0.011f, a11 = b + 0.012f;
    KEEP(b);
    KEEP(c);
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        const long iters = 400000;
        double t = thread_cpu_now();
        for (long it = 0; it < iters; it++) {
            a0 = a0 * b + c; a1 = a1 * b + c; a2 = a2 * b + c; a3 = a3 * b + c;
            a4 = a4 * b + c; a5 = a5 * b + c; a6 = a6 * b + c; a7 = a7 * b + c;
            a8 = a8 * b + c; a9 = a9 * b + c; a10 = a10 * b + c; a11 = a11 * b + c;
            KEEP(a0); KEEP(a1); KEEP(a2); KEEP(a3); KEEP(a4); KEEP(a5);
            KEEP(a6); KEEP(a7); KEEP(a8); KEEP(a9); KEEP(a10); KEEP(a11);
        }
        t = thread_cpu_now() - t;
        double g = (double)iters * 12 * PROBE_W * 2 / t / 1e9;
        if (g > best) best = g;
    }
    volatile float sink = a0[0] + a1[0] + a2[0] + a3[0] + a4[0] + a5[0] + a6[0] + a7[0] + a8[0] + a9[0] + a10[0] + a11[0];
    (void)sink;
    return best;
}
