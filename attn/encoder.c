/* attn/encoder.c — the encoder steps (summaries, hierarchy levels, summary
 * key selection, one layer over a query range, residual + normalization),
 * the whole-document convenience run, pooling and salience.
 *
 * Every step computes each output element from inputs in a fixed order that
 * does not depend on how a document is split over ranks (blocks are summed
 * token by token, upper levels child by child, routing scores candidate by
 * candidate), so a split run is bit-identical to a whole-document run. */
#include "attn.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "attn_cpu_simd.h"

/* ------------------------------------------------------------------ summaries */

folio_status_t folio_attn_block_sums(const float *X, uint64_t t0, uint64_t t1, uint64_t n, uint32_t B,
                                     uint32_t d, float *out)
{
    FOLIO_CHECK_GENERIC(X && out && B >= 1 && t0 < t1 && t1 <= n && t0 % B == 0 && (t1 % B == 0 || t1 == n),
                        FOLIO_ERR_ARG, "block_sums: tokens [%llu, %llu) of %llu must be a block-aligned range (B=%u)",
                        (unsigned long long)t0, (unsigned long long)t1, (unsigned long long)n, B);
    uint64_t nbk = (t1 - t0 + B - 1) / B;
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        double *acc = malloc(sizeof(double) * d);
        if (!acc) failed = 1;
#pragma omp for schedule(static)
        for (int64_t b = 0; b < (int64_t)nbk; b++) {
            if (!acc) continue;
            uint64_t a = t0 + (uint64_t)b * B, e = a + B < t1 ? a + B : t1;
            for (uint32_t c = 0; c < d; c++) acc[c] = 0;
            for (uint64_t i = a; i < e; i++) {
                const float *x = X + (i - t0) * d;
                for (uint32_t c = 0; c < d; c++) acc[c] += x[c];
            }
            double inv = 1.0 / (double)(e - a);
            for (uint32_t c = 0; c < d; c++) out[(size_t)b * d + c] = (float)(acc[c] * inv);
        }
        free(acc);
    }
    FOLIO_CHECK_GENERIC(!failed, FOLIO_ERR_NOMEM, "block_sums: out of memory");
    return FOLIO_OK;
}

folio_status_t folio_hier_build_upper(const folio_hier_t *h, uint32_t d, float *nodes)
{
    double *acc = malloc(sizeof(double) * d);
    FOLIO_CHECK_ALLOC(acc);
    for (uint32_t l = 2; l <= h->n_levels; l++) {
        for (uint32_t idx = 0; idx < h->count[l]; idx++) {
            uint32_t c0 = idx * h->G, c1 = c0 + h->G < h->count[l - 1] ? c0 + h->G : h->count[l - 1];
            for (uint32_t c = 0; c < d; c++) acc[c] = 0;
            uint64_t tot = 0;
            for (uint32_t ch = c0; ch < c1; ch++) {
                uint64_t a, e;
                folio_hier_node_tokens(h, l - 1, ch, &a, &e);
                const float *x = nodes + (size_t)(h->offset[l - 1] + ch) * d;
                double w = (double)(e - a);
                for (uint32_t c = 0; c < d; c++) acc[c] += w * x[c];
                tot += e - a;
            }
            float *o = nodes + (size_t)(h->offset[l] + idx) * d;
            for (uint32_t c = 0; c < d; c++) o[c] = tot ? (float)(acc[c] / (double)tot) : 0.0f;
        }
    }
    free(acc);
    return FOLIO_OK;
}

/* ------------------------------------------------------------------ selection */

#define RQ 4 /* query blocks scored together against each candidate tile */

folio_status_t folio_attn_select(const folio_pattern_t *p, const folio_hier_t *h, const float *node_q,
                                 const float *node_k, uint32_t qb0, uint32_t qb1, int32_t *sel, int32_t *sel_n,
                                 int s_max, int threads)
{
    const uint32_t H = p->heads, dh = p->head_dim, d = H * dh, nb = h->count[1], G = h->G;
    FOLIO_CHECK_GENERIC(qb0 <= qb1 && qb1 <= nb, FOLIO_ERR_ARG, "select: query blocks [%u, %u) outside [0, %u)",
                        qb0, qb1, nb);
    uint32_t need = folio_pattern_summary_max(p, h->n);
    FOLIO_CHECK_GENERIC((uint32_t)s_max >= need, FOLIO_ERR_ARG, "select: s_max=%d < %u summary keys of the pattern",
                        s_max, need);
    FOLIO_CHECK_GENERIC(p->block == h->B && p->group == h->G, FOLIO_ERR_ARG,
                        "select: pattern (block=%u, group=%u) does not match the hierarchy (B=%u, G=%u)", p->block,
                        p->group, h->B, h->G);
    const bool hier = p->kind == FOLIO_PATTERN_HIER || p->kind == FOLIO_PATTERN_HIER_TOPK;
    const bool routed = p->kind == FOLIO_PATTERN_HIER_TOPK && h->n_levels >= 2 && p->topk > 0;
    const uint32_t k = p->topk < nb ? p->topk : nb;

    /* Routing operands per head, candidates contiguous: kt (H, dh, nbp);
     * scores of RQ query blocks at a time against 64-candidate tiles, the
     * same register-blocked product as the attention kernel. */
    const uint32_t nbp = (nb + 63) / 64 * 64;
    float *kt = NULL;
    if (routed) {
        kt = aligned_alloc(64, sizeof(float) * (size_t)H * dh * nbp);
        FOLIO_CHECK_ALLOC(kt);
#pragma omp parallel for schedule(static) num_threads(threads > 0 ? threads : omp_get_max_threads())
        for (int64_t hc = 0; hc < (int64_t)H * dh; hc++) {
            float *row = kt + (size_t)hc * nbp;
            for (uint32_t b = 0; b < nb; b++) row[b] = node_k[(size_t)b * d + hc];
            for (uint32_t b = nb; b < nbp; b++) row[b] = 0.0f;
        }
    }
    /* Task = (chunk of QC query blocks, head).  Candidates stream in tiles
     * of 64 (their keys, 16 KB, stay in cache for the whole chunk); every
     * query block keeps a running top-k updated tile by tile, so no score
     * row is ever stored and the keys are read nb/QC times, not nb/RQ. */
    const uint32_t QC = 64;
    const uint32_t nq = qb1 - qb0, nch = (nq + QC - 1) / QC;
    int failed = 0;
    int nth = threads > 0 ? threads : omp_get_max_threads();
#pragma omp parallel num_threads(nth) reduction(| : failed)
    {
        float *tv = routed ? malloc(sizeof(float) * QC * (k + 1)) : NULL;
        int32_t *ti = routed ? malloc(sizeof(int32_t) * QC * (k + 1)) : NULL;
        int *nt = routed ? malloc(sizeof(int) * QC) : NULL;
        float *thr = routed ? malloc(sizeof(float) * QC) : NULL;
        if (routed && (!tv || !ti || !nt || !thr)) failed = 1;
#pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < (int64_t)nch * H; t++) {
            if (failed) continue;
            const uint32_t c0 = qb0 + (uint32_t)(t / H) * QC, hh = (uint32_t)(t % H);
            const uint32_t c1 = c0 + QC < qb1 ? c0 + QC : qb1;
            if (routed) {
                for (uint32_t i = 0; i < c1 - c0; i++) {
                    nt[i] = 0;
                    thr[i] = -INFINITY;
                }
                const float *K = kt + (size_t)hh * dh * nbp;
                for (uint32_t b0 = 0; b0 < nb; b0 += 64) {
                    for (uint32_t g0 = c0; g0 < c1; g0 += RQ) {
                        const uint32_t g1 = g0 + RQ < c1 ? g0 + RQ : c1;
                        const float *q[RQ];
                        for (uint32_t r = 0; r < RQ; r++)
                            q[r] = node_q + (size_t)(g0 + r < g1 ? g0 + r : g1 - 1) * d + hh * dh;
                        v16f acc[RQ][4];
                        for (int r = 0; r < RQ; r++)
                            for (int u = 0; u < 4; u++) acc[r][u] = (v16f){0};
                        for (uint32_t c = 0; c < dh; c++) {
                            v16f kv[4];
                            for (int u = 0; u < 4; u++) {
                                kv[u] = v16_load(K + (size_t)c * nbp + b0 + 16 * u);
                                V16_IN_REG(kv[u]);
                            }
                            for (int r = 0; r < RQ; r++) {
                                v16f qq = v16_bcast(q[r][c]);
                                for (int u = 0; u < 4; u++) acc[r][u] += qq * kv[u];
                            }
                        }
                        for (uint32_t qb = g0; qb < g1; qb++) {
                            const uint32_t r = qb - g0, i = qb - c0;
                            const uint32_t gs = qb / G * G, ge = gs + G < nb ? gs + G : nb;
                            float row[64] __attribute__((aligned(64)));
                            for (int u = 0; u < 4; u++) v16_store(row + 16 * u, acc[r][u]);
                            /* own group (already hierarchical keys) and padding are out */
                            for (uint32_t b = b0; b < b0 + 64; b++)
                                if (b >= nb || (b >= gs && b < ge)) row[b - b0] = -INFINITY;
                            /* running top-k: candidates arrive in increasing index, so
                             * a later equal score never displaces an earlier one */
                            float *tvi = tv + (size_t)i * (k + 1);
                            int32_t *tii = ti + (size_t)i * (k + 1);
                            for (int u = 0; u < 4; u++) {
                                if (!(v16_hmax(v16_load(row + 16 * u)) > thr[i])) continue;
                                for (int j = 16 * u; j < 16 * u + 16; j++) {
                                    float sv = row[j];
                                    if (!(sv > thr[i])) continue;
                                    int pos = nt[i] < (int)k ? nt[i] : (int)k - 1;
                                    while (pos > 0 && sv > tvi[pos - 1]) {
                                        tvi[pos] = tvi[pos - 1];
                                        tii[pos] = tii[pos - 1];
                                        pos--;
                                    }
                                    tvi[pos] = sv;
                                    tii[pos] = (int32_t)(b0 + j);
                                    if (nt[i] < (int)k) nt[i]++;
                                    if (nt[i] == (int)k) thr[i] = tvi[k - 1];
                                }
                            }
                        }
                    }
                }
            }
            for (uint32_t qb = c0; qb < c1; qb++) {
                int32_t *out = sel + ((size_t)(qb - qb0) * H + hh) * s_max;
                int ns = 0;
                if (p->kind == FOLIO_PATTERN_LONGT5) {
                    for (uint32_t b = 0; b < nb; b++) out[ns++] = (int32_t)b;
                } else if (hier) {
                    for (uint32_t l = 1; l <= h->n_levels; l++) {
                        uint32_t a = folio_hier_ancestor(h, qb, l), s0, s1;
                        folio_hier_siblings(h, l, a, &s0, &s1);
                        for (uint32_t s = s0; s < s1; s++)
                            if (s != a) out[ns++] = (int32_t)(h->offset[l] + s);
                    }
                }
                if (routed) {
                    const uint32_t i = qb - c0;
                    for (int j = 0; j < nt[i]; j++) out[ns++] = ti[(size_t)i * (k + 1) + j];
                }
                sel_n[(size_t)(qb - qb0) * H + hh] = ns;
            }
        }
        free(tv);
        free(ti);
        free(nt);
        free(thr);
    }
    free(kt);
    FOLIO_CHECK_GENERIC(!failed, FOLIO_ERR_NOMEM, "select: out of memory");
    return FOLIO_OK;
}

void folio_mass_accumulate(const int32_t *sel, const int32_t *sel_n, const float *node_mass, uint32_t n_qblocks,
                           int H, int s_max, int64_t *mass)
{
    for (uint64_t i = 0; i < (uint64_t)n_qblocks * H; i++)
        for (int s = 0; s < sel_n[i]; s++)
            mass[sel[i * s_max + s]] += llrint((double)node_mass[i * s_max + s] * (double)FOLIO_MASS_ONE);
}

/* ------------------------------------------------------------------ layer */

void folio_rmsnorm_heads(float *X, uint64_t n, uint32_t H, uint32_t d_h)
{
    const double target = sqrt((double)d_h);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < (int64_t)n; i++)
        for (uint32_t h = 0; h < H; h++) {
            float *x = X + ((size_t)i * H + h) * d_h;
            double s = 0;
            for (uint32_t c = 0; c < d_h; c++) s += (double)x[c] * x[c];
            if (s > 0) {
                float f = (float)(target / sqrt(s));
                for (uint32_t c = 0; c < d_h; c++) x[c] *= f;
            }
        }
}

/* y (rows, d) = x (rows, d) W (d, d) */
static float *project(const float *x, uint64_t rows, uint32_t d, const float *W)
{
    float *y = malloc(sizeof(float) * rows * d + 1);
    if (!y) return NULL;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < (int64_t)rows; i++) {
        float *yr = y + (size_t)i * d;
        for (uint32_t c = 0; c < d; c++) yr[c] = 0;
        for (uint32_t e = 0; e < d; e++) {
            float xe = x[(size_t)i * d + e];
            const float *wr = W + (size_t)e * d;
            for (uint32_t c = 0; c < d; c++) yr[c] += xe * wr[c];
        }
    }
    return y;
}

folio_status_t folio_encoder_layer(const folio_pattern_t *p, const folio_hier_t *h, const folio_layer_weights_t *w,
                                   const float *X, uint64_t x0, uint64_t nx, uint64_t q0, uint64_t q1,
                                   const float *nodes, const int32_t *sel, const int32_t *sel_n, int s_max,
                                   float *Xout, int64_t *mass, int threads)
{
    const uint32_t H = p->heads, dh = p->head_dim, d = H * dh;
    FOLIO_CHECK_GENERIC(q0 >= x0 && q1 <= x0 + nx && q0 < q1, FOLIO_ERR_ARG,
                        "encoder_layer: queries [%llu, %llu) not inside X [%llu, %llu)", (unsigned long long)q0,
                        (unsigned long long)q1, (unsigned long long)x0, (unsigned long long)(x0 + nx));
    FOLIO_CHECK_GENERIC(q1 % p->block == 0 || q1 == h->n, FOLIO_ERR_ARG,
                        "encoder_layer: query range must end at a block boundary or the document end");
    const uint64_t nq = q1 - q0, nqb = (nq + p->block - 1) / p->block;
    folio_status_t st = FOLIO_OK;
    float *Q = NULL, *K = NULL, *V = NULL, *NK = NULL, *NV = NULL, *O = NULL, *O2 = NULL, *nm = NULL, *bias = NULL;
    const float *q = X, *k = X, *v = X, *nk = nodes, *nv = nodes;
    if (w && w->wq) { if (!(Q = project(X, nx, d, w->wq))) goto oom; q = Q; }
    if (w && w->wk) {
        if (!(K = project(X, nx, d, w->wk)) || !(NK = project(nodes, h->n_nodes, d, w->wk))) goto oom;
        k = K; nk = NK;
    }
    if (w && w->wv) {
        if (!(V = project(X, nx, d, w->wv)) || !(NV = project(nodes, h->n_nodes, d, w->wv))) goto oom;
        v = V; nv = NV;
    }
    if (w && w->wo) {
        if (!(O = malloc(sizeof(float) * nq * d + 1))) goto oom;
    }
    if (mass && s_max > 0 && !(nm = malloc(sizeof(float) * nqb * H * s_max))) goto oom;
    if (p->sumbias && s_max > 0) {
        if (!(bias = malloc(sizeof(float) * h->n_nodes))) goto oom;
        folio_hier_log_sizes(h, bias);
    }
    folio_attn_args_t a = {
        .q = q, .k = k, .v = v, .ld = d, .x0 = (int64_t)x0, .nx = (int64_t)nx,
        .q0 = (int64_t)q0, .q1 = (int64_t)q1, .n_doc = (int64_t)h->n,
        .node_k = nk, .node_v = nv, .ld_nodes = d, .n_nodes = h->n_nodes,
        .sel = sel, .sel_n = sel_n, .s_max = s_max, .out = O ? O : Xout, .ld_out = d, .node_mass = nm,
        .H = (int)H, .d_h = (int)dh, .B = (int)p->block,
        .W = (int)(p->kind == FOLIO_PATTERN_DENSE ? (h->n < (1u << 30) ? h->n : (1u << 30)) : p->window),
        .scale = folio_pattern_scale(p), .threads = threads, .node_bias = bias,
    };
    st = folio_attn_sparse_fwd_cpu(&a);
    if (st != FOLIO_OK) goto done;
    if (w && w->wo) {
        if (!(O2 = project(O, nq, d, w->wo))) goto oom;
        memcpy(Xout, O2, sizeof(float) * nq * d);
    }
    /* Xout holds the attention output: add the residual */
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < (int64_t)nq; i++) {
        const float *xr = X + (q0 - x0 + (uint64_t)i) * d;
        float *o = Xout + (uint64_t)i * d;
        for (uint32_t c = 0; c < d; c++) o[c] = xr[c] + o[c];
    }
    folio_rmsnorm_heads(Xout, nq, H, dh);
    if (nm) folio_mass_accumulate(sel, sel_n, nm, (uint32_t)nqb, (int)H, s_max, mass);
    goto done;
oom:
    folio_log_at(__FILE__, __LINE__, "encoder_layer: out of memory (%llu tokens)", (unsigned long long)nx);
    st = FOLIO_ERR_NOMEM;
done:
    free(Q); free(K); free(V); free(NK); free(NV); free(O); free(O2); free(nm); free(bias);
    return st;
}

/* ------------------------------------------------------------------ whole doc */

void folio_encoded_clear(folio_encoded_t *e)
{
    if (!e) return;
    free(e->X);
    free(e->nodes);
    free(e->mass);
    memset(e, 0, sizeof *e);
}

folio_status_t folio_encoder_run(const folio_pattern_t *p, const folio_layer_weights_t *w, const float *X0,
                                 uint64_t n, int threads, folio_encoded_t *out)
{
    memset(out, 0, sizeof *out);
    FOLIO_CHECK_GENERIC(X0 && n >= 1, FOLIO_ERR_ARG, "encoder: empty document");
    folio_pattern_t r;
    FOLIO_TRY(folio_pattern_resolve(p, n, &r));
    folio_hier_t h;
    FOLIO_TRY(folio_hier_init(&h, n, r.block, r.group));
    const uint32_t H = r.heads, d = folio_pattern_dim(&r), nb = h.count[1];
    const int s_max = (int)folio_pattern_summary_max(&r, n);
    folio_status_t st = FOLIO_OK;
    float *X = malloc(sizeof(float) * n * d), *X2 = malloc(sizeof(float) * n * d);
    float *nodes = malloc(sizeof(float) * (size_t)h.n_nodes * d);
    int64_t *mass = calloc(h.n_nodes, sizeof(int64_t));
    int32_t *sel = malloc(sizeof(int32_t) * (size_t)nb * H * (s_max > 0 ? s_max : 1));
    int32_t *sel_n = malloc(sizeof(int32_t) * (size_t)nb * H);
    float *NQ = NULL, *NK = NULL;
    if (!X || !X2 || !nodes || !mass || !sel || !sel_n) {
        st = FOLIO_ERR_NOMEM;
        folio_log_at(__FILE__, __LINE__, "encoder: out of memory for a document of %llu tokens",
                     (unsigned long long)n);
        goto fail;
    }
    memcpy(X, X0, sizeof(float) * n * d);
    for (uint32_t l = 0; l < r.layers; l++) {
        const folio_layer_weights_t *lw = w ? &w[l] : NULL;
        if ((st = folio_attn_block_sums(X, 0, n, n, r.block, d, nodes)) != FOLIO_OK) goto fail;
        if ((st = folio_hier_build_upper(&h, d, nodes)) != FOLIO_OK) goto fail;
        const float *nq = nodes, *nk = nodes;
        if (lw && lw->wq) { if (!(NQ = project(nodes, nb, d, lw->wq))) { st = FOLIO_ERR_NOMEM; goto fail; } nq = NQ; }
        if (lw && lw->wk) { if (!(NK = project(nodes, h.n_nodes, d, lw->wk))) { st = FOLIO_ERR_NOMEM; goto fail; } nk = NK; }
        if (s_max > 0 && (st = folio_attn_select(&r, &h, nq, nk, 0, nb, sel, sel_n, s_max, threads)) != FOLIO_OK)
            goto fail;
        free(NQ); free(NK);
        NQ = NK = NULL;
        if ((st = folio_encoder_layer(&r, &h, lw, X, 0, n, 0, n, nodes, s_max > 0 ? sel : NULL,
                                      s_max > 0 ? sel_n : NULL, s_max, X2, mass, threads)) != FOLIO_OK)
            goto fail;
        float *t = X; X = X2; X2 = t;
    }
    if ((st = folio_attn_block_sums(X, 0, n, n, r.block, d, nodes)) != FOLIO_OK) goto fail;
    if ((st = folio_hier_build_upper(&h, d, nodes)) != FOLIO_OK) goto fail;
    free(X2); free(sel); free(sel_n);
    out->pattern = r;
    out->hier = h;
    out->n = n;
    out->d = d;
    out->X = X;
    out->nodes = nodes;
    out->mass = mass;
    return FOLIO_OK;
fail:
    free(X); free(X2); free(nodes); free(mass); free(sel); free(sel_n); free(NQ); free(NK);
    return st;
}

/* ------------------------------------------------------------------ outputs */

folio_status_t folio_pool_ranges(const float *X, uint64_t n, uint32_t d, const uint32_t *begin,
                                 const uint32_t *end, uint32_t m, float *out)
{
    double *acc = malloc(sizeof(double) * d);
    FOLIO_CHECK_ALLOC(acc);
    folio_status_t st = FOLIO_OK;
    for (uint32_t r = 0; r < m; r++) {
        float *o = out + (size_t)r * d;
        if (begin[r] > end[r] || end[r] > n) {
            folio_log_at(__FILE__, __LINE__, "pool: range %u [%u, %u) is outside the %llu tokens", r, begin[r],
                         end[r], (unsigned long long)n);
            st = FOLIO_ERR_ARG;
            break;
        }
        for (uint32_t c = 0; c < d; c++) acc[c] = 0;
        for (uint32_t i = begin[r]; i < end[r]; i++)
            for (uint32_t c = 0; c < d; c++) acc[c] += X[(size_t)i * d + c];
        double nn = 0;
        for (uint32_t c = 0; c < d; c++) nn += acc[c] * acc[c];
        double f = nn > 0 ? 1.0 / sqrt(nn) : 0.0;
        for (uint32_t c = 0; c < d; c++) o[c] = (float)(acc[c] * f);
    }
    free(acc);
    return st;
}

folio_status_t folio_salience_ranges(const folio_hier_t *h, const int64_t *mass, const uint32_t *begin,
                                     const uint32_t *end, uint32_t m, float *out)
{
    const uint64_t n = h->n;
    /* per-level density: mass of the node / tokens under it */
    double total = 0;
    for (uint32_t f = 0; f < h->n_nodes; f++) total += (double)mass[f];
    double *dens = malloc(sizeof(double) * (h->n_nodes ? h->n_nodes : 1));
    FOLIO_CHECK_ALLOC(dens);
    for (uint32_t l = 1; l <= h->n_levels; l++)
        for (uint32_t i = 0; i < h->count[l]; i++) {
            uint64_t a, e;
            folio_hier_node_tokens(h, l, i, &a, &e);
            dens[h->offset[l] + i] = e > a ? (double)mass[h->offset[l] + i] / (double)(e - a) : 0.0;
        }
    const double doc_mean = total / (double)n;
    folio_status_t st = FOLIO_OK;
    for (uint32_t r = 0; r < m; r++) {
        if (begin[r] > end[r] || end[r] > n) {
            folio_log_at(__FILE__, __LINE__, "salience: range %u [%u, %u) is outside the %llu tokens", r,
                         begin[r], end[r], (unsigned long long)n);
            st = FOLIO_ERR_ARG;
            break;
        }
        double s = 0;
        for (uint32_t i = begin[r]; i < end[r]; i++) {
            uint32_t b = i / h->B;
            for (uint32_t l = 1; l <= h->n_levels; l++) s += dens[h->offset[l] + folio_hier_ancestor(h, b, l)];
        }
        out[r] = (end[r] > begin[r] && doc_mean > 0) ? (float)(s / (end[r] - begin[r]) / doc_mean) : 0.0f;
    }
    free(dens);
    return st;
}
