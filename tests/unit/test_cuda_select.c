/* tests/unit/test_cuda_select.c — device summaries (block means, upper
 * levels), summary-key selection (hierarchy + routed top-k) and the residual
 * rmsnorm against plain-C references written from attn.h's definitions,
 * on awkward sizes (partial last block and group, single group, 3 levels).
 * Selections must match exactly except at near-exact ties of the routing
 * score (the device sums in fp32 in a different order than the reference).
 * Skips cleanly without a device. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "attn/attn_cuda.h"
#include "common/common.h"

#define SKIP_WITHOUT_GPU()                                                            \
    do {                                                                              \
        if (!folio_cuda_available()) cr_skip_test("no CUDA device (or built without CUDA)"); \
    } while (0)

static float *rand_mat(uint64_t *st, size_t n, float amp)
{
    float *m = malloc(n * sizeof *m);
    cr_assert_not_null(m);
    for (size_t i = 0; i < n; i++)
        m[i] = amp * (2.0f * (float)(folio_splitmix64(st) >> 40) / 16777216.0f - 1.0f);
    return m;
}

static void *dev_copy(const void *src, size_t bytes)
{
    void *d = NULL;
    cr_assert_eq(folio_cuda_malloc(&d, bytes), FOLIO_OK);
    if (src) cr_assert_eq(folio_cuda_upload(d, src, bytes), FOLIO_OK);
    return d;
}

/* Reference summaries: level 1 block means, upper levels token-weighted. */
static void ref_nodes(const folio_hier_t *h, const float *X, uint32_t d, double *nodes)
{
    for (uint32_t l = 1; l <= h->n_levels; l++)
        for (uint32_t i = 0; i < h->count[l]; i++) {
            uint64_t t0, t1;
            folio_hier_node_tokens(h, l, i, &t0, &t1);
            for (uint32_t c = 0; c < d; c++) {
                double s = 0;
                for (uint64_t t = t0; t < t1; t++) s += X[t * d + c];
                nodes[(size_t)(h->offset[l] + i) * d + c] = s / (double)(t1 - t0);
            }
        }
}

static double dotd(const float *a, const float *b, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static void check_pattern(uint64_t seed, uint64_t n, uint32_t G, uint32_t k, folio_pattern_kind_t kind)
{
    uint64_t st = seed;
    folio_pattern_t p = folio_pattern_default();
    p.kind = kind;
    p.group = G;
    p.topk = k;
    p.heads = 3;
    p.head_dim = 64;
    const uint32_t d = p.heads * p.head_dim;
    folio_hier_t h;
    cr_assert_eq(folio_hier_init(&h, n, p.block, p.group), FOLIO_OK);
    float *X = rand_mat(&st, (size_t)n * d, 1.0f);

    /* summaries on the device */
    float *dX = dev_copy(X, (size_t)n * d * 4);
    float *dNodes = dev_copy(NULL, (size_t)h.n_nodes * d * 4);
    cr_assert_eq(folio_cuda_block_means(dX, (int64_t)n, (int)d, (int)p.block, dNodes, NULL), FOLIO_OK);
    cr_assert_eq(folio_cuda_hier_build_upper(&h, (int)d, dNodes, NULL), FOLIO_OK);
    float *nodes = malloc((size_t)h.n_nodes * d * 4);
    cr_assert_eq(folio_cuda_download(nodes, dNodes, (size_t)h.n_nodes * d * 4), FOLIO_OK);
    double *rn = malloc((size_t)h.n_nodes * d * sizeof(double));
    ref_nodes(&h, X, d, rn);
    for (size_t i = 0; i < (size_t)h.n_nodes * d; i++)
        cr_assert(fabs(nodes[i] - rn[i]) <= 1e-5 * (1 + fabs(rn[i])), "node value %zu: %g vs %g", i,
                  (double)nodes[i], rn[i]);

    /* selection on the device, from the device's own summaries */
    const int s_max = (int)folio_pattern_summary_max(&p, n) + 1;
    const uint32_t nb = h.count[1];
    int32_t *dSel = dev_copy(NULL, (size_t)nb * p.heads * s_max * 4);
    int32_t *dSelN = dev_copy(NULL, (size_t)nb * p.heads * 4);
    cr_assert_eq(folio_cuda_attn_select(&p, &h, dNodes, dNodes, d, 0, nb, dSel, dSelN, s_max, NULL), FOLIO_OK);
    int32_t *sel = malloc((size_t)nb * p.heads * s_max * 4), *sel_n = malloc((size_t)nb * p.heads * 4);
    cr_assert_eq(folio_cuda_download(sel, dSel, (size_t)nb * p.heads * s_max * 4), FOLIO_OK);
    cr_assert_eq(folio_cuda_download(sel_n, dSelN, (size_t)nb * p.heads * 4), FOLIO_OK);

    int32_t *want = malloc((size_t)(s_max + nb) * 4);
    double *score = malloc((size_t)nb * sizeof(double));
    int near_ties = 0;
    for (uint32_t b = 0; b < nb; b++)
        for (uint32_t hh = 0; hh < p.heads; hh++) {
            int e = 0;
            if (kind == FOLIO_PATTERN_LONGT5) {
                for (uint32_t j = 0; j < nb; j++) want[e++] = (int32_t)j;
            } else if (kind != FOLIO_PATTERN_LOCAL && kind != FOLIO_PATTERN_DENSE) {
                for (uint32_t l = 1; l <= h.n_levels; l++) {
                    const uint32_t a = folio_hier_ancestor(&h, b, l);
                    uint32_t s0, s1;
                    folio_hier_siblings(&h, l, a, &s0, &s1);
                    for (uint32_t j = s0; j < s1; j++)
                        if (j != a) want[e++] = (int32_t)(h.offset[l] + j);
                }
            }
            const int e_hier = e;
            const int64_t r = (int64_t)b * p.heads + hh;
            const int32_t *got = sel + r * s_max;
            cr_assert_geq(sel_n[r], e_hier, "block %u head %u: %d keys < %d hierarchical", b, hh, sel_n[r], e_hier);
            for (int t = 0; t < e_hier; t++)
                cr_assert_eq(got[t], want[t], "block %u head %u slot %d: node %d, want %d", b, hh, t, got[t], want[t]);
            if (kind == FOLIO_PATTERN_HIER_TOPK && h.n_levels >= 2) {
                /* routed: blocks outside b's group by descending score (double) */
                const uint32_t g0 = (b / G) * G, g1 = g0 + G;
                const float *q = X; /* unused */
                (void)q;
                int nc = 0;
                for (uint32_t j = 0; j < nb; j++) {
                    score[j] = -INFINITY;
                    if (j >= g0 && j < g1) continue;
                    score[j] = dotd(nodes + (size_t)b * d + hh * 64, nodes + (size_t)j * d + hh * 64, 64);
                    nc++;
                }
                const int kk = (int)(k < (uint32_t)nc ? k : (uint32_t)nc);
                cr_assert_eq(sel_n[r], e_hier + kk, "block %u head %u: %d routed, want %d", b, hh,
                             sel_n[r] - e_hier, kk);
                /* the k-th best score and the scores the device chose */
                double kth = INFINITY;
                for (int t = 0; t < kk; t++) {
                    const int32_t j = got[e_hier + t];
                    cr_assert(j >= 0 && (uint32_t)j < nb && !((uint32_t)j >= g0 && (uint32_t)j < g1),
                              "routed node %d invalid for block %u", j, b);
                    if (score[j] < kth) kth = score[j];
                }
                /* nothing outside the chosen set may score clearly higher than
                 * the lowest chosen one (ties within 1e-5 allowed) */
                for (uint32_t j = 0; j < nb; j++) {
                    if (score[j] == -INFINITY) continue;
                    int chosen = 0;
                    for (int t = 0; t < kk; t++) chosen |= got[e_hier + t] == (int32_t)j;
                    if (!chosen && score[j] > kth) {
                        cr_assert(score[j] - kth <= 1e-5 * (1 + fabs(kth)),
                                  "block %u head %u: block %u (score %.9g) beats chosen min %.9g", b, hh, j,
                                  score[j], kth);
                        near_ties++;
                    }
                }
                /* order: descending score (within tie tolerance) */
                for (int t = 1; t < kk; t++)
                    cr_assert(score[got[e_hier + t]] <= score[got[e_hier + t - 1]] + 1e-5,
                              "routed keys not in descending score order");
            } else {
                cr_assert_eq(sel_n[r], e_hier);
            }
        }
    cr_log_info("n=%llu G=%u k=%u: %d near-ties", (unsigned long long)n, G, k, near_ties);
    cr_assert_leq(near_ties, (int)(nb * p.heads / 100 + 2), "too many near-ties: %d", near_ties);

    folio_cuda_free((void **)&dX);
    folio_cuda_free((void **)&dNodes);
    folio_cuda_free((void **)&dSel);
    folio_cuda_free((void **)&dSelN);
    free(X); free(nodes); free(rn); free(sel); free(sel_n); free(want); free(score);
}

Test(cuda_select, hier_topk_two_levels)    { SKIP_WITHOUT_GPU(); check_pattern(1, 64 * 40 + 17, 8, 5, FOLIO_PATTERN_HIER_TOPK); }
Test(cuda_select, hier_topk_three_levels)  { SKIP_WITHOUT_GPU(); check_pattern(2, 64 * 150 + 1, 4, 8, FOLIO_PATTERN_HIER_TOPK); }
Test(cuda_select, hier_topk_single_group)  { SKIP_WITHOUT_GPU(); check_pattern(3, 1000, 64, 8, FOLIO_PATTERN_HIER_TOPK); }
Test(cuda_select, hier_topk_one_token)     { SKIP_WITHOUT_GPU(); check_pattern(4, 1, 64, 8, FOLIO_PATTERN_HIER_TOPK); }
Test(cuda_select, hier_no_routing)         { SKIP_WITHOUT_GPU(); check_pattern(5, 64 * 70, 8, 8, FOLIO_PATTERN_HIER); }
Test(cuda_select, longt5_all_blocks)       { SKIP_WITHOUT_GPU(); check_pattern(6, 64 * 9 + 3, 4, 8, FOLIO_PATTERN_LONGT5); }
Test(cuda_select, topk_larger_than_blocks) { SKIP_WITHOUT_GPU(); check_pattern(7, 64 * 10, 4, 20, FOLIO_PATTERN_HIER_TOPK); }

/* The device's routed top-k against the CPU's folio_attn_select on the SAME
 * fp32 summaries: the scores are the same fmaf chains, so the selections
 * must be identical slot for slot, including exact ties (blocks repeated so
 * that many candidates score exactly the same: ties go to the lower index),
 * for query ranges that start and end inside a 64-row tile, k of 1, 8, 13
 * and 32 (the three list sizes), and more candidates than one tile. */
static void check_routing_q(uint64_t seed, uint32_t nb, uint32_t G, uint32_t k, uint32_t qb0, uint32_t qb1,
                            uint32_t distinct, bool own_q)
{
    uint64_t st = seed;
    folio_pattern_t p = folio_pattern_default();
    p.kind = FOLIO_PATTERN_HIER_TOPK;
    p.group = G;
    p.topk = k;
    p.heads = 2;
    p.head_dim = 64;
    const uint32_t d = p.heads * p.head_dim;
    const uint64_t n = (uint64_t)nb * p.block;
    folio_hier_t h;
    cr_assert_eq(folio_hier_init(&h, n, p.block, p.group), FOLIO_OK);
    cr_assert_geq(h.n_levels, 2u);
    /* level-1 summaries drawn from `distinct` different rows: exact ties */
    float *pool = rand_mat(&st, (size_t)distinct * d, 1.0f);
    float *nodes = calloc((size_t)h.n_nodes * d, sizeof *nodes);
    for (uint32_t b = 0; b < nb; b++)
        memcpy(nodes + (size_t)b * d, pool + (size_t)(folio_splitmix64(&st) % distinct) * d, d * 4);
    cr_assert_eq(folio_hier_build_upper(&h, d, nodes), FOLIO_OK);
    /* own_q: queries from other summaries than the candidates (a layer
     * with projections), drawn from the same pool so that ties stay */
    float *qnodes = nodes;
    if (own_q) {
        qnodes = calloc((size_t)h.n_nodes * d, sizeof *qnodes);
        for (uint32_t b = 0; b < nb; b++)
            memcpy(qnodes + (size_t)b * d, pool + (size_t)(folio_splitmix64(&st) % distinct) * d, d * 4);
        cr_assert_eq(folio_hier_build_upper(&h, d, qnodes), FOLIO_OK);
    }
    const int s_max = (int)folio_pattern_summary_max(&p, n);
    const uint32_t nq = qb1 - qb0;
    int32_t *cs = malloc((size_t)nq * p.heads * s_max * 4), *cn = malloc((size_t)nq * p.heads * 4);
    cr_assert_eq(folio_attn_select(&p, &h, qnodes, nodes, qb0, qb1, cs, cn, s_max, 1), FOLIO_OK);
    float *dN = dev_copy(nodes, (size_t)h.n_nodes * d * 4);
    float *dQ = own_q ? dev_copy(qnodes, (size_t)h.n_nodes * d * 4) : dN;
    int32_t *dS = dev_copy(NULL, (size_t)nq * p.heads * s_max * 4), *dSN = dev_copy(NULL, (size_t)nq * p.heads * 4);
    cr_assert_eq(folio_cuda_attn_select(&p, &h, dQ, dN, d, qb0, qb1, dS, dSN, s_max, NULL), FOLIO_OK);
    int32_t *gs = malloc((size_t)nq * p.heads * s_max * 4), *gn = malloc((size_t)nq * p.heads * 4);
    cr_assert_eq(folio_cuda_download(gs, dS, (size_t)nq * p.heads * s_max * 4), FOLIO_OK);
    cr_assert_eq(folio_cuda_download(gn, dSN, (size_t)nq * p.heads * 4), FOLIO_OK);
    for (uint32_t r = 0; r < nq * p.heads; r++) {
        cr_assert_eq(gn[r], cn[r], "nb=%u k=%u block %u head %u: %d keys, cpu %d", nb, k, qb0 + r / p.heads,
                     r % p.heads, gn[r], cn[r]);
        for (int e = 0; e < cn[r]; e++)
            cr_assert_eq(gs[(size_t)r * s_max + e], cs[(size_t)r * s_max + e],
                         "nb=%u k=%u block %u head %u slot %d: device %d, cpu %d", nb, k, qb0 + r / p.heads,
                         r % p.heads, e, gs[(size_t)r * s_max + e], cs[(size_t)r * s_max + e]);
    }
    if (own_q) {
        folio_cuda_free((void **)&dQ);
        free(qnodes);
    }
    folio_cuda_free((void **)&dN);
    folio_cuda_free((void **)&dS);
    folio_cuda_free((void **)&dSN);
    free(pool); free(nodes); free(cs); free(cn); free(gs); free(gn);
}

static void check_routing_vs_cpu(uint64_t seed, uint32_t nb, uint32_t G, uint32_t k, uint32_t qb0, uint32_t qb1,
                                 uint32_t distinct)
{
    check_routing_q(seed, nb, G, k, qb0, qb1, distinct, false);
}

Test(cuda_select, routing_equals_cpu_with_ties)
{
    SKIP_WITHOUT_GPU();
    check_routing_vs_cpu(11, 300, 16, 8, 0, 300, 7);      /* heavy ties */
    check_routing_vs_cpu(12, 300, 16, 8, 37, 251, 300);   /* distinct, ragged range */
    check_routing_vs_cpu(13, 1031, 64, 1, 5, 1031, 40);   /* prime nb, k = 1 */
    check_routing_vs_cpu(14, 1031, 64, 13, 0, 700, 3);    /* 16-entry lists, 3 distinct rows */
    check_routing_vs_cpu(15, 2050, 64, 32, 1000, 2050, 2050); /* 32-entry lists */
    check_routing_vs_cpu(16, 129, 64, 8, 64, 129, 1);     /* every score equal */
}

/* The k <= 8 kernels take 64 query rows per CTA and 64-candidate tiles
 * through a ring: query ranges crossing and ending inside CTAs,
 * k below the list size, ties spread over several CTAs, and a run long
 * enough (nb = 20,000) that the lists fill early and the rare paths of
 * both sweeps are what decides. */
Test(cuda_select, routing_equals_cpu_many_ctas)
{
    SKIP_WITHOUT_GPU();
    check_routing_vs_cpu(17, 3001, 64, 8, 100, 2900, 3001); /* distinct, ragged, 44 CTAs */
    check_routing_vs_cpu(18, 5000, 32, 5, 17, 4999, 5000);  /* k = 5 < 8 */
    check_routing_vs_cpu(19, 1500, 64, 8, 0, 1500, 5);      /* ties over 24 CTAs */
    check_routing_vs_cpu(20, 20000, 64, 8, 0, 20000, 20000);
}

/* Query rows not on tile boundaries (the sm_90a kernel's candidates come
 * in whole, padded 64-row tiles, its queries row by row): a range of 67
 * rows in one mostly empty CTA, candidates ending inside a tile, and
 * queries from other summaries than the candidates (separate bf16 copies). */
Test(cuda_select, routing_ragged_and_own_queries)
{
    SKIP_WITHOUT_GPU();
    check_routing_vs_cpu(21, 700, 16, 8, 3, 70, 9);
    check_routing_vs_cpu(22, 65, 8, 8, 0, 65, 65);
    check_routing_q(23, 3001, 64, 8, 100, 2900, 3001, true);
    check_routing_q(24, 1500, 64, 6, 7, 1499, 5, true); /* ties */
}

Test(cuda_select, residual_rmsnorm)
{
    SKIP_WITHOUT_GPU();
    uint64_t st = 9;
    const int64_t n = 333;
    const int H = 3, d_h = 64, d = H * d_h;
    float *X = rand_mat(&st, (size_t)n * d, 1.0f), *Y = rand_mat(&st, (size_t)n * d, 0.5f);
    for (int c = 0; c < d_h; c++) X[5 * d + d_h + c] = Y[5 * d + d_h + c] = 0.f; /* a zero slice stays zero */
    float *dX = dev_copy(X, (size_t)n * d * 4), *dY = dev_copy(Y, (size_t)n * d * 4);
    cr_assert_eq(folio_cuda_residual_l2norm(dX, dY, n, H, d_h, NULL), FOLIO_OK);
    float *got = malloc((size_t)n * d * 4);
    cr_assert_eq(folio_cuda_download(got, dX, (size_t)n * d * 4), FOLIO_OK);
    /* the CPU's own normalization is the reference */
    for (int64_t i = 0; i < n * d; i++) X[i] += Y[i];
    folio_rmsnorm_heads(X, (uint64_t)n, (uint32_t)H, (uint32_t)d_h);
    for (int64_t i = 0; i < n * d; i++)
        cr_assert(fabsf(got[i] - X[i]) <= 1e-5f * (1 + fabsf(X[i])), "elem %lld: %g vs %g", (long long)i,
                  (double)got[i], (double)X[i]);
    folio_cuda_free((void **)&dX);
    folio_cuda_free((void **)&dY);
    free(X); free(Y); free(got);
}
