/* tests/unit/test_attn_route.c — routing (the routed part of
 * folio_attn_select) against a plain-C brute force: every score in fp32 by
 * the same chain (s = fma(q[c], k[c], s), c = 0 .. dh-1, fused where the
 * target has FMA, as attn/encoder.c and the CUDA kernel), sorted by
 * (score descending, index ascending), own group excluded, first k kept.
 * The selection must be the same blocks in the same order: the library may
 * pre-filter with approximate scores (attn/encoder.c), and these inputs aim
 * at where a pre-filter goes wrong: exact ties (duplicate blocks), near-ties
 * (scores an ulp or two apart), zero, huge and non-finite rows, head widths
 * that are not a multiple of 4, awkward block counts and split query ranges. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"

static folio_pattern_t pat(const char *spec)
{
    folio_pattern_t p;
    char err[256];
    cr_assert_eq(folio_pattern_parse(spec, &p, err, sizeof err), FOLIO_OK, "parse '%s': %s", spec, err);
    return p;
}

static double unif(uint64_t *s) { return (double)(folio_splitmix64(s) >> 11) / 9007199254740992.0; }

typedef enum { IN_RANDOM, IN_DUPLICATES, IN_NEAR_TIES, IN_ODD_ROWS, IN_CLUSTERED } input_t;

/* Level-1 rows (nb, d) of one kind of input. */
static void make_blocks(float *x, uint32_t nb, uint32_t d, input_t kind, uint64_t seed)
{
    uint64_t s = seed;
    switch (kind) {
    case IN_RANDOM:
        for (size_t i = 0; i < (size_t)nb * d; i++) x[i] = (float)(2 * unif(&s) - 1);
        break;
    case IN_DUPLICATES: /* five distinct rows, repeated: every score ties with many others */
        for (uint32_t b = 0; b < nb; b++) {
            uint64_t t = seed + 1 + folio_splitmix64(&s) % 5;
            for (uint32_t c = 0; c < d; c++) x[(size_t)b * d + c] = (float)(2 * unif(&t) - 1);
        }
        break;
    case IN_NEAR_TIES: /* one row nudged by an ulp here and there: scores differ in the last bits */
        for (uint32_t c = 0; c < d; c++) x[c] = (float)(2 * unif(&s) - 1);
        for (uint32_t b = 1; b < nb; b++)
            for (uint32_t c = 0; c < d; c++) {
                float v = x[c];
                uint64_t r = folio_splitmix64(&s) % 8;
                if (r == 0) v = nextafterf(v, INFINITY);
                else if (r == 1) v = nextafterf(v, -INFINITY);
                else if (r == 2) v = nextafterf(nextafterf(v, INFINITY), INFINITY);
                x[(size_t)b * d + c] = v;
            }
        break;
    case IN_ODD_ROWS: /* random, with zero rows, rows 1e6 larger and 1e-6 smaller, and a duplicate of row 0 */
        for (size_t i = 0; i < (size_t)nb * d; i++) x[i] = (float)(2 * unif(&s) - 1);
        for (uint32_t b = 0; b < nb; b++) {
            float f = b % 7 == 3 ? 0.0f : b % 11 == 5 ? 1e6f : b % 13 == 6 ? 1e-6f : 1.0f;
            for (uint32_t c = 0; c < d; c++) x[(size_t)b * d + c] *= f;
            if (b % 17 == 9) memcpy(x + (size_t)b * d, x, sizeof(float) * d);
        }
        break;
    case IN_CLUSTERED: /* a common component plus small noise, like block means of one document */
        for (uint32_t c = 0; c < d; c++) x[c] = (float)(2 * unif(&s) - 1);
        for (uint32_t b = 1; b < nb; b++)
            for (uint32_t c = 0; c < d; c++) x[(size_t)b * d + c] = x[c] + (float)(0.01 * (2 * unif(&s) - 1));
        break;
    }
}

/* One step of the score chain as the library defines it: fused where the
 * target has FMA (as the CUDA kernel's fmaf), else a product then a sum.
 * Spelled out: left as s += q * k, GCC fuses it in some loops and not in
 * others. */
static inline float score_step(float q, float k, float s)
{
#if defined(__FMA__) || defined(__AVX512F__)
    return fmaf(q, k, s);
#else
    volatile float pr = q * k;
    return s + pr;
#endif
}

typedef struct {
    float s;
    int32_t b;
} cand_t;

static int cand_cmp(const void *pa, const void *pb)
{
    const cand_t *a = pa, *b = pb;
    if (a->s > b->s) return -1;
    if (a->s < b->s) return 1;
    return (a->b > b->b) - (a->b < b->b);
}

/* the reference: routed blocks of query block qb, head hh (at most k) */
static int ref_route(const float *nodes, uint32_t nb, uint32_t d, uint32_t hh, uint32_t dh, uint32_t G, uint32_t k,
                     uint32_t qb, cand_t *tmp, int32_t *out)
{
    const float *q = nodes + (size_t)qb * d + hh * dh;
    int m = 0;
    for (uint32_t b = 0; b < nb; b++) {
        if (b / G == qb / G) continue;
        const float *kr = nodes + (size_t)b * d + hh * dh;
        float s = 0.0f;
        for (uint32_t c = 0; c < dh; c++) s = score_step(q[c], kr[c], s);
        /* NaN and -inf never beat the empty slot's -inf: never selected */
        if (s > -INFINITY) tmp[m++] = (cand_t){s, (int32_t)b};
    }
    qsort(tmp, (size_t)m, sizeof *tmp, cand_cmp);
    int e = m < (int)k ? m : (int)k;
    for (int i = 0; i < e; i++) out[i] = tmp[i].b;
    return e;
}

/* Runs the selection for [qb0, qb1) and compares every (block, head) with
 * the reference; returns the number of routed keys checked.  copy_q: the
 * queries come from a copy of the node array (the library's symmetric
 * pre-filter, Q = K, is taken only for one array and all query blocks). */
static long check_case_q(const char *spec, uint32_t nb, input_t kind, uint64_t seed, float poison, uint32_t qb0,
                         uint32_t qb1, int threads, bool copy_q)
{
    folio_pattern_t p0 = pat(spec), p;
    const uint64_t n = (uint64_t)nb * p0.block;
    cr_assert_eq(folio_pattern_resolve(&p0, n, &p), FOLIO_OK);
    folio_hier_t h;
    cr_assert_eq(folio_hier_init(&h, n, p.block, p.group), FOLIO_OK);
    cr_assert_eq(h.count[1], nb);
    const uint32_t H = p.heads, dh = p.head_dim, d = H * dh, G = p.group;
    const int s_max = (int)folio_pattern_summary_max(&p, n);
    float *nodes = malloc(sizeof(float) * h.n_nodes * d);
    int32_t *sel = malloc(sizeof(int32_t) * (qb1 - qb0 + 1) * H * (s_max + 1));
    int32_t *sel_n = calloc((size_t)(qb1 - qb0 + 1) * H, sizeof(int32_t));
    cand_t *tmp = malloc(sizeof(cand_t) * nb);
    int32_t *want = malloc(sizeof(int32_t) * (p.topk + 1));
    cr_assert(nodes && sel && sel_n && tmp && want);
    make_blocks(nodes, nb, d, kind, seed);
    if (poison != 0.0f) /* one non-finite or huge value in head 0 of a block and a query */
        nodes[(size_t)(nb / 2) * d + dh / 2] = nodes[(size_t)(nb / 3) * d + dh / 3] = poison;
    cr_assert_eq(folio_hier_build_upper(&h, d, nodes), FOLIO_OK);
    float *qn = copy_q ? malloc(sizeof(float) * h.n_nodes * d) : nodes;
    cr_assert(qn);
    if (copy_q) memcpy(qn, nodes, sizeof(float) * h.n_nodes * d);
    cr_assert_eq(folio_attn_select(&p, &h, qn, nodes, qb0, qb1, sel, sel_n, s_max, threads), FOLIO_OK);
    if (copy_q) free(qn);
    const bool routed = p.kind == FOLIO_PATTERN_HIER_TOPK && h.n_levels >= 2 && p.topk > 0;
    long checked = 0;
    for (uint32_t qb = qb0; qb < qb1; qb++)
        for (uint32_t hh = 0; hh < H; hh++) {
            const int32_t *s = sel + ((size_t)(qb - qb0) * H + hh) * s_max;
            const int ns = sel_n[(size_t)(qb - qb0) * H + hh];
            int nh = 0;
            for (uint32_t l = 1; l <= h.n_levels; l++) {
                uint32_t a = folio_hier_ancestor(&h, qb, l), s0, s1;
                folio_hier_siblings(&h, l, a, &s0, &s1);
                for (uint32_t x = s0; x < s1; x++)
                    if (x != a) {
                        cr_assert_lt(nh, ns);
                        cr_assert_eq(s[nh], (int32_t)(h.offset[l] + x));
                        nh++;
                    }
            }
            const int e = routed ? ref_route(nodes, nb, d, hh, dh, G, p.topk, qb, tmp, want) : 0;
            cr_assert_eq(ns - nh, e, "%s nb=%u input %d [%u,%u): block %u head %u: %d routed keys, want %d", spec,
                         nb, (int)kind, qb0, qb1, qb, hh, ns - nh, e);
            for (int i = 0; i < e; i++)
                cr_assert_eq(s[nh + i], want[i],
                             "%s nb=%u input %d seed %llu [%u,%u) threads %d: block %u head %u routed #%d is %d, "
                             "want %d",
                             spec, nb, (int)kind, (unsigned long long)seed, qb0, qb1, threads, qb, hh, i,
                             s[nh + i], want[i]);
            checked += e;
        }
    free(nodes); free(sel); free(sel_n); free(tmp); free(want);
    return checked;
}

static long check_case(const char *spec, uint32_t nb, input_t kind, uint64_t seed, float poison, uint32_t qb0,
                       uint32_t qb1, int threads)
{
    return check_case_q(spec, nb, kind, seed, poison, qb0, qb1, threads, false);
}

static const input_t KINDS[] = {IN_RANDOM, IN_DUPLICATES, IN_NEAR_TIES, IN_ODD_ROWS, IN_CLUSTERED};

Test(attn_route, equals_brute_force_awkward_sizes, .timeout = 300)
{
    /* block=1: n = nb tokens; groups small enough that there is routing */
    const char *specs[] = {"hier+topk,window=4,block=1,group=4,topk=8,heads=3,head_dim=24",
                           "hier+topk,window=4,block=1,group=8,topk=3,heads=2,head_dim=5",
                           "hier+topk,window=4,block=1,group=64,topk=8,heads=4,head_dim=64",
                           "hier+topk,window=4,block=1,group=2,topk=1,heads=1,head_dim=3",
                           "hier+topk,window=4,block=1,group=5,topk=13,heads=2,head_dim=67",
                           "hier+topk,window=4,block=1,group=16,topk=20,heads=1,head_dim=32"};
    const uint32_t nbs[] = {1, 2, 63, 64, 65, 200, 1031};
    long checked = 0;
    for (size_t si = 0; si < sizeof specs / sizeof *specs; si++)
        for (size_t ni = 0; ni < sizeof nbs / sizeof *nbs; ni++)
            for (size_t ki = 0; ki < sizeof KINDS / sizeof *KINDS; ki++) {
                const uint32_t nb = nbs[ni];
                checked += check_case(specs[si], nb, KINDS[ki], 100 * si + 10 * ni + ki, 0.0f, 0, nb, 2);
            }
    cr_assert_gt(checked, 100000, "only %ld routed keys checked", checked);
}

/* whole-document selections (the symmetric pre-filter) and the same with
 * the queries in a separate array (the general one): both the brute force's */
Test(attn_route, symmetric_and_general_pre_filter, .timeout = 300)
{
    const char *specs[] = {"hier+topk,window=4,block=1,group=64,topk=8,heads=2,head_dim=64",
                           "hier+topk,window=4,block=1,group=5,topk=13,heads=2,head_dim=67",
                           "hier+topk,window=4,block=1,group=100,topk=4,heads=1,head_dim=16",
                           "hier+topk,window=4,block=1,group=3,topk=2,heads=1,head_dim=7"};
    const uint32_t nbs[] = {65, 127, 300, 1031};
    long checked = 0;
    for (size_t si = 0; si < sizeof specs / sizeof *specs; si++)
        for (size_t ni = 0; ni < sizeof nbs / sizeof *nbs; ni++)
            for (size_t ki = 0; ki < sizeof KINDS / sizeof *KINDS; ki++)
                for (int c = 0; c < 2; c++)
                    checked += check_case_q(specs[si], nbs[ni], KINDS[ki], 900 + 10 * si + ni, ki == 3 ? 2e14f : 0.0f,
                                            0, nbs[ni], 1 + c, c == 1);
    cr_assert_gt(checked, 50000, "only %ld routed keys checked", checked);
}

Test(attn_route, split_query_ranges_and_threads, .timeout = 300)
{
    const char *spec = "hier+topk,window=4,block=1,group=16,topk=8,heads=3,head_dim=32";
    const uint32_t nb = 1031;
    const uint32_t cuts[][2] = {{0, nb}, {0, 1}, {0, 344}, {344, 687}, {687, nb}, {nb - 1, nb}, {500, 500},
                                {63, 65}, {64, 200}, {1, nb - 1}};
    for (size_t ci = 0; ci < sizeof cuts / sizeof *cuts; ci++)
        for (size_t ki = 0; ki < sizeof KINDS / sizeof *KINDS; ki++)
            for (int t = 1; t <= 2; t++) check_case(spec, nb, KINDS[ki], 7 + ki, 0.0f, cuts[ci][0], cuts[ci][1], t);
}

/* rows the pre-filter's error bound does not cover (NaN, inf, beyond 1e15)
 * must still select exactly what the fp32 scores select */
Test(attn_route, non_finite_and_huge_values, .timeout = 120)
{
    const char *spec = "hier+topk,window=4,block=1,group=8,topk=8,heads=2,head_dim=16";
    const float poison[] = {NAN, INFINITY, -INFINITY, 3e15f, 1e30f};
    for (size_t i = 0; i < sizeof poison / sizeof *poison; i++)
        for (size_t ki = 0; ki < sizeof KINDS / sizeof *KINDS; ki++)
            check_case(spec, 200, KINDS[ki], 40 + i, poison[i], 0, 200, 2);
}

/* the default pattern's shape (64-token blocks, G = 64, 4 heads of 64) on a
 * document long enough for three levels and many candidate tiles */
Test(attn_route, default_pattern_shape, .timeout = 300)
{
    const char *spec = "hier+topk,window=256,block=64,group=64,topk=8,heads=4,head_dim=64";
    check_case(spec, 4099, IN_RANDOM, 3, 0.0f, 0, 4099, 2);
    check_case(spec, 4099, IN_CLUSTERED, 4, 0.0f, 1000, 3001, 2);
    check_case(spec, 4099, IN_DUPLICATES, 5, 0.0f, 4000, 4099, 2);
}
