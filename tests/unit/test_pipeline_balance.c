/* tests/unit/test_pipeline_balance.c — a round's packing by the ranks'
 * measured rates: by tokens (classic largest-first packing) until every
 * rank was measured, then each rank's share of the tokens follows its rate
 * (a rank half as fast gets about half as much), with a floor so that a
 * slow rank still gets work; rates are smoothed over rounds; rank 0 can be
 * packed as if faster (rank0_bias). */
#include <criterion/criterion.h>

#include <stdlib.h>

#include "pipeline/pipeline_internal.h"

/* The packing before rates: largest first onto the least-loaded rank (by
 * tokens), ties to the lower rank. */
static void lpt_tokens(const uint32_t *ntok, int64_t n, int P, int *owner)
{
    uint64_t load[16] = {0};
    for (int64_t k = 0; k < n; k++) {
        int best = 0;
        for (int r = 1; r < P; r++) if (load[r] < load[best]) best = r;
        owner[k] = best;
        load[best] += ntok[k];
    }
}

static int cmp_desc(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* n document lengths, largest first, from a fixed seed: many short
 * documents and a few long ones, as in the corpora. */
static uint32_t *docs(int64_t n, unsigned seed)
{
    uint32_t *t = malloc((size_t)n * sizeof *t);
    srand(seed);
    for (int64_t k = 0; k < n; k++) t[k] = (uint32_t)(50 + rand() % 3000 + (rand() % 20 == 0 ? rand() % 12000 : 0));
    qsort(t, (size_t)n, sizeof *t, cmp_desc);
    return t;
}

static double share(const uint32_t *ntok, const int *owner, int64_t n, int r)
{
    double mine = 0, all = 0;
    for (int64_t k = 0; k < n; k++) {
        all += ntok[k];
        if (owner[k] == r) mine += ntok[k];
    }
    return mine / all;
}

Test(balance, unmeasured_is_token_packing)
{
    uint32_t small[] = {10, 9, 8, 7};
    int own[4];
    folio_balance_t b;
    cr_assert_eq(folio_balance_init(&b, 2), FOLIO_OK);
    folio_balance_pack(&b, small, 4, own);
    cr_expect(own[0] == 0 && own[1] == 1 && own[2] == 1 && own[3] == 0, "got %d %d %d %d", own[0], own[1], own[2],
              own[3]);
    for (int P = 1; P <= 5; P++) {
        folio_balance_t bp;
        cr_assert_eq(folio_balance_init(&bp, P), FOLIO_OK);
        /* one rank measured is not enough: still by tokens */
        folio_balance_observe(&bp, 0, 1000, 1.0);
        uint32_t *t = docs(700, 7u + (unsigned)P);
        int *a = malloc(700 * sizeof *a), *want = malloc(700 * sizeof *want);
        folio_balance_pack(&bp, t, 700, a);
        lpt_tokens(t, 700, P, want);
        for (int k = 0; k < 700; k++) cr_assert_eq(a[k], want[k], "P=%d doc %d", P, k);
        free(t);
        free(a);
        free(want);
        folio_balance_free(&bp);
    }
    folio_balance_free(&b);
}

Test(balance, equal_rates_pack_like_tokens)
{
    folio_balance_t b;
    cr_assert_eq(folio_balance_init(&b, 3), FOLIO_OK);
    for (int r = 0; r < 3; r++) folio_balance_observe(&b, r, 5000, 0.1);
    uint32_t *t = docs(512, 3);
    int a[512], want[512];
    folio_balance_pack(&b, t, 512, a);
    lpt_tokens(t, 512, 3, want);
    for (int k = 0; k < 512; k++) cr_assert_eq(a[k], want[k], "doc %d", k);
    free(t);
    folio_balance_free(&b);
}

Test(balance, share_follows_rate)
{
    folio_balance_t b;
    cr_assert_eq(folio_balance_init(&b, 2), FOLIO_OK);
    /* rank 0 computes half as fast as rank 1: a third of the tokens */
    folio_balance_observe(&b, 0, 10000, 2.0);
    folio_balance_observe(&b, 1, 10000, 1.0);
    uint32_t *t = docs(512, 11);
    int a[512];
    folio_balance_pack(&b, t, 512, a);
    double s0 = share(t, a, 512, 0);
    cr_expect(s0 > 1.0 / 3 - 0.01 && s0 < 1.0 / 3 + 0.01, "rank 0's share %.4f, want 1/3", s0);
    /* and the finish times agree within one document's worth */
    double t0 = 0, t1 = 0;
    for (int k = 0; k < 512; k++) *(a[k] == 0 ? &t0 : &t1) += t[k] / (a[k] == 0 ? 5000.0 : 10000.0);
    cr_expect(t0 - t1 < 3000 / 5000.0 && t1 - t0 < 3000 / 10000.0, "finish %.3f vs %.3f s", t0, t1);
    /* a slightly slower rank 0 (5 %): a little less than half */
    folio_balance_t c;
    cr_assert_eq(folio_balance_init(&c, 2), FOLIO_OK);
    folio_balance_observe(&c, 0, 9500, 1.0);
    folio_balance_observe(&c, 1, 10000, 1.0);
    folio_balance_pack(&c, t, 512, a);
    s0 = share(t, a, 512, 0);
    cr_expect(s0 > 0.4872 - 0.005 && s0 < 0.4872 + 0.005, "rank 0's share %.4f, want 0.4872", s0);
    free(t);
    folio_balance_free(&b);
    folio_balance_free(&c);
}

Test(balance, slow_rank_keeps_a_floor)
{
    folio_balance_t b;
    cr_assert_eq(folio_balance_init(&b, 2), FOLIO_OK);
    folio_balance_observe(&b, 0, 10000, 1.0);
    folio_balance_observe(&b, 1, 10, 1.0); /* 1000x slower */
    uint32_t *t = docs(512, 5);
    int a[512];
    folio_balance_pack(&b, t, 512, a);
    double s1 = share(t, a, 512, 1), want = FOLIO_BALANCE_MIN_SHARE / (1 + FOLIO_BALANCE_MIN_SHARE);
    cr_expect(s1 > want - 0.01 && s1 < want + 0.01, "slow rank's share %.4f, want %.4f", s1, want);
    free(t);
    folio_balance_free(&b);
}

Test(balance, observe_smooths_and_ignores_nothing)
{
    folio_balance_t b;
    cr_assert_eq(folio_balance_init(&b, 2), FOLIO_OK);
    folio_balance_observe(&b, 0, 100, 1.0);
    cr_expect_float_eq(b.rate[0], 100.0, 1e-9);
    folio_balance_observe(&b, 0, 300, 1.0);
    cr_expect_float_eq(b.rate[0], (1 - FOLIO_BALANCE_NEW) * 100 + FOLIO_BALANCE_NEW * 300, 1e-9);
    double before = b.rate[0];
    folio_balance_observe(&b, 0, 0, 1.0);   /* no documents this round */
    folio_balance_observe(&b, 0, 100, 0.0); /* no time measured */
    folio_balance_observe(&b, 2, 100, 1.0); /* no such rank */
    folio_balance_observe(&b, -1, 100, 1.0);
    cr_expect_float_eq(b.rate[0], before, 1e-12);
    cr_expect_float_eq(b.rate[1], 0.0, 1e-12);
    folio_balance_free(&b);
    folio_balance_free(&b); /* twice is fine */
    folio_balance_free(NULL);
}

Test(balance, every_document_gets_a_rank)
{
    for (int P = 1; P <= 8; P++) {
        folio_balance_t b;
        cr_assert_eq(folio_balance_init(&b, P), FOLIO_OK);
        for (int r = 0; r < P; r++) folio_balance_observe(&b, r, 1000u * (unsigned)(r + 1), 1.0);
        uint32_t *t = docs(37, 9);
        int a[37], again[37];
        folio_balance_pack(&b, t, 37, a);
        folio_balance_pack(&b, t, 37, again);
        for (int k = 0; k < 37; k++) {
            cr_assert(a[k] >= 0 && a[k] < P, "P=%d doc %d rank %d", P, k, a[k]);
            cr_assert_eq(a[k], again[k]);
        }
        /* the fastest rank gets the most */
        if (P > 1) cr_expect(share(t, a, 37, P - 1) >= share(t, a, 37, 0), "P=%d", P);
        free(t);
        folio_balance_free(&b);
    }
}

Test(balance, rank0_bias)
{
    folio_balance_t b;
    cr_assert_eq(folio_balance_init(&b, 2), FOLIO_OK);
    cr_expect_float_eq(b.rank0_bias, 1.0, 1e-12);
    uint32_t *t = docs(512, 13);
    int a[512];
    /* unmeasured: by tokens, with rank 0 counted twice as fast */
    b.rank0_bias = 2.0;
    folio_balance_pack(&b, t, 512, a);
    double s0 = share(t, a, 512, 0);
    cr_expect(s0 > 2.0 / 3 - 0.01 && s0 < 2.0 / 3 + 0.01, "rank 0's share %.4f, want 2/3", s0);
    /* measured: rank 0 half as fast, bias 1.1 -> 0.55 : 1 */
    folio_balance_observe(&b, 0, 5000, 1.0);
    folio_balance_observe(&b, 1, 10000, 1.0);
    b.rank0_bias = 1.1;
    folio_balance_pack(&b, t, 512, a);
    s0 = share(t, a, 512, 0);
    cr_expect(s0 > 0.55 / 1.55 - 0.01 && s0 < 0.55 / 1.55 + 0.01, "rank 0's share %.4f, want %.4f", s0, 0.55 / 1.55);
    free(t);
    folio_balance_free(&b);
}
