/* attn/quality.c — pattern quality metrics against dense attention (for
 * `folio eval pattern`): fidelity of the first layer's output, attention
 * recall, keys per query, timings. */
#include "attn.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

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

folio_status_t folio_pattern_quality(const folio_pattern_t *p, const float *X, uint64_t n, const float *O_dense,
                                     int threads, folio_pattern_quality_t *q)
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
    folio_status_t st = FOLIO_OK;
    float *nodes = malloc(sizeof(float) * (size_t)h.n_nodes * d);
    int32_t *sel = malloc(sizeof(int32_t) * (size_t)nb * H * (s_max > 0 ? s_max : 1));
    int32_t *sel_n = calloc((size_t)nb * H, sizeof(int32_t));
    float *Os = malloc(sizeof(float) * n * d);
    float *Od = O_dense ? NULL : malloc(sizeof(float) * n * d);
    if (!nodes || !sel || !sel_n || !Os || (!O_dense && !Od)) {
        st = FOLIO_ERR_NOMEM;
        goto done;
    }
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
        .W = (int)(W < (1u << 30) ? W : (1u << 30)), .scale = scale, .threads = threads,
    };
    if ((st = folio_attn_sparse_fwd_cpu(&a)) != FOLIO_OK) goto done;
    q->ms_sparse = (folio_now() - t) * 1e3;
    if (!O_dense) {
        t = folio_now();
        if ((st = folio_attn_dense_fast(X, n, H, dh, scale, threads, Od)) != FOLIO_OK) goto done;
        q->ms_dense = (folio_now() - t) * 1e3;
        O_dense = Od;
    }
    double num = 0, den = 0;
    for (uint64_t i = 0; i < n * d; i++) {
        double e = (double)Os[i] - O_dense[i];
        num += e * e;
        den += (double)O_dense[i] * O_dense[i];
    }
    q->fidelity = den > 0 ? 1.0 - sqrt(num) / sqrt(den) : 1.0;

    /* keys per query and recall, per (query block, head) */
    double keys_sum = 0, keys_max = 0, rec = 0, rec_f = 0;
    int nth = threads > 0 ? threads : omp_get_max_threads();
    int failed = 0;
#pragma omp parallel num_threads(nth) reduction(+ : keys_sum, rec, rec_f) reduction(max : keys_max) reduction(| : failed)
    {
        uint8_t *cov = malloc(nb + 1), *cov_f = malloc(nb + 1);
        float *s = malloc(sizeof(float) * n);
        if (!cov || !cov_f || !s) failed = 1;
#pragma omp for schedule(dynamic, 1)
        for (int64_t tk = 0; tk < (int64_t)nb * H; tk++) {
            if (failed) continue;
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
                const float *qi = X + i * d + hh * dh;
                float m = -INFINITY;
                for (uint64_t j = 0; j < n; j++) {
                    const float *kj = X + j * d + hh * dh;
                    float acc = 0;
                    for (uint32_t c = 0; c < dh; c++) acc += qi[c] * kj[c];
                    s[j] = acc * scale;
                    if (s[j] > m) m = s[j];
                }
                double tot = 0, in = 0, in_f = 0;
                for (uint64_t j = 0; j < n; j++) {
                    double e = exp((double)s[j] - m);
                    tot += e;
                    bool win = j >= w0 && j < w1;
                    if (win || cov[j / B]) in += e;
                    if (win || cov_f[j / B]) in_f += e;
                }
                rec += in / tot;
                rec_f += in_f / tot;
            }
        }
        free(cov);
        free(cov_f);
        free(s);
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
    free(nodes);
    free(sel);
    free(sel_n);
    free(Os);
    free(Od);
    return st;
}
