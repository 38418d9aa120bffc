/* attn/quality.c — pattern quality metrics against dense attention (for
 * `folio eval pattern`): fidelity of the first layer's output, attention
 * recall, keys per query, timings.
 *
 * The dense side is computed once per document (folio_dense_stats_t): the
 * dense output, and per (query, head) the softmax mass on each key block.
 * A pattern's recall is then the mass on blocks its summary nodes cover plus,
 * token by token, the window keys in blocks that are not covered. */
#include "attn.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "attn_cpu_simd.h"

struct folio_dense_stats {
    uint64_t n;
    uint32_t H, d_h, B, nb;
    float scale;
    float *O;    /* (n, H*d_h) dense output                                  */
    float *m;    /* (n, H) max score of the row                               */
    float *l;    /* (n, H) sum of exp(s - m) over the row                     */
    float *bm;   /* (n, H, nb) softmax mass on each key block                 */
    double ms;   /* dense output time                                         */
};

folio_status_t folio_attn_dense_fast(const float *X, uint64_t n, uint32_t H, uint32_t d_h, float scale,
                                     int threads, float *out)
{
    FOLIO_CHECK_GENERIC(n >= 1 && n < (1u << 30), FOLIO_ERR_ARG, "dense: n=%llu out of range", (unsigned long long)n);
    folio_attn_args_t a = {
        .q = X, .k = X, .v = X, .ld = (int64_t)H * d_h, .x0 = 0, .nx = (int64_t)n,
        .q0 = 0, .q1 = (int64_t)n, .n_doc = (int64_t)n, .s_max = 0, .out = out, .ld_out = (int64_t)H * d_h,
        .H = (int)H, .d_h = (int)d_h, .B = 64, .W = (int)n, .scale = scale, .threads = threads,
    };
    return folio_attn_sparse_fwd_cpu(&a);
}

void folio_dense_stats_destroy(folio_dense_stats_t **s)
{
    if (!s || !*s) return;
    free((*s)->O);
    free((*s)->m);
    free((*s)->l);
    free((*s)->bm);
    free(*s);
    *s = NULL;
}

double folio_dense_stats_ms(const folio_dense_stats_t *s) { return s ? s->ms : 0.0; }

#define QG 8 /* queries per pass over the transposed keys */

folio_status_t folio_dense_stats_create(const float *X, uint64_t n, uint32_t H, uint32_t d_h, uint32_t B,
                                        float scale, int threads, folio_dense_stats_t **out)
{
    *out = NULL;
    FOLIO_CHECK_GENERIC(X && n >= 1 && n <= (1u << 20) && H >= 1 && d_h >= 1 && B >= 1, FOLIO_ERR_ARG,
                        "dense stats: bad arguments (n=%llu; at most 2^20 tokens)", (unsigned long long)n);
    folio_dense_stats_t *s = calloc(1, sizeof *s);
    FOLIO_CHECK_ALLOC(s);
    const uint32_t d = H * d_h, nb = (uint32_t)((n + B - 1) / B);
    const uint64_t np = (n + 31) / 32 * 32;
    s->n = n; s->H = H; s->d_h = d_h; s->B = B; s->nb = nb; s->scale = scale;
    s->O = malloc(sizeof(float) * n * d);
    s->m = malloc(sizeof(float) * n * H);
    s->l = malloc(sizeof(float) * n * H);
    s->bm = calloc(n * H * nb, sizeof(float));
    float *kt = malloc(sizeof(float) * d_h * np);
    folio_status_t st = FOLIO_OK;
    if (!s->O || !s->m || !s->l || !s->bm || !kt) {
        st = FOLIO_ERR_NOMEM;
        folio_log_at(__FILE__, __LINE__, "dense stats: out of memory for n=%llu", (unsigned long long)n);
        goto done;
    }
    double t = folio_now();
    if ((st = folio_attn_dense_fast(X, n, H, d_h, scale, threads, s->O)) != FOLIO_OK) goto done;
    s->ms = (folio_now() - t) * 1e3;
    int nth = threads > 0 ? threads : omp_get_max_threads();
    for (uint32_t h = 0; h < H; h++) {
        for (uint64_t j = 0; j < np; j++)
            for (uint32_t c = 0; c < d_h; c++) kt[c * np + j] = j < n ? X[j * d + h * d_h + c] : 0.0f;
        int failed = 0;
#pragma omp parallel num_threads(nth) reduction(| : failed)
        {
            float *row = aligned_alloc(64, sizeof(float) * QG * np);
            if (!row) failed = 1;
#pragma omp for schedule(dynamic, 1)
            for (int64_t g = 0; g < (int64_t)((n + QG - 1) / QG); g++) {
                if (!row) continue;
                const uint64_t i0 = (uint64_t)g * QG;
                const float *q[QG];
                for (int r = 0; r < QG; r++) {
                    uint64_t i = i0 + r < n ? i0 + r : n - 1;
                    q[r] = X + i * d + h * d_h;
                }
                /* scores of QG queries against every key, 32 keys at a time */
                for (uint64_t j0 = 0; j0 < np; j0 += 32) {
                    v16f a0[QG], a1[QG];
                    for (int r = 0; r < QG; r++) a0[r] = a1[r] = (v16f){0};
                    for (uint32_t c = 0; c < d_h; c++) {
                        v16f k0 = v16_load(kt + c * np + j0), k1 = v16_load(kt + c * np + j0 + 16);
                        for (int r = 0; r < QG; r++) {
                            v16f qq = v16_bcast(q[r][c]);
                            a0[r] += qq * k0;
                            a1[r] += qq * k1;
                        }
                    }
                    for (int r = 0; r < QG; r++) {
                        v16_store(row + r * np + j0, a0[r] * scale);
                        v16_store(row + r * np + j0 + 16, a1[r] * scale);
                    }
                }
                for (int r = 0; r < QG && i0 + r < n; r++) {
                    const uint64_t i = i0 + r;
                    float *sr = row + r * np;
                    float mx = -INFINITY;
                    for (uint64_t j = 0; j < n; j++) mx = sr[j] > mx ? sr[j] : mx;
                    for (uint64_t j = n; j < np; j++) sr[j] = -INFINITY;
                    double tot = 0;
                    float *bmr = s->bm + (i * H + h) * nb;
                    for (uint64_t j0 = 0; j0 < np; j0 += 16) {
                        v16f e = v16_exp(v16_load(sr + j0) - mx);
                        v16i live = (v16i){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15} + (int32_t)j0 < (int32_t)n;
                        e = (v16f)((v16i)e & live);
                        v16_store(sr + j0, e);
                    }
                    for (uint64_t j = 0; j < n; j++) {
                        tot += sr[j];
                        bmr[j / B] += sr[j];
                    }
                    float inv = (float)(1.0 / tot);
                    for (uint32_t b = 0; b < nb; b++) bmr[b] *= inv;
                    s->m[i * H + h] = mx;
                    s->l[i * H + h] = (float)tot;
                }
            }
            free(row);
        }
        if (failed) {
            st = FOLIO_ERR_NOMEM;
            goto done;
        }
    }
done:
    free(kt);
    if (st != FOLIO_OK) folio_dense_stats_destroy(&s);
    *out = s;
    return st;
}

static inline float dot(const float *a, const float *b, uint32_t n)
{
    if (n % 16 == 0) {
        v16f acc = {0};
        for (uint32_t c = 0; c < n; c += 16) acc += v16_load(a + c) * v16_load(b + c);
        return v16_hsum(acc);
    }
    float s = 0;
    for (uint32_t c = 0; c < n; c++) s += a[c] * b[c];
    return s;
}

folio_status_t folio_pattern_quality(const folio_pattern_t *p, const float *X, uint64_t n,
                                     const folio_dense_stats_t *dense, int threads, folio_pattern_quality_t *q)
{
    memset(q, 0, sizeof *q);
    folio_pattern_t r;
    FOLIO_TRY(folio_pattern_resolve(p, n, &r));
    folio_hier_t h;
    FOLIO_TRY(folio_hier_init(&h, n, r.block, r.group));
    const uint32_t H = r.heads, dh = r.head_dim, d = H * dh, nb = h.count[1], B = r.block;
    const int s_max = (int)folio_pattern_summary_max(&r, n);
    const uint64_t W = r.kind == FOLIO_PATTERN_DENSE ? n : r.window;
    const float scale = folio_pattern_scale(&r);
    folio_dense_stats_t *own = NULL;
    if (dense) {
        FOLIO_CHECK_GENERIC(dense->n == n && dense->H == H && dense->d_h == dh && dense->B == B &&
                                dense->scale == scale, FOLIO_ERR_ARG,
                            "pattern quality: dense statistics were computed for another shape or block size");
    } else {
        FOLIO_TRY(folio_dense_stats_create(X, n, H, dh, B, scale, threads, &own));
        dense = own;
    }
    q->ms_dense = dense->ms;
    folio_status_t st = FOLIO_OK;
    float *nodes = malloc(sizeof(float) * (size_t)h.n_nodes * d);
    int32_t *sel = malloc(sizeof(int32_t) * (size_t)nb * H * (s_max > 0 ? s_max : 1));
    int32_t *sel_n = calloc((size_t)nb * H, sizeof(int32_t));
    float *Os = malloc(sizeof(float) * n * d);
    float *bias = r.sumbias ? malloc(sizeof(float) * (h.n_nodes + 1)) : NULL;
    if (!nodes || !sel || !sel_n || !Os || (r.sumbias && !bias)) {
        st = FOLIO_ERR_NOMEM;
        goto done;
    }
    if (bias) folio_hier_log_sizes(&h, bias);
    double t = folio_now();
    if ((st = folio_attn_block_sums(X, 0, n, n, B, d, nodes)) != FOLIO_OK) goto done;
    if ((st = folio_hier_build_upper(&h, d, nodes)) != FOLIO_OK) goto done;
    if (s_max > 0 && (st = folio_attn_select(&r, &h, nodes, nodes, 0, nb, sel, sel_n, s_max, threads)) != FOLIO_OK)
        goto done;
    folio_attn_args_t a = {
        .q = X, .k = X, .v = X, .ld = d, .x0 = 0, .nx = (int64_t)n, .q0 = 0, .q1 = (int64_t)n, .n_doc = (int64_t)n,
        .node_k = nodes, .node_v = nodes, .ld_nodes = d, .n_nodes = h.n_nodes,
        .sel = s_max > 0 ? sel : NULL, .sel_n = s_max > 0 ? sel_n : NULL, .s_max = s_max,
        .out = Os, .ld_out = d, .H = (int)H, .d_h = (int)dh, .B = (int)B,
        .W = (int)(W < (1u << 30) ? W : (1u << 30)), .scale = scale, .threads = threads, .node_bias = bias,
    };
    if ((st = folio_attn_sparse_fwd_cpu(&a)) != FOLIO_OK) goto done;
    q->ms_sparse = (folio_now() - t) * 1e3;
    double num = 0, den = 0;
    for (uint64_t i = 0; i < n * d; i++) {
        double e = (double)Os[i] - dense->O[i];
        num += e * e;
        den += (double)dense->O[i] * dense->O[i];
    }
    q->fidelity = den > 0 ? 1.0 - sqrt(num) / sqrt(den) : 1.0;

    /* keys per query and recall, per (query block, head) */
    double keys_sum = 0, keys_max = 0, rec = 0, rec_f = 0;
    int nth = threads > 0 ? threads : omp_get_max_threads();
    int failed = 0;
#pragma omp parallel num_threads(nth) reduction(+ : keys_sum, rec, rec_f) reduction(max : keys_max) reduction(| : failed)
    {
        uint8_t *cov = malloc(nb + 1), *cov_f = malloc(nb + 1);
        if (!cov || !cov_f) failed = 1;
#pragma omp for schedule(dynamic, 1)
        for (int64_t tk = 0; tk < (int64_t)nb * H; tk++) {
            if (!cov || !cov_f) continue;
            uint32_t qb = (uint32_t)(tk / H), hh = (uint32_t)(tk % H);
            memset(cov, 0, nb);
            memset(cov_f, 0, nb);
            int ns = s_max > 0 ? sel_n[tk] : 0;
            for (int j = 0; j < ns; j++) {
                uint32_t lvl, idx;
                folio_hier_node_level(&h, (uint32_t)sel[tk * s_max + j], &lvl, &idx);
                uint64_t a0, a1;
                folio_hier_node_tokens(&h, lvl, idx, &a0, &a1);
                for (uint64_t b = a0 / B; b < (a1 + B - 1) / B; b++) {
                    cov[b] = 1;
                    if (lvl == 1) cov_f[b] = 1;
                }
            }
            uint64_t i0 = (uint64_t)qb * B, i1 = i0 + B < n ? i0 + B : n;
            for (uint64_t i = i0; i < i1; i++) {
                uint64_t w0 = i > W ? i - W : 0, w1 = i + W + 1 < n ? i + W + 1 : n;
                double kq = (double)(w1 - w0) + ns;
                keys_sum += kq;
                if (kq > keys_max) keys_max = kq;
                const float *bmr = dense->bm + (i * H + hh) * nb;
                double in = 0, in_f = 0;
                for (uint32_t b = 0; b < nb; b++) {
                    if (cov[b]) in += bmr[b];
                    if (cov_f[b]) in_f += bmr[b];
                }
                const float *qi = X + i * d + hh * dh;
                const float mx = dense->m[i * H + hh], inv = 1.0f / dense->l[i * H + hh];
                for (uint64_t j = w0; j < w1; j++) {
                    bool c = cov[j / B], cf = cov_f[j / B];
                    if (c && cf) continue;
                    double pj = expf(dot(qi, X + j * d + hh * dh, dh) * scale - mx) * inv;
                    if (!c) in += pj;
                    if (!cf) in_f += pj;
                }
                rec += in < 1.0 ? in : 1.0;
                rec_f += in_f < 1.0 ? in_f : 1.0;
            }
        }
        free(cov);
        free(cov_f);
    }
    if (failed) {
        st = FOLIO_ERR_NOMEM;
        goto done;
    }
    q->keys_mean = keys_sum / ((double)n * H);
    q->keys_max = keys_max;
    q->recall = rec / ((double)n * H);
    q->recall_fine = rec_f / ((double)n * H);
done:
    if (st == FOLIO_ERR_NOMEM) folio_log_at(__FILE__, __LINE__, "pattern quality: out of memory (n=%llu)", (unsigned long long)n);
    folio_dense_stats_destroy(&own);
    free(nodes);
    free(sel);
    free(sel_n);
    free(Os);
    free(bias);
    return st;
}
