/* tests/unit/test_common_memory.c — folio_memcpy_par copies exactly what
 * memcpy copies: every size class (empty, below the parallel threshold,
 * around it, pieces that do not divide the size), every thread count, an
 * unaligned source and destination, and inside a parallel region (where it
 * must not nest), with the bytes around the destination left alone. */
#include <criterion/criterion.h>

#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

static void fill(unsigned char *p, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(folio_splitmix64(&seed) >> 56);
}

static void check_copy(size_t n, int threads, size_t src_off, size_t dst_off)
{
    const size_t guard = 64;
    unsigned char *src = malloc(n + src_off + 1), *dst = malloc(n + dst_off + 2 * guard);
    cr_assert(src && dst);
    fill(src, n + src_off + 1, 0x1234 + n);
    memset(dst, 0xA5, n + dst_off + 2 * guard);
    unsigned char *d = dst + guard + dst_off;
    folio_memcpy_par(d, src + src_off, n, threads);
    cr_assert(memcmp(d, src + src_off, n) == 0, "n=%zu threads=%d: bytes differ", n, threads);
    for (size_t i = 0; i < guard + dst_off; i++) cr_assert_eq(dst[i], 0xA5, "n=%zu: wrote before the destination", n);
    for (size_t i = 0; i < guard; i++) cr_assert_eq(d[n + i], 0xA5, "n=%zu: wrote past the destination", n);
    free(src);
    free(dst);
}

Test(memcpy_par, equals_memcpy_on_awkward_sizes)
{
    const size_t MB = (size_t)1 << 20;
    const size_t sizes[] = {0, 1, 7, 4096, 4 * MB - 1, 4 * MB, 4 * MB + 1, 5 * MB + 333, 13 * MB + 7};
    const int threads[] = {1, 2, 3, 8};
    for (size_t a = 0; a < sizeof sizes / sizeof *sizes; a++)
        for (size_t b = 0; b < sizeof threads / sizeof *threads; b++) check_copy(sizes[a], threads[b], 0, 0);
    check_copy(9 * MB + 5, 4, 3, 1); /* unaligned both ends */
}

Test(memcpy_par, inside_a_parallel_region)
{
    const size_t n = 6 * ((size_t)1 << 20) + 17;
    int bad = 0;
#pragma omp parallel num_threads(2) reduction(+ : bad)
    {
        unsigned char *src = malloc(n), *dst = calloc(n, 1);
        if (src && dst) {
            fill(src, n, 99 + (uint64_t)omp_get_thread_num());
            folio_memcpy_par(dst, src, n, 4);
            bad += memcmp(dst, src, n) != 0;
        } else {
            bad++;
        }
        free(src);
        free(dst);
    }
    cr_assert_eq(bad, 0);
}

Test(prefault, touches_only_large_regions_and_joins)
{
    const size_t big = 9 * ((size_t)1 << 20) + 123, small = 64 * 1024;
    unsigned char *a = malloc(big), *b = malloc(small);
    cr_assert(a && b);
    memset(a, 0x5A, big);
    memset(b, 0x5A, small);
    void *reg[3] = {a, b, NULL};
    size_t bytes[3] = {big, small, big};
    folio_prefault_t *pf = NULL;
    folio_prefault_start(reg, bytes, 3, &pf);
    cr_assert_not_null(pf, "a 9 MB region gets a thread");
    folio_prefault_join(&pf);
    cr_assert_null(pf);
    folio_prefault_join(&pf); /* joining nothing is a no-op */
    /* one zero byte a page of the large region, nothing else touched */
    for (size_t o = 0; o < big; o++)
        cr_assert_eq(a[o], o % 4096 == 0 ? 0 : 0x5A, "byte %zu", o);
    for (size_t o = 0; o < small; o++) cr_assert_eq(b[o], 0x5A, "small region written at %zu", o);
    /* only small regions: no thread */
    void *r1[1] = {b};
    size_t n1[1] = {small};
    folio_prefault_start(r1, n1, 1, &pf);
    cr_assert_null(pf);
    free(a);
    free(b);
}
