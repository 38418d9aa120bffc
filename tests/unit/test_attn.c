/* tests/unit/test_attn.c — attn/ on the CPU: pattern values, budget mode,
 * hierarchy, the fast sparse kernel against the dense reference with the
 * pattern's explicit mask (random and real documents, every variant, awkward
 * n), determinism across threads and runs, and bit-identity of split runs. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "shard/shard.h"

static void fill_random(float *x, size_t n, uint64_t seed, float amp)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        uint64_t r = folio_splitmix64(&s);
        x[i] = amp * ((float)(r >> 40) / (float)(1ull << 24) * 2.0f - 1.0f);
    }
}

static float *random_doc(uint32_t n, uint32_t d, uint64_t seed);

static folio_pattern_t pat(const char *spec)
{
    folio_pattern_t p;
    char err[256];
    folio_status_t st = folio_pattern_parse(spec, &p, err, sizeof err);
    cr_assert_eq(st, FOLIO_OK, "parse '%s': %s", spec, err);
    return p;
}

/* ------------------------------------------------------------------ pattern */

Test(attn_pattern, default_and_round_trip)
{
    folio_pattern_t d = folio_pattern_default();
    cr_assert_eq(d.kind, FOLIO_PATTERN_HIER_TOPK);
    cr_assert_eq(d.window, 256);
    cr_assert_eq(d.block, 64);
    cr_assert_eq(d.group, 64);
    cr_assert_eq(d.topk, 8);
    cr_assert_eq(d.layers, 2);
    const char *specs[] = {"", "hier+topk", "local,window=128", "longt5", "hier", "dense",
                           "window=256,block=64,group=64,topk=8,layers=2,heads=4,head_dim=64,beta=1",
                           "budget=512", "hier,budget=4096,beta=0.3", "hier+topk,sumbias=1,budget=300", "local , window = 7 , beta=2.5e-1",
                           "block=1,group=2,topk=0,heads=3,head_dim=5", "beta=0.1", "beta=0.333333343", "beta=1e-3"};
    for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) {
        folio_pattern_t p = pat(specs[i]), q;
        char buf[FOLIO_PATTERN_SPEC_MAX], buf2[FOLIO_PATTERN_SPEC_MAX], err[256];
        size_t len = folio_pattern_print(&p, buf, sizeof buf);
        cr_assert_lt(len, sizeof buf);
        cr_assert_eq(folio_pattern_parse(buf, &q, err, sizeof err), FOLIO_OK, "%s: %s", buf, err);
        cr_assert(memcmp(&p, &q, sizeof p) == 0, "round trip of '%s' via '%s'", specs[i], buf);
        folio_pattern_print(&q, buf2, sizeof buf2);
        cr_assert_str_eq(buf, buf2);
    }
    folio_pattern_t l = pat("local,window=128");
    cr_assert_eq(l.kind, FOLIO_PATTERN_LOCAL);
    cr_assert_eq(l.window, 128);
    cr_assert_eq(pat("budget=512").budget, 512);
}

Test(attn_pattern, errors)
{
    struct { const char *spec; folio_status_t st; const char *needle; } bad[] = {
        {"window=-1", FOLIO_ERR_PARSE, "window"},
        {"window=abc", FOLIO_ERR_PARSE, "window"},
        {"block=48", FOLIO_ERR_ARG, "block"},
        {"block=0", FOLIO_ERR_ARG, "block"},
        {"group=1", FOLIO_ERR_ARG, "group"},
        {"layers=0", FOLIO_ERR_ARG, "layers"},
        {"heads=0", FOLIO_ERR_ARG, "heads"},
        {"beta=0", FOLIO_ERR_ARG, "beta"},
        {"beta=nan", FOLIO_ERR_ARG, "beta"},
        {"beta=x", FOLIO_ERR_PARSE, "beta"},
        {"budget=10", FOLIO_ERR_ARG, "budget"},
        {"sumbias=2", FOLIO_ERR_ARG, "sumbias"},
        {"dense,budget=512", FOLIO_ERR_ARG, "budget"},
        {"sparse", FOLIO_ERR_PARSE, "sparse"},
        {"colour=3", FOLIO_ERR_PARSE, "colour"},
        {"window=99999999999", FOLIO_ERR_PARSE, "window"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        folio_pattern_t p = folio_pattern_default(), before = p;
        char err[256] = "";
        folio_status_t st = folio_pattern_parse(bad[i].spec, &p, err, sizeof err);
        cr_assert_eq(st, bad[i].st, "'%s' gave %s (%s)", bad[i].spec, folio_status_str(st), err);
        cr_assert(strstr(err, bad[i].needle), "'%s': message '%s' does not name '%s'", bad[i].spec, err, bad[i].needle);
        cr_assert(memcmp(&p, &before, sizeof p) == 0, "failed parse must not modify the pattern");
    }
}

Test(attn_pattern, budget_holds_from_10_to_1e6)
{
    const uint32_t budgets[] = {64, 100, 256, 512, 1000, 4096};
    const char *kinds[] = {"hier+topk", "hier", "local"};
    for (size_t bi = 0; bi < sizeof budgets / sizeof *budgets; bi++)
        for (size_t ki = 0; ki < 3; ki++) {
            char spec[128];
            snprintf(spec, sizeof spec, "%s,budget=%u", kinds[ki], budgets[bi]);
            folio_pattern_t p = pat(spec);
            uint64_t s = 42 + bi;
            for (int t = 0; t < 60; t++) {
                /* log-uniform n in [10, 1e6] plus the end points */
                uint64_t n = t == 0 ? 10 : t == 1 ? 1000000 : (uint64_t)(10.0 * pow(1e5, (double)(folio_splitmix64(&s) >> 11) / 9007199254740992.0));
                folio_pattern_t r;
                cr_assert_eq(folio_pattern_resolve(&p, n, &r), FOLIO_OK);
                uint64_t kb = folio_pattern_keys_bound(&r, n);
                cr_assert_leq(kb, budgets[bi], "%s n=%llu: bound %llu", spec, (unsigned long long)n, (unsigned long long)kb);
                /* cost per token stays ~K: the budget is used, not just respected */
                uint64_t floor_keys = n < budgets[bi] ? n : budgets[bi] * 3 / 4;
                cr_assert_geq(kb, floor_keys, "%s n=%llu: bound %llu wastes the budget", spec, (unsigned long long)n,
                              (unsigned long long)kb);
                char err[256];
                cr_assert_eq(folio_pattern_validate(&r, err, sizeof err), FOLIO_OK, "%s", err);
                /* routing cost per token (~2*nb*d) stays within 1/16 of the attention's (4*K*d) */
                uint64_t nb = (n + r.block - 1) / r.block;
                if (r.kind == FOLIO_PATTERN_HIER_TOPK && r.topk > 0)
                    cr_assert_leq(nb, (uint64_t)r.block * budgets[bi] / 8, "%s n=%llu: routing over %llu blocks", spec,
                                  (unsigned long long)n, (unsigned long long)nb);
            }
        }
}

/* ------------------------------------------------------------------ hierarchy */

Test(attn_hier, partition_and_siblings)
{
    const uint64_t ns[] = {1, 63, 64, 65, 1000, 4097, 100003};
    const uint32_t Gs[] = {2, 3, 8, 64};
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
        for (size_t b = 0; b < sizeof Gs / sizeof *Gs; b++) {
            folio_hier_t h;
            cr_assert_eq(folio_hier_init(&h, ns[a], 16, Gs[b]), FOLIO_OK);
            cr_assert_eq(h.count[1], (ns[a] + 15) / 16);
            cr_assert_leq(h.count[h.n_levels], Gs[b]);
            for (uint32_t l = 1; l <= h.n_levels; l++) {
                uint64_t next = 0;
                for (uint32_t i = 0; i < h.count[l]; i++) {
                    uint64_t t0, t1;
                    folio_hier_node_tokens(&h, l, i, &t0, &t1);
                    cr_assert_eq(t0, next);
                    cr_assert_gt(t1, t0);
                    next = t1;
                    uint32_t lv, ix;
                    folio_hier_node_level(&h, h.offset[l] + i, &lv, &ix);
                    cr_assert(lv == l && ix == i);
                }
                cr_assert_eq(next, ns[a]);
            }
            /* window + hier siblings (excluding own ancestors) partition blocks */
            uint32_t nb = h.count[1];
            for (uint32_t qb = 0; qb < nb; qb += 1 + nb / 7) {
                uint64_t covered = 0;
                for (uint32_t l = 1; l <= h.n_levels; l++) {
                    uint32_t anc = folio_hier_ancestor(&h, qb, l), s0, s1;
                    folio_hier_siblings(&h, l, anc, &s0, &s1);
                    cr_assert(s0 <= anc && anc < s1);
                    for (uint32_t s = s0; s < s1; s++) {
                        if (s == anc) continue;
                        uint64_t t0, t1;
                        folio_hier_node_tokens(&h, l, s, &t0, &t1);
                        covered += t1 - t0;
                    }
                }
                uint64_t t0, t1;
                folio_hier_node_tokens(&h, 1, qb, &t0, &t1);
                cr_assert_eq(covered + (t1 - t0), ns[a], "hier keys + own block must cover the document");
            }
        }
}

/* ------------------------------------------------------------------ sparse vs dense */

typedef struct {
    folio_pattern_t r;
    folio_hier_t h;
    int s_max;
    float *nodes;
    int32_t *sel, *sel_n;
    float *bias; /* sumbias=1: ln(node size), else NULL */
} plan_t;

static void plan_make(plan_t *P, const folio_pattern_t *p, const float *X, uint32_t n)
{
    cr_assert_eq(folio_pattern_resolve(p, n, &P->r), FOLIO_OK);
    cr_assert_eq(folio_hier_init(&P->h, n, P->r.block, P->r.group), FOLIO_OK);
    uint32_t d = folio_pattern_dim(&P->r), nb = P->h.count[1], H = P->r.heads;
    P->s_max = (int)folio_pattern_summary_max(&P->r, n);
    P->nodes = malloc(sizeof(float) * P->h.n_nodes * d);
    P->sel = malloc(sizeof(int32_t) * nb * H * (P->s_max + 1));
    P->sel_n = calloc((size_t)nb * H, sizeof(int32_t));
    cr_assert(P->nodes && P->sel && P->sel_n);
    cr_assert_eq(folio_attn_block_sums(X, 0, n, n, P->r.block, d, P->nodes), FOLIO_OK);
    cr_assert_eq(folio_hier_build_upper(&P->h, d, P->nodes), FOLIO_OK);
    P->bias = NULL;
    if (P->r.sumbias) {
        P->bias = malloc(sizeof(float) * P->h.n_nodes);
        folio_hier_log_sizes(&P->h, P->bias);
    }
    if (P->s_max > 0)
        cr_assert_eq(folio_attn_select(&P->r, &P->h, P->nodes, P->nodes, 0, nb, P->sel, P->sel_n, P->s_max, 2), FOLIO_OK);
}

static void plan_free(plan_t *P)
{
    free(P->nodes);
    free(P->sel);
    free(P->sel_n);
    free(P->bias);
}

static void run_sparse(const plan_t *P, const float *X, uint32_t n, float *out, float *nm, int threads)
{
    uint32_t d = folio_pattern_dim(&P->r);
    folio_attn_args_t a = {
        .q = X, .k = X, .v = X, .ld = d, .x0 = 0, .nx = n, .q0 = 0, .q1 = n, .n_doc = n,
        .node_k = P->nodes, .node_v = P->nodes, .ld_nodes = d, .n_nodes = P->h.n_nodes,
        .sel = P->s_max ? P->sel : NULL, .sel_n = P->s_max ? P->sel_n : NULL, .s_max = P->s_max,
        .out = out, .ld_out = d, .node_mass = nm, .H = (int)P->r.heads, .d_h = (int)P->r.head_dim,
        .B = (int)P->r.block, .W = (int)P->r.window, .scale = folio_pattern_scale(&P->r), .threads = threads,
        .node_bias = P->bias,
    };
    cr_assert_eq(folio_attn_sparse_fwd_cpu(&a), FOLIO_OK);
}

/* Compares the fast kernel with the dense reference under the pattern's mask;
 * also checks keys/query against the stated bound and node_mass against the
 * reference's node weights. */
static void check_vs_dense(const char *spec, const float *X, uint32_t n)
{
    folio_pattern_t p = pat(spec);
    plan_t P;
    plan_make(&P, &p, X, n);
    uint32_t d = folio_pattern_dim(&P.r), H = P.r.heads, nb = P.h.count[1];
    float *out = malloc(sizeof(float) * n * d), *ref = malloc(sizeof(float) * n * d);
    float *nm = malloc(sizeof(float) * nb * H * (P.s_max + 1));
    float *nw = malloc(sizeof(float) * (size_t)n * H * (P.h.n_nodes + 1));
    cr_assert(out && ref && nm && nw);
    folio_status_t st;
    uint8_t *mask = folio_attn_build_mask(&P.r, n, P.h.n_nodes, P.sel, P.sel_n, P.s_max, &st);
    cr_assert(mask);
    /* keys per query never exceed the stated bound (and the mask has no
     * duplicates by construction: count distinct allowed keys) */
    uint64_t bound = folio_pattern_keys_bound(&P.r, n);
    size_t nk = (size_t)n + P.h.n_nodes;
    for (uint32_t h = 0; h < H; h++)
        for (uint32_t i = 0; i < n; i++) {
            uint64_t c = 0;
            for (size_t j = 0; j < nk; j++) c += mask[((size_t)h * n + i) * nk + j] != 0;
            cr_assert_leq(c, bound, "%s n=%u: query %u head %u has %llu keys > bound %llu", spec, n, i, h,
                          (unsigned long long)c, (unsigned long long)bound);
        }
    for (uint32_t t = 0; t < nb * H; t++) {
        /* selected nodes are distinct */
        for (int a = 0; P.s_max && a < P.sel_n[t]; a++)
            for (int b = a + 1; b < P.sel_n[t]; b++)
                cr_assert_neq(P.sel[t * P.s_max + a], P.sel[t * P.s_max + b], "%s: duplicate summary key", spec);
    }
    run_sparse(&P, X, n, out, P.s_max ? nm : NULL, 2);
    cr_assert_eq(folio_attn_dense_ref_bias(X, n, P.nodes, P.h.n_nodes, P.bias, H, P.r.head_dim,
                                           folio_pattern_scale(&P.r), mask, ref, nw), FOLIO_OK);
    double maxref = 0, maxerr = 0;
    for (size_t i = 0; i < (size_t)n * d; i++) {
        maxref = fmax(maxref, fabs(ref[i]));
        maxerr = fmax(maxerr, fabs((double)out[i] - ref[i]));
    }
    cr_assert_leq(maxerr, 1e-5 * maxref, "%s n=%u: max error %g (max |ref| %g)", spec, n, maxerr, maxref);
    if (P.s_max) {
        double merr = 0;
        for (uint32_t qb = 0; qb < nb; qb++)
            for (uint32_t h = 0; h < H; h++)
                for (int s = 0; s < P.sel_n[qb * H + h]; s++) {
                    int32_t node = P.sel[(qb * H + h) * P.s_max + s];
                    double e = 0;
                    for (uint32_t i = qb * P.r.block; i < n && i < (qb + 1) * P.r.block; i++)
                        e += nw[((size_t)i * H + h) * P.h.n_nodes + node];
                    merr = fmax(merr, fabs(e - nm[(qb * H + h) * P.s_max + s]));
                }
        cr_assert_leq(merr, 1e-4, "%s n=%u: node_mass error %g", spec, n, merr);
    }
    free(mask);
    free(out);
    free(ref);
    free(nm);
    free(nw);
    plan_free(&P);
}

static const char *const VARIANTS[] = {
    "local,window=5,block=8,group=4,heads=2,head_dim=16",
    "longt5,window=5,block=8,group=4,heads=2,head_dim=16",
    "hier,window=5,block=8,group=4,heads=2,head_dim=16",
    "hier+topk,window=5,block=8,group=4,topk=3,heads=2,head_dim=16",
    "dense,block=8,heads=2,head_dim=16",
    "hier+topk,window=40,block=16,group=3,topk=2,heads=3,head_dim=20,beta=2",
    "hier+topk,window=0,block=4,group=2,topk=5,heads=1,head_dim=64",
    "hier+topk,window=70,block=64,group=2,topk=4,heads=2,head_dim=64,beta=3",
    "hier+topk,window=33,block=32,group=4,topk=2,heads=1,head_dim=80",
    "hier+topk,window=9,block=8,group=3,topk=3,heads=2,head_dim=32,sumbias=1",
    "longt5,window=3,block=16,heads=1,head_dim=16,sumbias=1",
};

/* check_vs_dense on a random (n, d) input of the pattern's width (seed, scale). */
static void check_random_vs_dense(const char *spec, uint32_t n, uint64_t seed, float scale)
{
    folio_pattern_t p = pat(spec);
    const uint32_t d = folio_pattern_dim(&p);
    float *X = malloc(sizeof(float) * n * d);
    fill_random(X, (size_t)n * d, seed, scale);
    check_vs_dense(spec, X, n);
    free(X);
}

Test(attn_kernel, sparse_equals_dense_masked_random, .timeout = 300)
{
    const uint32_t ns[] = {1, 2, 63, 64, 65, 257, 1031};
    for (size_t v = 0; v < sizeof VARIANTS / sizeof *VARIANTS; v++)
        for (size_t a = 0; a < sizeof ns / sizeof *ns; a++) check_random_vs_dense(VARIANTS[v], ns[a], 1000 + v * 17 + a, 1.5f);
}

Test(attn_kernel, sparse_equals_dense_masked_4097, .timeout = 300)
{
    const char *specs[] = {"hier+topk,window=64,block=16,group=8,topk=4,heads=1,head_dim=16",
                           "longt5,window=31,block=64,heads=1,head_dim=16"};
    for (int s = 0; s < 2; s++) check_random_vs_dense(specs[s], 4097, 77 + s, 2.0f);
}

/* A block's summary keys fill tiles of 64; the last one is computed only in
 * the 16-key vectors that hold keys (1, 2, 3 or 4 of them).  Patterns whose
 * summary-key counts end a tile at every width (and sumbias, whose bias is
 * loaded per vector), against the dense reference. */
Test(attn_kernel, summary_tiles_of_every_width, .timeout = 300)
{
    const char *specs[] = {
        "hier+topk,window=8,block=8,group=12,topk=9,heads=2,head_dim=16",           /* 34: 3 vectors */
        "hier+topk,window=8,block=8,group=6,topk=15,heads=1,head_dim=32",           /* ~30: 2 vectors */
        "longt5,window=8,block=8,heads=1,head_dim=16",                              /* 64 * 8 + 1 */
        "hier+topk,window=8,block=8,group=20,topk=40,heads=2,head_dim=16,sumbias=1", /* 60-80: 4, then 1-2 */
        "hier,window=8,block=4,group=50,heads=1,head_dim=16",                       /* 49 + 20: 4, then 1 */
    };
    for (size_t s = 0; s < sizeof specs / sizeof *specs; s++) check_random_vs_dense(specs[s], 4099, 300 + s, 1.5f);
}

/* The kernel's residual + normalization epilogue equals the plain kernel
 * followed by the separate passes, bit for bit: whole documents and query
 * ranges inside a halo (the residual indexed by query row), a residual row
 * stride wider than d, awkward n. */
Test(attn_kernel, fused_residual_rmsnorm_equals_separate_passes, .timeout = 120)
{
    const char *specs[] = {"hier+topk,window=40,block=16,group=4,topk=3,heads=2,head_dim=32",
                           "hier+topk,window=20,block=8,group=5,topk=2,heads=3,head_dim=20,sumbias=1",
                           "local,window=7,block=64,heads=1,head_dim=64"};
    const uint32_t ns[] = {1, 63, 65, 1009};
    for (size_t s = 0; s < sizeof specs / sizeof *specs; s++)
        for (size_t t = 0; t < sizeof ns / sizeof *ns; t++) {
            folio_pattern_t p = pat(specs[s]);
            const uint32_t n = ns[t], d = folio_pattern_dim(&p), H = p.heads, dh = p.head_dim, B = p.block;
            float *X = random_doc(n, d, 500 + 7 * s + t);
            folio_rmsnorm_heads(X, n, H, dh);
            plan_t P;
            plan_make(&P, &p, X, n);
            /* queries [q0, q1): whole, or the middle blocks with halo rows */
            uint32_t nbk = (n + B - 1) / B;
            uint32_t q0s[2] = {0, nbk > 2 ? B : 0}, q1s[2] = {n, nbk > 2 ? (nbk - 1) * B : n};
            for (int r = 0; r < 2; r++) {
                const uint32_t q0 = q0s[r], q1 = q1s[r], nq = q1 - q0, W = P.r.window;
                const uint32_t x0 = q0 > W ? q0 - W : 0, x1 = q1 + W < n ? q1 + W : n;
                const uint32_t ldr = d + 5; /* residual: its own wider rows, garbage in the gaps */
                float *R = malloc(sizeof(float) * ((size_t)nq * ldr + 1));
                fill_random(R, (size_t)nq * ldr, 900 + r, 3.0f);
                for (uint32_t i = 0; i < nq; i++) memcpy(R + (size_t)i * ldr, X + (size_t)(q0 + i) * d, sizeof(float) * d);
                float *ref = malloc(sizeof(float) * ((size_t)nq * d + 1)), *out = malloc(sizeof(float) * ((size_t)nq * d + 1));
                float *out2 = malloc(sizeof(float) * ((size_t)nq * d + 1));
                const size_t qb0 = q0 / B;
                folio_attn_args_t a = {
                    .q = X + (size_t)x0 * d, .k = X + (size_t)x0 * d, .v = X + (size_t)x0 * d, .ld = d, .x0 = x0,
                    .nx = x1 - x0, .q0 = q0, .q1 = q1, .n_doc = n, .node_k = P.nodes, .node_v = P.nodes, .ld_nodes = d,
                    .n_nodes = P.h.n_nodes, .sel = P.s_max ? P.sel + qb0 * H * P.s_max : NULL,
                    .sel_n = P.s_max ? P.sel_n + qb0 * H : NULL, .s_max = P.s_max, .out = ref, .ld_out = d,
                    .H = (int)H, .d_h = (int)dh, .B = (int)B, .W = (int)W, .scale = folio_pattern_scale(&P.r),
                    .threads = 2, .node_bias = P.bias,
                };
                cr_assert_eq(folio_attn_sparse_fwd_cpu(&a), FOLIO_OK);
                /* separate passes, as the encoder ran them */
                for (uint32_t i = 0; i < nq; i++)
                    for (uint32_t c = 0; c < d; c++) ref[(size_t)i * d + c] = X[(size_t)(q0 + i) * d + c] + ref[(size_t)i * d + c];
                memcpy(out2, ref, sizeof(float) * nq * d);
                folio_rmsnorm_heads(ref, nq, H, dh);
                a.out = out;
                a.residual = R;
                a.ld_res = ldr;
                a.threads = 1 + r;
                cr_assert_eq(folio_attn_sparse_fwd_cpu(&a), FOLIO_OK);
                cr_assert(memcmp(out, out2, sizeof(float) * nq * d) == 0, "%s n=%u: residual epilogue differs", specs[s], n);
                a.rmsnorm = true;
                cr_assert_eq(folio_attn_sparse_fwd_cpu(&a), FOLIO_OK);
                cr_assert(memcmp(out, ref, sizeof(float) * nq * d) == 0, "%s n=%u [%u, %u): fused epilogue differs",
                          specs[s], n, q0, q1);
                a.ld_res = d - 1;
                cr_assert_eq(folio_attn_sparse_fwd_cpu(&a), FOLIO_ERR_ARG);
                free(R); free(ref); free(out); free(out2);
            }
            plan_free(&P);
            free(X);
        }
}

/* folio_rmsnorm_heads (8 head slices per vector of doubles) equals the plain
 * definition bit for bit: per head slice, s = sum of squares in double in
 * order c = 0 .. d_h-1, x *= (float)(sqrt(d_h) / sqrt(s)) unless s = 0.
 * Awkward widths and counts (a partial last group of 8), zero, tiny and
 * huge slices.  (It catches a float sum or a wrong lane; another order of
 * the double sum almost never changes the float factor, so not that.) */
Test(attn_encoder, rmsnorm_equals_plain_definition)
{
    const uint32_t dhs[] = {1, 7, 16, 64, 67}, Hs[] = {1, 3, 4};
    const uint32_t ns[] = {1, 2, 5, 63, 301};
    for (size_t a = 0; a < 5; a++)
        for (size_t b = 0; b < 3; b++)
            for (size_t c = 0; c < 5; c++) {
                const uint32_t dh = dhs[a], H = Hs[b], n = ns[c], d = H * dh;
                float *X = random_doc(n, d, 11 * a + 5 * b + c), *R = malloc(sizeof(float) * n * d);
                for (uint32_t r = 0; r < n * H; r++) { /* zero, tiny and huge slices */
                    const float f = r % 5 == 2 ? 0.0f : r % 7 == 3 ? 1e-19f : r % 11 == 4 ? 3e17f : 1.0f;
                    for (uint32_t e = 0; e < dh; e++) X[(size_t)r * dh + e] *= f;
                }
                memcpy(R, X, sizeof(float) * n * d);
                const double target = sqrt((double)dh);
                for (uint32_t r = 0; r < n * H; r++) {
                    float *x = R + (size_t)r * dh;
                    double sum = 0;
                    for (uint32_t e = 0; e < dh; e++) {
                        volatile double sq = (double)x[e] * x[e]; /* exact: no contraction question */
                        sum = sum + sq;
                    }
                    if (sum > 0) {
                        const float f = (float)(target / sqrt(sum));
                        for (uint32_t e = 0; e < dh; e++) x[e] *= f;
                    }
                }
                folio_rmsnorm_heads(X, n, H, dh);
                cr_assert(memcmp(X, R, sizeof(float) * n * d) == 0, "d_h=%u H=%u n=%u: differs from the definition", dh,
                          H, n);
                free(X);
                free(R);
            }
}

/* The kernel's own fixed-point node mass (args.mass, summed per thread)
 * equals folio_mass_accumulate over its node_mass output, integer for
 * integer: any thread count, query ranges inside a halo, awkward n, a mass
 * array that already holds a previous layer's sums. */
Test(attn_kernel, mass_equals_accumulated_node_mass, .timeout = 120)
{
    const char *specs[] = {"hier+topk,window=40,block=16,group=4,topk=3,heads=2,head_dim=32",
                           "hier+topk,window=9,block=8,group=3,topk=3,heads=2,head_dim=32,sumbias=1",
                           "longt5,window=3,block=16,heads=1,head_dim=16"};
    const uint32_t ns[] = {17, 65, 1009, 4099}; /* >= 2 blocks: summary keys */
    for (size_t s = 0; s < sizeof specs / sizeof *specs; s++)
        for (size_t t = 0; t < sizeof ns / sizeof *ns; t++) {
            folio_pattern_t p = pat(specs[s]);
            const uint32_t n = ns[t], d = folio_pattern_dim(&p), H = p.heads, B = p.block;
            float *X = random_doc(n, d, 700 + 7 * s + t);
            plan_t P;
            plan_make(&P, &p, X, n);
            cr_assert_gt(P.s_max, 0);
            const uint32_t nbk = (n + B - 1) / B, nn = P.h.n_nodes;
            uint32_t q0s[2] = {0, nbk > 2 ? B : 0}, q1s[2] = {n, nbk > 2 ? (nbk - 1) * B : n};
            int64_t *want = malloc(sizeof(int64_t) * nn), *got = malloc(sizeof(int64_t) * nn);
            float *out = malloc(sizeof(float) * ((size_t)n * d + 1)), *nm = malloc(sizeof(float) * nbk * H * P.s_max);
            for (int r = 0; r < 2; r++) {
                const uint32_t q0 = q0s[r], q1 = q1s[r], W = P.r.window;
                const uint32_t x0 = q0 > W ? q0 - W : 0, x1 = q1 + W < n ? q1 + W : n, qb0 = q0 / B;
                const uint32_t nqb = (q1 - q0 + B - 1) / B;
                for (uint32_t f = 0; f < nn; f++) want[f] = (int64_t)f * 1000003 - 77; /* a previous layer */
                folio_attn_args_t a = {
                    .q = X + (size_t)x0 * d, .k = X + (size_t)x0 * d, .v = X + (size_t)x0 * d, .ld = d, .x0 = x0,
                    .nx = x1 - x0, .q0 = q0, .q1 = q1, .n_doc = n, .node_k = P.nodes, .node_v = P.nodes, .ld_nodes = d,
                    .n_nodes = nn, .sel = P.sel + (size_t)qb0 * H * P.s_max, .sel_n = P.sel_n + (size_t)qb0 * H,
                    .s_max = P.s_max, .out = out, .ld_out = d, .node_mass = nm, .H = (int)H, .d_h = (int)p.head_dim,
                    .B = (int)B, .W = (int)W, .scale = folio_pattern_scale(&P.r), .threads = 1, .node_bias = P.bias,
                };
                cr_assert_eq(folio_attn_sparse_fwd_cpu(&a), FOLIO_OK);
                folio_mass_accumulate(a.sel, a.sel_n, nm, nqb, (int)H, P.s_max, want);
                for (int th = 1; th <= 3; th++) {
                    for (uint32_t f = 0; f < nn; f++) got[f] = (int64_t)f * 1000003 - 77;
                    a.node_mass = th == 2 ? nm : NULL; /* with and without the float output */
                    a.mass = got;
                    a.threads = th;
                    cr_assert_eq(folio_attn_sparse_fwd_cpu(&a), FOLIO_OK);
                    for (uint32_t f = 0; f < nn; f++)
                        cr_assert_eq(got[f], want[f], "%s n=%u [%u, %u) %d threads: node %u mass %lld, want %lld",
                                     specs[s], n, q0, q1, th, f, (long long)got[f], (long long)want[f]);
                    a.mass = NULL;
                }
            }
            free(want); free(got); free(out); free(nm);
            plan_free(&P);
            free(X);
        }
}

Test(attn_kernel, window_covering_document_is_plain_dense)
{
    const uint32_t ns[] = {1, 7, 64, 65, 300};
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++) {
        uint32_t n = ns[a], H = 2, dh = 24, d = H * dh;
        float *X = malloc(sizeof(float) * n * d), *o = malloc(sizeof(float) * n * d), *r = malloc(sizeof(float) * n * d);
        fill_random(X, (size_t)n * d, 5 + a, 1.0f);
        folio_attn_args_t args = {.q = X, .k = X, .v = X, .ld = d, .x0 = 0, .nx = n, .q0 = 0, .q1 = n, .n_doc = n,
                                  .out = o, .ld_out = d, .H = (int)H, .d_h = (int)dh, .B = 64, .W = (int)n + 3,
                                  .scale = 0.7f, .threads = 2};
        cr_assert_eq(folio_attn_sparse_fwd_cpu(&args), FOLIO_OK);
        uint8_t *mask = malloc((size_t)H * n * n);
        memset(mask, 1, (size_t)H * n * n);
        cr_assert_eq(folio_attn_dense_ref(X, n, NULL, 0, H, dh, 0.7f, mask, r, NULL), FOLIO_OK);
        double me = 0, mr = 0;
        for (size_t i = 0; i < (size_t)n * d; i++) {
            me = fmax(me, fabs((double)o[i] - r[i]));
            mr = fmax(mr, fabs(r[i]));
        }
        cr_assert_leq(me, 1e-5 * mr, "n=%u err %g", n, me);
        free(X); free(o); free(r); free(mask);
    }
}

Test(attn_kernel, rejects_bad_arguments)
{
    float X[64 * 16] = {0}, o[64 * 16];
    folio_attn_args_t a = {.q = X, .k = X, .v = X, .ld = 16, .x0 = 8, .nx = 40, .q0 = 16, .q1 = 32, .n_doc = 64,
                           .out = o, .ld_out = 16, .H = 1, .d_h = 16, .B = 16, .W = 8, .scale = 1};
    cr_assert_eq(folio_attn_sparse_fwd_cpu(&a), FOLIO_OK);
    a.W = 9; /* window keys [7, 41) not inside X [8, 48) */
    cr_assert_eq(folio_attn_sparse_fwd_cpu(&a), FOLIO_ERR_ARG);
    a.W = 8;
    a.q0 = 17;
    cr_assert_eq(folio_attn_sparse_fwd_cpu(&a), FOLIO_ERR_ARG);
    a.q0 = 16;
    int32_t sel[4] = {0, 1, 2, 99}, sel_n[1] = {4};
    a.sel = sel; a.sel_n = sel_n; a.s_max = 4; a.node_k = X; a.node_v = X; a.ld_nodes = 16; a.n_nodes = 10;
    cr_assert_eq(folio_attn_sparse_fwd_cpu(&a), FOLIO_ERR_ARG);
}

/* ------------------------------------------------------------------ real documents */

static char *read_first_doc_text(const char *path, int which, size_t *len)
{
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot open %s", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t r;
    int i = 0;
    char *text = NULL;
    while ((r = getline(&line, &cap, f)) > 0) {
        if (i++ < which) continue;
        folio_json_t *v;
        char err[128];
        cr_assert_eq(folio_json_parse(line, (size_t)r, &v, err, sizeof err), FOLIO_OK, "%s", err);
        const char *t = folio_json_get_str(v, "text", len);
        cr_assert(t);
        text = malloc(*len + 1);
        memcpy(text, t, *len + 1);
        folio_json_free(&v);
        break;
    }
    free(line);
    fclose(f);
    cr_assert(text);
    return text;
}

Test(attn_kernel, sparse_equals_dense_masked_real_docs, .timeout = 300)
{
    const char *files[] = {FOLIO_DATA_DIR "/pubmed-dev.jsonl", FOLIO_DATA_DIR "/sciqa-dev.jsonl"};
    const char *specs[] = {"hier+topk,window=64,block=32,group=4,topk=4,heads=2,head_dim=32,sumbias=1",
                           "longt5,window=64,block=64,heads=2,head_dim=32",
                           "hier,window=16,block=16,group=8,heads=2,head_dim=32",
                           "local,window=100,heads=2,head_dim=32"};
    for (int fi = 0; fi < 2; fi++) {
        size_t len;
        char *text = read_first_doc_text(files[fi], 1, &len);
        folio_span_t *toks;
        uint32_t nt;
        cr_assert_eq(folio_tokenize(text, len, &toks, &nt), FOLIO_OK);
        uint32_t n = nt < 1500 ? nt : 1500;
        cr_assert_gt(n, 200);
        for (int s = 0; s < 4; s++) {
            folio_pattern_t p = pat(specs[s]);
            uint32_t d = folio_pattern_dim(&p);
            float *X = malloc(sizeof(float) * n * d);
            cr_assert_eq(folio_embed(text, toks, NULL, n, d, 1234, X), FOLIO_OK);
            folio_rmsnorm_heads(X, n, p.heads, p.head_dim);
            check_vs_dense(specs[s], X, n);
            free(X);
        }
        free(toks);
        free(text);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    const uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The CUDA kernel's softmax (attn/attn_sparse.cu, "softmax") takes each
 * first-layer row's own score as its reference when the rows' norms are not
 * bounded: exact for any reference, but fast only while every P = 2^((s -
 * s_own) scale log2 e) and every row sum stay inside [2^-90, 2^120]; a block
 * outside is recomputed by a kernel twice as slow (with r = 0 instead, most
 * first-layer blocks were: a GPU ingest took twice its time, fourteenth
 * session).  The premise, checked here where CI runs: real documents
 * embedded with IDF weights as an ingest embeds them (the first layer of the
 * default pattern: every window key and every summary node) never score a
 * key more than 2^40 above the row's own score. */
Test(attn_embed, first_layer_scores_stay_near_each_rows_own, .timeout = 120)
{
    const char *files[] = {"pubmed-dev.jsonl", "billsum-dev.jsonl", "sciqa-dev.jsonl"};
    const int n_docs[] = {48, 48, 20}; /* the corpus for the document frequencies (sciqa-dev has 22) */
    const folio_pattern_t p = folio_pattern_default();
    const uint32_t H = p.heads, dh = p.head_dim, d = folio_pattern_dim(&p), W = p.window;
    const double sl = (double)folio_pattern_scale(&p) * 1.4426950408889634;
    for (int fi = 0; fi < 3; fi++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", FOLIO_DATA_DIR, files[fi]);
        /* document frequencies over the file's first ND documents, keyed by
         * stem as an ingest keys them */
        const int ND = n_docs[fi];
        uint64_t *all = NULL;
        size_t n_all = 0, cap_all = 0;
        char *texts[48];
        folio_span_t *toks[48];
        uint32_t nts[48];
        FILE *f = fopen(path, "r");
        cr_assert(f, "cannot open %s", path);
        char *line = NULL;
        size_t cap = 0;
        for (int di = 0; di < ND; di++) {
            const ssize_t r = getline(&line, &cap, f);
            cr_assert_gt(r, 0, "%s: no document %d", path, di);
            folio_json_t *v;
            char err[128];
            cr_assert_eq(folio_json_parse(line, (size_t)r, &v, err, sizeof err), FOLIO_OK, "%s", err);
            size_t len;
            const char *t = folio_json_get_str(v, "text", &len);
            cr_assert(t);
            texts[di] = malloc(len + 1);
            memcpy(texts[di], t, len + 1);
            folio_json_free(&v);
            cr_assert_eq(folio_tokenize(texts[di], len, &toks[di], &nts[di]), FOLIO_OK);
            uint64_t *hs = malloc(sizeof *hs * (nts[di] + 1));
            for (uint32_t i = 0; i < nts[di]; i++) hs[i] = folio_stem_hash(texts[di], toks[di][i]);
            qsort(hs, nts[di], sizeof *hs, cmp_u64);
            for (uint32_t i = 0; i < nts[di]; i++) {
                if (i > 0 && hs[i] == hs[i - 1]) continue;
                if (n_all == cap_all) all = realloc(all, sizeof *all * (cap_all = cap_all ? 2 * cap_all : 4096));
                all[n_all++] = hs[i];
            }
            free(hs);
        }
        free(line);
        fclose(f);
        qsort(all, n_all, sizeof *all, cmp_u64);
        double worst = -1e300, own_max = 0;
        for (int di = 0; di < 3; di++) { /* three documents of each file */
            const uint32_t n = nts[di] < 4096 ? nts[di] : 4096;
            float *w = malloc(sizeof *w * n);
            for (uint32_t i = 0; i < n; i++) {
                const uint64_t key = folio_stem_hash(texts[di], toks[di][i]);
                size_t lo = 0, hi = n_all; /* first >= key, then the run's length */
                while (lo < hi) {
                    const size_t mid = (lo + hi) / 2;
                    if (all[mid] < key) lo = mid + 1;
                    else hi = mid;
                }
                size_t e = lo;
                while (e < n_all && all[e] == key) e++;
                w[i] = folio_idf(ND, e - lo);
            }
            float *X = malloc(sizeof *X * n * d);
            cr_assert_eq(folio_embed(texts[di], toks[di], w, n, d, FOLIO_EMBED_SEED, X), FOLIO_OK);
            folio_hier_t h;
            cr_assert_eq(folio_hier_init(&h, n, p.block, p.group), FOLIO_OK);
            float *nodes = malloc(sizeof *nodes * h.n_nodes * d);
            cr_assert_eq(folio_attn_block_sums(X, 0, n, n, p.block, d, nodes), FOLIO_OK);
            cr_assert_eq(folio_hier_build_upper(&h, d, nodes), FOLIO_OK);
            for (uint32_t hh = 0; hh < H; hh++)
                for (uint32_t i = 0; i < n; i++) {
                    const float *q = X + (size_t)i * d + hh * dh;
                    double own = 0;
                    for (uint32_t c = 0; c < dh; c++) own += (double)q[c] * q[c];
                    own *= sl;
                    if (own > own_max) own_max = own;
                    const uint32_t j0 = i > W ? i - W : 0, j1 = i + W + 1 < n ? i + W + 1 : n;
                    for (uint64_t j = 0; j < (j1 - j0) + h.n_nodes; j++) {
                        const float *k = j < j1 - j0 ? X + (size_t)(j0 + j) * d + hh * dh
                                                      : nodes + (size_t)(j - (j1 - j0)) * d + hh * dh;
                        double s = 0;
                        for (uint32_t c = 0; c < dh; c++) s += (double)q[c] * k[c];
                        if (s * sl - own > worst) worst = s * sl - own;
                    }
                }
            free(w); free(X); free(nodes);
        }
        cr_log_info("%s: largest score above the row's own: 2^%.1f; largest own score 2^%.1f (r = 0's P)", files[fi],
                    worst, own_max);
        cr_assert(worst <= 40.0, "%s: a key scores 2^%.1f above its row's own score", files[fi], worst);
        for (int di = 0; di < ND; di++) {
            free(texts[di]);
            free(toks[di]);
        }
        free(all);
    }
}

Test(attn_embed, deterministic_and_case_folded)
{
    const char *text = "The the THE cat Cats";
    folio_span_t sp[5] = {{0, 3}, {4, 7}, {8, 11}, {12, 15}, {16, 20}};
    float w[5] = {1, 2, 1, 1, 1};
    float X[5 * 64], Y[5 * 64];
    cr_assert_eq(folio_embed(text, sp, w, 5, 64, 9, X), FOLIO_OK);
    cr_assert_eq(folio_embed(text, sp, w, 5, 64, 9, Y), FOLIO_OK);
    cr_assert(memcmp(X, Y, sizeof X) == 0);
    double n0 = 0, n1 = 0, dot = 0, dc = 0;
    for (int c = 0; c < 64; c++) {
        n0 += X[c] * X[c];
        n1 += X[64 + c] * X[64 + c];
        dot += X[c] * X[128 + c];
        cr_assert_float_eq(X[64 + c], 2 * X[c], 1e-6, "case folding and IDF weight");
        dc += X[192 + c] * X[256 + c];
    }
    cr_assert_float_eq(n0, 64.0, 1e-3);
    cr_assert_float_eq(n1, 4 * 64.0, 1e-2);
    cr_assert_float_eq(dot, 64.0, 1e-3);
    cr_assert_gt(dc / 64.0, 0.2, "shared n-grams make cat/cats similar (%g)", dc / 64.0);
    cr_assert_eq(folio_embed(text, sp, w, 5, 64, 10, Y), FOLIO_OK);
    cr_assert(memcmp(X, Y, sizeof X) != 0, "the seed matters");
}

/* The embedding's definition, written plainly (one feature, one element at
 * a time): folio_embed must give the same bits for every width (vector
 * paths and their scalar tails), long tokens (hashed whole) and weights. */
static void embed_reference(const char *text, const folio_span_t *sp, const float *w, uint32_t n, uint32_t d,
                            uint64_t seed, float *X)
{
    const float unit = 1.0f / sqrtf((float)d);
    const uint64_t gram_seed = seed ^ 0x5bd1e9955bd1e995ull;
    float *acc = malloc(sizeof(float) * d);
    char *low = malloc(4096);
    for (uint32_t i = 0; i < n; i++) {
        const uint32_t len = sp[i].end > sp[i].start ? sp[i].end - sp[i].start : 0;
        cr_assert_lt(len, 4000u);
        for (uint32_t j = 0; j < len; j++) {
            const char c = text[sp[i].start + j];
            low[1 + j] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; /* ASCII only, as documented */
        }
        const uint32_t fl = len < 64 ? len : 64;
        low[0] = '<';
        char form[70];
        memcpy(form, low, fl + 1);
        form[fl + 1] = '>';
        for (uint32_t c = 0; c < d; c++) acc[c] = 0;
        uint64_t feats[256];
        float fw[256];
        uint32_t nf = 0;
        feats[nf] = folio_hash64(low + 1, len, seed); /* the whole lowercased token */
        fw[nf++] = unit;
        const uint32_t L = fl + 2;
        uint32_t ngr = 0;
        for (uint32_t g = 3; g <= 5; g++) ngr += L >= g ? L - g + 1 : 0;
        for (uint32_t g = 3; g <= 5; g++)
            for (uint32_t s0 = 0; s0 + g <= L; s0++) {
                feats[nf] = folio_hash64(form + s0, g, gram_seed + g);
                fw[nf++] = unit / sqrtf((float)ngr);
            }
        for (uint32_t f = 0; f < nf; f++) {
            uint64_t st = feats[f], bits = 0;
            for (uint32_t c = 0; c < d; c++) {
                if (c % 64 == 0) bits = folio_splitmix64(&st);
                const float sg = (bits >> (c % 64)) & 1u ? -1.0f : 1.0f;
                acc[c] += sg * fw[f];
            }
        }
        double nn = 0;
        for (uint32_t c = 0; c < d; c++) nn += (double)acc[c] * acc[c];
        const float wgt = w ? w[i] : 1.0f;
        const float f = nn > 0 ? (float)(sqrt((double)d) / sqrt(nn)) * wgt : 0.0f;
        for (uint32_t c = 0; c < d; c++) X[(size_t)i * d + c] = acc[c] * f;
    }
    free(acc);
    free(low);
}

Test(attn_embed, equals_plain_definition_bitwise)
{
    size_t len;
    char *text = read_first_doc_text(FOLIO_DATA_DIR "/pubmed-dev.jsonl", 1, &len);
    folio_span_t *toks;
    uint32_t nt;
    cr_assert_eq(folio_tokenize(text, len, &toks, &nt), FOLIO_OK);
    const uint32_t n = nt < 2000 ? nt : 2000;
    /* a long token (hashed whole) and a one-byte one, made from the text */
    toks[0].end = toks[0].start + (uint32_t)(len < 300 ? len : 300);
    toks[1].end = toks[1].start + 1;
    float *w = malloc(sizeof(float) * n);
    uint64_t st = 77;
    for (uint32_t i = 0; i < n; i++) w[i] = 0.25f + (float)(folio_splitmix64(&st) % 1000) / 500.0f;
    const uint32_t dims[] = {1, 17, 63, 64, 65, 100, 128, 200, 256, 300};
    for (size_t k = 0; k < sizeof dims / sizeof dims[0]; k++) {
        const uint32_t d = dims[k];
        float *X = malloc(sizeof(float) * n * d), *R = malloc(sizeof(float) * n * d);
        cr_assert_eq(folio_embed(text, toks, k % 2 ? w : NULL, n, d, 1234 + k, X), FOLIO_OK);
        embed_reference(text, toks, k % 2 ? w : NULL, n, d, 1234 + k, R);
        for (size_t e = 0; e < (size_t)n * d; e++)
            cr_assert(memcmp(&X[e], &R[e], 4) == 0, "d=%u token %zu element %zu: %.9g, definition %.9g", d,
                      e / d, e % d, X[e], R[e]);
        free(X);
        free(R);
    }
    free(w);
    free(toks);
    free(text);
}

/* Fixed-point pooling against its definition, element by element with
 * llrint: values whose scaled form has a fraction (|x| < 2^-9), exact
 * halves (ties go to even), large and negative ones, widths with a scalar
 * tail, ranges clipped by [t0, t1), empty and outside ones. */
Test(attn_pool, fixed_equals_llrint_definition)
{
    uint64_t st = 4242;
    const uint32_t dims[] = {1, 7, 8, 9, 64, 100, 256};
    for (size_t k = 0; k < sizeof dims / sizeof dims[0]; k++) {
        const uint32_t d = dims[k];
        const uint64_t t0 = 1000, t1 = 1700, n = t1 - t0;
        float *X = malloc(sizeof(float) * n * d);
        for (size_t e = 0; e < n * d; e++) {
            const uint64_t r = folio_splitmix64(&st);
            switch (r % 6) {
            case 0: X[e] = ldexpf((float)(2 * (r >> 8 & 1023) + 1), -33) * ((r >> 20) & 1 ? -1.f : 1.f); break; /* x 2^32 = odd / 2 */
            case 1: X[e] = ldexpf((float)((r >> 8) & 0xffffff), -45); break;       /* fractions */
            case 2: X[e] = (float)((int64_t)(r >> 8 & 0xfffff) - 0x80000) / 4096.f; break;
            default: X[e] = ((float)(r >> 40) / 16777216.f - 0.5f) * 16.f; break;
            }
        }
        const uint32_t b[] = {0, 900, 1000, 1200, 1699, 1690, 1500, 2000};
        const uint32_t e2[] = {50, 1100, 1700, 1200, 2500, 1700, 1501, 2100};
        const uint64_t m = 8;
        int64_t *acc = calloc(m * d, sizeof *acc), *ref = calloc(m * d, sizeof *ref);
        for (uint64_t r = 0; r < m * d; r++) acc[r] = ref[r] = (int64_t)(folio_splitmix64(&st) >> 20); /* added to */
        folio_pool_fixed(X, t0, t1, d, b, e2, m, acc);
        for (uint64_t r = 0; r < m; r++)
            for (uint64_t t = b[r] > t0 ? b[r] : t0; t < (e2[r] < t1 ? e2[r] : t1); t++)
                for (uint32_t j = 0; j < d; j++) ref[r * d + j] += llrint((double)X[(t - t0) * d + j] * FOLIO_POOL_ONE);
        for (uint64_t r = 0; r < m * d; r++)
            cr_assert_eq(acc[r], ref[r], "d=%u range %llu column %llu: %lld, definition %lld", d,
                         (unsigned long long)(r / d), (unsigned long long)(r % d), (long long)acc[r], (long long)ref[r]);
        free(X);
        free(acc);
        free(ref);
    }
}

/* ------------------------------------------------------------------ encoder determinism */

static float *random_doc(uint32_t n, uint32_t d, uint64_t seed)
{
    float *X = malloc(sizeof(float) * n * d);
    fill_random(X, (size_t)n * d, seed, 1.0f);
    return X;
}

Test(attn_encoder, bit_identical_across_threads_and_runs, .timeout = 120)
{
    const char *spec = "hier+topk,window=40,block=16,group=4,topk=3,heads=2,head_dim=32,layers=3";
    folio_pattern_t p = pat(spec);
    uint32_t n = 2011, d = folio_pattern_dim(&p);
    float *X0 = random_doc(n, d, 99);
    folio_encoded_t ref;
    cr_assert_eq(folio_encoder_run(&p, NULL, X0, n, 1, &ref), FOLIO_OK);
    for (int t = 1; t <= 3; t++)
        for (int rep = 0; rep < 2; rep++) {
            folio_encoded_t e;
            cr_assert_eq(folio_encoder_run(&p, NULL, X0, n, t, &e), FOLIO_OK);
            cr_assert(memcmp(e.X, ref.X, sizeof(float) * n * d) == 0, "X differs with %d threads", t);
            cr_assert(memcmp(e.nodes, ref.nodes, sizeof(float) * ref.hier.n_nodes * d) == 0);
            cr_assert(memcmp(e.mass, ref.mass, sizeof(int64_t) * ref.hier.n_nodes) == 0, "mass differs");
            folio_encoded_clear(&e);
        }
    /* normalized: every head slice has L2 norm sqrt(d_h) */
    for (uint32_t i = 0; i < n; i += 97) {
        double s = 0;
        for (uint32_t c = 0; c < 32; c++) s += ref.X[(size_t)i * d + c] * ref.X[(size_t)i * d + c];
        cr_assert_float_eq(s, 32.0, 1e-3);
    }
    folio_encoded_clear(&ref);
    folio_encoded_clear(&ref); /* NULL-safe / idempotent */
    free(X0);
}

/* Emulates ranks: the document split at block boundaries into R ranges, each
 * range computing its own block summaries and layer with a W halo. */
static void run_split(const folio_pattern_t *p, const float *X0, uint32_t n, const uint32_t *cuts, int R, float **Xo,
                      int64_t **mass_o)
{
    folio_pattern_t r;
    cr_assert_eq(folio_pattern_resolve(p, n, &r), FOLIO_OK);
    folio_hier_t h;
    cr_assert_eq(folio_hier_init(&h, n, r.block, r.group), FOLIO_OK);
    uint32_t d = folio_pattern_dim(&r), B = r.block, H = r.heads, W = r.window;
    int s_max = (int)folio_pattern_summary_max(&r, n);
    float *X = malloc(sizeof(float) * n * d), *X2 = malloc(sizeof(float) * n * d);
    float *nodes = malloc(sizeof(float) * h.n_nodes * d);
    int64_t *mass = calloc(h.n_nodes, sizeof(int64_t));
    memcpy(X, X0, sizeof(float) * n * d);
    for (uint32_t layer = 0; layer < r.layers; layer++) {
        /* 1+2: each rank's block summaries, "allgathered" into nodes */
        for (int k = 0; k < R; k++) {
            uint32_t a = cuts[k], e = cuts[k + 1];
            /* a rank only sees its own rows: copy them out */
            float *mine = malloc(sizeof(float) * (e - a) * d);
            memcpy(mine, X + (size_t)a * d, sizeof(float) * (e - a) * d);
            cr_assert_eq(folio_attn_block_sums(mine, a, e, n, B, d, nodes + (size_t)(a / B) * d), FOLIO_OK);
            free(mine);
        }
        cr_assert_eq(folio_hier_build_upper(&h, d, nodes), FOLIO_OK);
        for (int k = 0; k < R; k++) {
            uint32_t a = cuts[k], e = cuts[k + 1], qb0 = a / B, qb1 = (e + B - 1) / B;
            int32_t *sel = malloc(sizeof(int32_t) * (qb1 - qb0) * H * (s_max + 1));
            int32_t *sel_n = calloc((size_t)(qb1 - qb0) * H, sizeof(int32_t));
            if (s_max > 0)
                cr_assert_eq(folio_attn_select(&r, &h, nodes, nodes, qb0, qb1, sel, sel_n, s_max, 2), FOLIO_OK);
            uint32_t x0 = a > W ? a - W : 0, x1 = e + W < n ? e + W : n;
            float *halo = malloc(sizeof(float) * (x1 - x0) * d);
            memcpy(halo, X + (size_t)x0 * d, sizeof(float) * (x1 - x0) * d);
            cr_assert_eq(folio_encoder_layer(&r, &h, NULL, halo, x0, x1 - x0, a, e, nodes, s_max ? sel : NULL,
                                             s_max ? sel_n : NULL, s_max, X2 + (size_t)a * d, mass, 1 + k % 2),
                         FOLIO_OK);
            free(halo);
            free(sel);
            free(sel_n);
        }
        float *t = X; X = X2; X2 = t;
    }
    free(X2);
    free(nodes);
    *Xo = X;
    *mass_o = mass;
}

Test(attn_encoder, split_ranges_bit_identical, .timeout = 120)
{
    const char *specs[] = {"hier+topk,window=40,block=16,group=4,topk=3,heads=2,head_dim=32,layers=2",
                           "longt5,window=20,block=32,heads=1,head_dim=48,layers=2",
                           "hier,window=70,block=8,group=3,heads=2,head_dim=16,layers=3"};
    for (int s = 0; s < 3; s++) {
        folio_pattern_t p = pat(specs[s]);
        uint32_t n = 1000 + 37 * s, d = folio_pattern_dim(&p), B = p.block;
        float *X0 = random_doc(n, d, 7 + s);
        folio_encoded_t ref;
        cr_assert_eq(folio_encoder_run(&p, NULL, X0, n, 2, &ref), FOLIO_OK);
        for (int R = 1; R <= 4; R++) {
            uint32_t cuts[5];
            uint32_t nb = (n + B - 1) / B;
            for (int k = 0; k <= R; k++) cuts[k] = k == R ? n : (uint32_t)((uint64_t)nb * k / R * B);
            float *X;
            int64_t *mass;
            run_split(&p, X0, n, cuts, R, &X, &mass);
            cr_assert(memcmp(X, ref.X, sizeof(float) * n * d) == 0, "%s: split into %d differs", specs[s], R);
            cr_assert(memcmp(mass, ref.mass, sizeof(int64_t) * ref.hier.n_nodes) == 0, "%s: mass differs (R=%d)",
                      specs[s], R);
            free(X);
            free(mass);
        }
        folio_encoded_clear(&ref);
        free(X0);
    }
}

Test(attn_outputs, pooling_and_salience)
{
    folio_pattern_t p = pat("hier+topk,window=8,block=8,group=4,topk=2,heads=2,head_dim=16,layers=2");
    uint32_t n = 700, d = folio_pattern_dim(&p);
    float *X0 = random_doc(n, d, 3);
    folio_encoded_t e;
    cr_assert_eq(folio_encoder_run(&p, NULL, X0, n, 2, &e), FOLIO_OK);
    uint32_t begin[4] = {0, 10, 300, 699}, end[4] = {10, 300, 699, 700};
    float pooled[4 * 32], sal[4];
    cr_assert_eq(folio_pool_ranges(e.X, n, d, begin, end, 4, pooled), FOLIO_OK);
    for (int r = 0; r < 4; r++) {
        double s = 0, ref[32] = {0};
        for (uint32_t i = begin[r]; i < end[r]; i++)
            for (uint32_t c = 0; c < d; c++) ref[c] += e.X[(size_t)i * d + c];
        double nn = 0;
        for (uint32_t c = 0; c < d; c++) nn += ref[c] * ref[c];
        for (uint32_t c = 0; c < d; c++) {
            s += pooled[r * d + c] * pooled[r * d + c];
            cr_assert_float_eq(pooled[r * d + c], ref[c] / sqrt(nn), 1e-5);
        }
        cr_assert_float_eq(s, 1.0, 1e-5);
    }
    cr_assert_eq(folio_salience_ranges(&e.hier, e.mass, begin, end, 4, sal), FOLIO_OK);
    /* token-weighted mean of sentence salience over a partition = 1 */
    double wsum = 0;
    for (int r = 0; r < 4; r++) {
        cr_assert_geq(sal[r], 0.0f);
        wsum += sal[r] * (end[r] - begin[r]);
    }
    cr_assert_float_eq(wsum / n, 1.0, 1e-4);
    uint32_t bad_b = 5, bad_e = 701;
    cr_assert_eq(folio_pool_ranges(e.X, n, d, &bad_b, &bad_e, 1, pooled), FOLIO_ERR_ARG);
    folio_encoded_clear(&e);
    free(X0);
}

Test(attn_quality, dense_pattern_is_exact_and_local_is_not)
{
    uint32_t n = 600, H = 2, dh = 16, d = H * dh;
    float *X = random_doc(n, d, 11);
    folio_rmsnorm_heads(X, n, H, dh);
    folio_pattern_quality_t qd, ql, qh;
    folio_pattern_t pd = pat("dense,heads=2,head_dim=16"), pl = pat("local,window=16,heads=2,head_dim=16"),
                    ph = pat("hier,window=16,block=16,group=4,heads=2,head_dim=16");
    cr_assert_eq(folio_pattern_quality(&pd, X, n, NULL, 2, &qd), FOLIO_OK);
    cr_assert_eq(folio_pattern_quality(&pl, X, n, NULL, 2, &ql), FOLIO_OK);
    cr_assert_eq(folio_pattern_quality(&ph, X, n, NULL, 2, &qh), FOLIO_OK);
    cr_assert_float_eq(qd.fidelity, 1.0, 1e-6);
    cr_assert_float_eq(qd.recall, 1.0, 1e-5);
    cr_assert_float_eq(qd.keys_mean, (double)n, 1e-9);
    cr_assert_lt(ql.recall, 0.5);
    cr_assert_float_eq(ql.keys_max, 33.0, 1e-9);
    cr_assert_float_eq(qh.recall, 1.0, 1e-5, "hier keys partition the document");
    cr_assert_lt(qh.recall_fine, 1.0);
    cr_assert_gt(qh.recall_fine, ql.recall);
    free(X);
}

/* recall and recall_fine against a brute-force double computation */
Test(attn_quality, recall_matches_brute_force)
{
    const char *spec = "hier+topk,window=20,block=16,group=4,topk=2,heads=2,head_dim=16,beta=4";
    folio_pattern_t p = pat(spec);
    uint32_t n = 500, H = 2, dh = 16, d = H * dh;
    float *X = random_doc(n, d, 21);
    folio_rmsnorm_heads(X, n, H, dh);
    plan_t P;
    plan_make(&P, &p, X, n);
    double rec = 0, rec_f = 0, *pr = malloc(sizeof(double) * n);
    float scale = folio_pattern_scale(&P.r);
    for (uint32_t h = 0; h < H; h++)
        for (uint32_t i = 0; i < n; i++) {
            uint32_t qb = i / 16;
            double mx = -INFINITY, tot = 0;
            for (uint32_t j = 0; j < n; j++) {
                double s = 0;
                for (uint32_t c = 0; c < dh; c++) s += (double)X[i * d + h * dh + c] * X[j * d + h * dh + c];
                pr[j] = s * scale;
                mx = fmax(mx, pr[j]);
            }
            for (uint32_t j = 0; j < n; j++) tot += (pr[j] = exp(pr[j] - mx));
            for (uint32_t j = 0; j < n; j++) {
                bool c = (i > j ? i - j : j - i) <= 20, cf = c;
                for (int s = 0; s < P.sel_n[qb * H + h]; s++) {
                    uint32_t lv, ix;
                    uint64_t t0, t1;
                    folio_hier_node_level(&P.h, (uint32_t)P.sel[(qb * H + h) * P.s_max + s], &lv, &ix);
                    folio_hier_node_tokens(&P.h, lv, ix, &t0, &t1);
                    if (j >= t0 && j < t1) {
                        c = true;
                        if (lv == 1) cf = true;
                    }
                }
                if (c) rec += pr[j] / tot;
                if (cf) rec_f += pr[j] / tot;
            }
        }
    rec /= n * H;
    rec_f /= n * H;
    folio_pattern_quality_t q;
    cr_assert_eq(folio_pattern_quality(&p, X, n, NULL, 2, &q), FOLIO_OK);
    cr_assert_float_eq(q.recall, rec, 1e-5, "%g vs %g", q.recall, rec);
    cr_assert_float_eq(q.recall_fine, rec_f, 1e-5, "%g vs %g", q.recall_fine, rec_f);
    cr_assert_lt(q.recall_fine, 0.999);
    cr_assert_gt(q.fidelity, 0.0);
    cr_assert_lt(q.fidelity, 1.0);
    free(pr);
    plan_free(&P);
    free(X);
}

/* identity projections must give exactly the weightless encoder; a real
 * projection must change the result and stay deterministic */
Test(attn_encoder, projections)
{
    folio_pattern_t p = pat("hier+topk,window=16,block=16,group=4,topk=2,heads=2,head_dim=16,layers=2");
    uint32_t n = 300, d = folio_pattern_dim(&p);
    float *X0 = random_doc(n, d, 5);
    float *I = calloc((size_t)d * d, sizeof(float)), *R = malloc(sizeof(float) * d * d);
    for (uint32_t i = 0; i < d; i++) I[i * d + i] = 1.0f;
    fill_random(R, (size_t)d * d, 8, 0.3f);
    folio_layer_weights_t wi[2] = {{I, I, I, I}, {I, I, I, I}}, wr[2] = {{R, R, NULL, R}, {NULL, R, R, NULL}};
    folio_encoded_t e0, e1, e2, e3;
    cr_assert_eq(folio_encoder_run(&p, NULL, X0, n, 2, &e0), FOLIO_OK);
    cr_assert_eq(folio_encoder_run(&p, wi, X0, n, 2, &e1), FOLIO_OK);
    cr_assert(memcmp(e0.X, e1.X, sizeof(float) * n * d) == 0, "identity projections change the result");
    cr_assert_eq(folio_encoder_run(&p, wr, X0, n, 1, &e2), FOLIO_OK);
    cr_assert_eq(folio_encoder_run(&p, wr, X0, n, 3, &e3), FOLIO_OK);
    cr_assert(memcmp(e0.X, e2.X, sizeof(float) * n * d) != 0);
    cr_assert(memcmp(e2.X, e3.X, sizeof(float) * n * d) == 0);
    folio_encoded_clear(&e0); folio_encoded_clear(&e1); folio_encoded_clear(&e2); folio_encoded_clear(&e3);
    free(I); free(R); free(X0);
}

/* routed keys are the k best blocks outside the own group (brute force in
 * double), in descending order; hierarchical keys are the siblings */
Test(attn_select, routing_is_top_k_outside_group)
{
    folio_pattern_t p = pat("hier+topk,window=8,block=8,group=5,topk=6,heads=3,head_dim=24");
    uint32_t n = 8 * 173 + 3, d = folio_pattern_dim(&p), H = 3, dh = 24;
    float *X = random_doc(n, d, 31);
    plan_t P;
    plan_make(&P, &p, X, n);
    uint32_t nb = P.h.count[1], G = 5;
    cr_assert_geq(P.h.n_levels, 3);
    for (uint32_t qb = 0; qb < nb; qb++)
        for (uint32_t h = 0; h < H; h++) {
            const int32_t *s = P.sel + (qb * H + h) * P.s_max;
            int ns = P.sel_n[qb * H + h], nh = 0;
            /* hierarchical part */
            for (uint32_t l = 1; l <= P.h.n_levels; l++) {
                uint32_t a = folio_hier_ancestor(&P.h, qb, l), s0, s1;
                folio_hier_siblings(&P.h, l, a, &s0, &s1);
                for (uint32_t x = s0; x < s1; x++)
                    if (x != a) cr_assert_eq(s[nh++], (int32_t)(P.h.offset[l] + x));
            }
            cr_assert_eq(ns - nh, 6);
            double sc[8 * 173 + 8];
            for (uint32_t b = 0; b < nb; b++) {
                double v = 0;
                for (uint32_t c = 0; c < dh; c++)
                    v += (double)P.nodes[(size_t)qb * d + h * dh + c] * P.nodes[(size_t)b * d + h * dh + c];
                sc[b] = v;
            }
            double worst_sel = INFINITY;
            for (int i = nh; i < ns; i++) {
                uint32_t b = (uint32_t)s[i];
                cr_assert(b < nb && b / G != qb / G, "routed block %u is in the own group of %u", b, qb);
                if (i > nh) cr_assert_geq(sc[s[i - 1]] + 1e-5, sc[b], "not descending");
                worst_sel = fmin(worst_sel, sc[b]);
            }
            for (uint32_t b = 0; b < nb; b++) {
                if (b / G == qb / G) continue;
                bool chosen = false;
                for (int i = nh; i < ns; i++) chosen |= (uint32_t)s[i] == b;
                if (!chosen) cr_assert_leq(sc[b], worst_sel + 1e-5, "block %u beats a routed block", b);
            }
        }
    plan_free(&P);
    free(X);
}

/* every variant (and budget mode) runs end to end on awkward sizes, with
 * finite, normalized outputs and salience that averages to 1 */
Test(attn_encoder, every_variant_end_to_end, .timeout = 120)
{
    const char *specs[] = {"local,window=8,block=16,group=4,heads=2,head_dim=16",
                           "longt5,window=8,block=16,group=4,heads=2,head_dim=16",
                           "hier,window=8,block=16,group=4,heads=2,head_dim=16",
                           "hier+topk,window=8,block=16,group=4,topk=2,heads=2,head_dim=16",
                           "dense,block=16,heads=2,head_dim=16",
                           "hier+topk,budget=64,block=8,heads=2,head_dim=16",
                           "local,budget=100,heads=2,head_dim=16",
                           "hier+topk,window=8,block=16,group=4,topk=2,heads=2,head_dim=16,sumbias=1"};
    const uint32_t ns[] = {1, 17, 65, 1000};
    for (size_t s = 0; s < sizeof specs / sizeof *specs; s++)
        for (size_t a = 0; a < sizeof ns / sizeof *ns; a++) {
            folio_pattern_t p = pat(specs[s]);
            uint32_t n = ns[a], d = folio_pattern_dim(&p);
            float *X0 = random_doc(n, d, 40 + s + a);
            folio_encoded_t e;
            cr_assert_eq(folio_encoder_run(&p, NULL, X0, n, 2, &e), FOLIO_OK, "%s n=%u", specs[s], n);
            cr_assert_leq(folio_pattern_keys_bound(&e.pattern, n), p.budget ? p.budget : UINT32_MAX);
            for (uint32_t i = 0; i < n; i++) {
                double s2 = 0;
                for (uint32_t c = 0; c < 16; c++) {
                    float x = e.X[(size_t)i * d + c];
                    cr_assert(isfinite(x));
                    s2 += (double)x * x;
                }
                cr_assert_float_eq(s2, 16.0, 1e-3, "%s n=%u row %u", specs[s], n, i);
            }
            uint32_t b0 = 0, e0 = n;
            float sal;
            cr_assert_eq(folio_salience_ranges(&e.hier, e.mass, &b0, &e0, 1, &sal), FOLIO_OK);
            cr_assert(sal == 0.0f || fabsf(sal - 1.0f) < 1e-4f, "%s n=%u: whole-document salience %g", specs[s], n, sal);
            folio_encoded_clear(&e);
            free(X0);
        }
}

/* folio_salience_ranges in threads with per-block ancestor lookups equals
 * the plain definition (per token, levels in order, one thread) bit for
 * bit, on a 3-level hierarchy with random mass and ~6000 ranges of random
 * length (enough to run in parallel); a wrong or skipped level, or a
 * skipped token, fails it (a changed order of the double sums rarely shows
 * after the cast to float). */
Test(attn_outputs, salience_equals_definition_bitwise)
{
    const uint32_t n = 400003, B = 64, G = 8;
    folio_hier_t h;
    cr_assert_eq(folio_hier_init(&h, n, B, G), FOLIO_OK);
    cr_assert_geq(h.n_levels, 3u);
    int64_t *mass = malloc(h.n_nodes * sizeof *mass);
    uint64_t z = 12345;
    for (uint32_t f = 0; f < h.n_nodes; f++) {
        z = z * 6364136223846793005ull + 1442695040888963407ull;
        mass[f] = (int64_t)(z >> 20) % 1000000007;
    }
    uint32_t cap = n, m = 0, *b = malloc(cap * sizeof *b), *e = malloc(cap * sizeof *e);
    for (uint32_t t = 0; t < n;) {
        z = z * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t len = (uint32_t)(z >> 33) % 150; /* empty ranges too */
        if (t + len > n) len = n - t;
        b[m] = t;
        e[m] = t + len;
        t += len ? len : 0;
        m++;
        if (len == 0 && m % 7 == 0) t++; /* a gap now and then */
    }
    float *out = malloc(m * sizeof *out), *ref = malloc(m * sizeof *ref);
    cr_assert_eq(folio_salience_ranges(&h, mass, b, e, m, out), FOLIO_OK);
    double total = 0;
    for (uint32_t f = 0; f < h.n_nodes; f++) total += (double)mass[f];
    const double doc_mean = total / (double)n;
    for (uint32_t r = 0; r < m; r++) {
        double s = 0;
        for (uint32_t i = b[r]; i < e[r]; i++)
            for (uint32_t l = 1; l <= h.n_levels; l++) {
                const uint32_t a = folio_hier_ancestor(&h, i / B, l);
                uint64_t t0, t1;
                folio_hier_node_tokens(&h, l, a, &t0, &t1);
                s += t1 > t0 ? (double)mass[h.offset[l] + a] / (double)(t1 - t0) : 0.0;
            }
        ref[r] = (e[r] > b[r] && doc_mean > 0) ? (float)(s / (e[r] - b[r]) / doc_mean) : 0.0f;
    }
    cr_assert_gt(m, 4000u);
    cr_assert_eq(memcmp(out, ref, m * sizeof *out), 0, "salience differs from the definition");
    free(mass); free(b); free(e); free(out); free(ref);
}
