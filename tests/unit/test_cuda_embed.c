/* tests/unit/test_cuda_embed.c — the device embedding, pooling and salience
 * mass against their CPU twins (folio_embed, folio_pool_ranges,
 * folio_mass_accumulate): same features and order of sums, so the results
 * must agree to the last few bits (embedding, pooling) or exactly (integer
 * mass).  Awkward inputs: d not a multiple of 64, tokens longer than the
 * 64-byte form, upper case and non-ASCII bytes, empty ranges.  Skips cleanly
 * without a device. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn/attn.h"
#include "attn/attn_cuda.h"
#include "common/common.h"
#include "shard/shard.h"

#define SKIP_WITHOUT_GPU()                                                            \
    do {                                                                              \
        if (!folio_cuda_available()) cr_skip_test("no CUDA device (or built without CUDA)"); \
    } while (0)

static void *dev_copy(const void *src, size_t bytes)
{
    void *d = NULL;
    cr_assert_eq(folio_cuda_malloc(&d, bytes), FOLIO_OK);
    if (src) cr_assert_eq(folio_cuda_upload(d, src, bytes), FOLIO_OK);
    return d;
}

static void check_embed(const char *text, size_t len, uint32_t d, int with_weights)
{
    folio_span_t *toks = NULL;
    uint32_t n = 0;
    cr_assert_eq(folio_tokenize(text, len, &toks, &n), FOLIO_OK);
    cr_assert_gt(n, 0u);
    float *w = NULL;
    if (with_weights) {
        w = malloc((size_t)n * 4);
        for (uint32_t i = 0; i < n; i++) w[i] = 0.25f + (float)(i % 7) * 0.3f;
    }
    float *xc = malloc((size_t)n * d * 4), *xg = malloc((size_t)n * d * 4);
    cr_assert_eq(folio_embed(text, toks, w, n, d, 1234, xc), FOLIO_OK);
    void *dt = dev_copy(text, len + 1), *ds = dev_copy(toks, (size_t)n * sizeof *toks);
    void *dw = w ? dev_copy(w, (size_t)n * 4) : NULL, *dx = dev_copy(NULL, (size_t)n * d * 4);
    cr_assert_eq(folio_cuda_embed(dt, len, 0, ds, dw, n, d, 1234, dx, NULL), FOLIO_OK);
    cr_assert_eq(folio_cuda_sync(), FOLIO_OK);
    cr_assert_eq(folio_cuda_download(xg, dx, (size_t)n * d * 4), FOLIO_OK);
    size_t same = 0;
    for (uint32_t i = 0; i < n; i++) {
        double num = 0, den = 0;
        for (uint32_t c = 0; c < d; c++) {
            const float a = xg[(size_t)i * d + c], b = xc[(size_t)i * d + c];
            same += a == b;
            num += (double)(a - b) * (a - b);
            den += (double)b * b;
        }
        cr_assert(num <= 1e-10 * (den + 1e-30), "token %u (bytes %u..%u): device embedding differs (rel %.3g)", i,
                  toks[i].start, toks[i].end, sqrt(num / (den + 1e-30)));
    }
    cr_log_info("embed d=%u n=%u: %zu of %zu values bit-identical", d, n, same, (size_t)n * d);
    /* A slice, as a rank of a split document holds it: the text from token
     * k0's first byte on, the spans of tokens [k0, n) unchanged (document
     * offsets), the rows equal to the whole document's device rows k0.. */
    if (n >= 2) {
        const uint32_t k0 = n / 2, ns = n - k0;
        const uint64_t base = toks[k0].start;
        void *st2 = dev_copy(text + base, len - base + 1), *ss2 = dev_copy(toks + k0, (size_t)ns * sizeof *toks);
        void *sw2 = w ? dev_copy(w + k0, (size_t)ns * 4) : NULL, *sx2 = dev_copy(NULL, (size_t)ns * d * 4);
        cr_assert_eq(folio_cuda_embed(st2, len - base, base, ss2, sw2, ns, d, 1234, sx2, NULL), FOLIO_OK);
        cr_assert_eq(folio_cuda_sync(), FOLIO_OK);
        float *xs = malloc((size_t)ns * d * 4);
        cr_assert_eq(folio_cuda_download(xs, sx2, (size_t)ns * d * 4), FOLIO_OK);
        for (size_t v = 0; v < (size_t)ns * d; v++) /* the same kernel on the same tokens: bit for bit */
            cr_assert(xs[v] == xg[(size_t)k0 * d + v], "slice from byte %llu: value %zu differs: %.9g vs %.9g",
                      (unsigned long long)base, v, (double)xs[v], (double)xg[(size_t)k0 * d + v]);
        free(xs);
        folio_cuda_free(&st2);
        folio_cuda_free(&ss2);
        folio_cuda_free(&sw2);
        folio_cuda_free(&sx2);
    }
    folio_cuda_free(&dt);
    folio_cuda_free(&ds);
    folio_cuda_free(&dw);
    folio_cuda_free(&dx);
    free(toks); free(w); free(xc); free(xg);
}

Test(cuda_embed, awkward_tokens)
{
    SKIP_WITHOUT_GPU();
    char text[1024];
    snprintf(text, sizeof text,
             "Hello WORLD, the U.S.C. section 42 and don't stop: \xc3\xbcmlaut caf\xc3\xa9 "
             "Supercalifragilisticexpialidociousandthensomemorelettersuntilitislongerthansixtyfourbytes "
             "a an ab ABC 3.5 e-mail x%s", "");
    check_embed(text, strlen(text), 256, 0);
    check_embed(text, strlen(text), 100, 1); /* d not a multiple of 64 */
    check_embed(text, strlen(text), 1, 0);
}

Test(cuda_embed, real_document)
{
    SKIP_WITHOUT_GPU();
    char path[512];
    snprintf(path, sizeof path, "%s/sciqa-dev.jsonl", FOLIO_DATA_DIR);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t got = getline(&line, &cap, f);
    fclose(f);
    cr_assert_gt(got, 0);
    folio_json_t *j = NULL;
    char err[128];
    cr_assert_eq(folio_json_parse(line, (size_t)got, &j, err, sizeof err), FOLIO_OK, "%s", err);
    size_t len = 0;
    const char *t = folio_json_get_str(j, "text", &len);
    cr_assert_not_null(t);
    check_embed(t, len, 256, 1);
    folio_json_free(&j);
    free(line);
}

Test(cuda_embed, pool_ranges)
{
    SKIP_WITHOUT_GPU();
    uint64_t st = 5;
    const uint32_t n = 777, d = 200, m = 9;
    float *X = malloc((size_t)n * d * 4);
    for (size_t i = 0; i < (size_t)n * d; i++) X[i] = (float)(folio_splitmix64(&st) >> 40) / 16777216.0f - 0.5f;
    uint32_t b[9] = {0, 5, 5, 100, 300, 776, 0, 64, 700}, e[9] = {1, 5, 90, 101, 700, 777, 777, 128, 777};
    float *oc = malloc((size_t)m * d * 4), *og = malloc((size_t)m * d * 4);
    cr_assert_eq(folio_pool_ranges(X, n, d, b, e, m, oc), FOLIO_OK);
    void *dX = dev_copy(X, (size_t)n * d * 4), *db = dev_copy(b, sizeof b), *de = dev_copy(e, sizeof e);
    void *dout = dev_copy(NULL, (size_t)m * d * 4);
    cr_assert_eq(folio_cuda_pool_ranges(dX, n, d, db, de, m, dout, NULL), FOLIO_OK);
    cr_assert_eq(folio_cuda_download(og, dout, (size_t)m * d * 4), FOLIO_OK);
    for (size_t i = 0; i < (size_t)m * d; i++)
        cr_assert(fabsf(og[i] - oc[i]) <= 1e-7f, "pooled value %zu: %.9g vs %.9g", i, (double)og[i], (double)oc[i]);
    folio_cuda_free(&dX);
    folio_cuda_free(&db);
    folio_cuda_free(&de);
    folio_cuda_free(&dout);
    free(X); free(oc); free(og);
}

Test(cuda_embed, mass_accumulate_exact)
{
    SKIP_WITHOUT_GPU();
    uint64_t st = 77;
    const uint32_t nqb = 37, n_nodes = 50;
    const int H = 3, s_max = 11;
    int32_t *sel = malloc((size_t)nqb * H * s_max * 4), *sel_n = malloc((size_t)nqb * H * 4);
    float *nm = malloc((size_t)nqb * H * s_max * 4);
    for (uint32_t r = 0; r < nqb * (uint32_t)H; r++) {
        sel_n[r] = (int)(folio_splitmix64(&st) % (s_max + 1));
        for (int e = 0; e < s_max; e++) {
            sel[r * s_max + e] = e < sel_n[r] ? (int32_t)(folio_splitmix64(&st) % n_nodes) : -1;
            nm[r * s_max + e] = e < sel_n[r] ? (float)(folio_splitmix64(&st) >> 40) / 1677721.6f : NAN;
        }
    }
    int64_t *mc = calloc(n_nodes, 8), *mg = calloc(n_nodes, 8);
    folio_mass_accumulate(sel, sel_n, nm, nqb, H, s_max, mc);
    void *ds = dev_copy(sel, (size_t)nqb * H * s_max * 4), *dn = dev_copy(sel_n, (size_t)nqb * H * 4);
    void *dm = dev_copy(nm, (size_t)nqb * H * s_max * 4), *dmass = dev_copy(mg, (size_t)n_nodes * 8);
    cr_assert_eq(folio_cuda_mass_accumulate(ds, dn, dm, nqb, H, s_max, dmass, NULL), FOLIO_OK);
    cr_assert_eq(folio_cuda_download(mg, dmass, (size_t)n_nodes * 8), FOLIO_OK);
    for (uint32_t i = 0; i < n_nodes; i++)
        cr_assert_eq(mg[i], mc[i], "node %u: mass %lld on the device, %lld on the CPU", i, (long long)mg[i],
                     (long long)mc[i]);
    folio_cuda_free(&ds);
    folio_cuda_free(&dn);
    folio_cuda_free(&dm);
    folio_cuda_free(&dmass);
    free(sel); free(sel_n); free(nm); free(mc); free(mg);
}

/* Fixed-point pooled sums: the device's integer sums must equal the CPU's
 * exactly, for ranges that are empty, cut into several device items (longer
 * than 1024 tokens), partly or wholly outside the rank's rows [t0, t1), and
 * for d not a multiple of the CTA width. */
static void check_pool_fixed(uint32_t d, uint64_t t0, uint64_t t1, uint32_t seed)
{
    const uint64_t rows = t1 - t0;
    float *X = malloc(rows * d * sizeof *X);
    uint64_t s = seed;
    for (uint64_t i = 0; i < rows * d; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        X[i] = (float)((double)(s >> 11) / 9007199254740992.0 * 16.0 - 8.0);
    }
    enum { M = 9 };
    const uint32_t b[M] = {0, (uint32_t)t0, (uint32_t)t0 + 3, (uint32_t)t0 + 5, (uint32_t)t0 + 7,
                           (uint32_t)(t0 > 100 ? t0 - 100 : 0), (uint32_t)t1 - 1, (uint32_t)t1 + 5, (uint32_t)t0};
    const uint32_t e[M] = {0, (uint32_t)t1, (uint32_t)t0 + 3, (uint32_t)t0 + 6, (uint32_t)t0 + 2500,
                           (uint32_t)t0 + 40, (uint32_t)t1 + 300, (uint32_t)t1 + 9, (uint32_t)t0 + 1025};
    uint32_t ub[M], ue[M], items[3 * 64];
    uint32_t ni = 0;
    for (int r = 0; r < M; r++) {
        ub[r] = b[r];
        ue[r] = e[r] < b[r] ? b[r] : e[r];
        uint64_t lo = ub[r] > t0 ? ub[r] : t0, hi = ue[r] < t1 ? ue[r] : t1;
        for (uint64_t c = lo; c < hi; c += 1024) {
            items[3 * ni] = (uint32_t)r;
            items[3 * ni + 1] = (uint32_t)(c - t0);
            items[3 * ni + 2] = (uint32_t)((c + 1024 < hi ? c + 1024 : hi) - t0);
            ni++;
        }
    }
    int64_t *ref = calloc((size_t)M * d, sizeof *ref), *got = calloc((size_t)M * d, sizeof *got);
    folio_pool_fixed(X, t0, t1, d, ub, ue, M, ref);
    void *dx = dev_copy(X, rows * d * sizeof *X), *di = dev_copy(items, (size_t)3 * (ni ? ni : 1) * 4);
    void *da = dev_copy(got, (size_t)M * d * sizeof *got); /* zeros */
    cr_assert_eq(folio_cuda_pool_fixed(dx, d, di, ni, da, NULL), FOLIO_OK);
    cr_assert_eq(folio_cuda_sync(), FOLIO_OK);
    cr_assert_eq(folio_cuda_download(got, da, (size_t)M * d * sizeof *got), FOLIO_OK);
    for (int r = 0; r < M; r++)
        for (uint32_t c = 0; c < d; c++)
            cr_assert_eq(got[(size_t)r * d + c], ref[(size_t)r * d + c],
                         "d=%u range %d [%u,%u) column %u: device %lld != cpu %lld", d, r, ub[r], ue[r], c,
                         (long long)got[(size_t)r * d + c], (long long)ref[(size_t)r * d + c]);
    /* the sums are not trivially zero */
    int nonzero = 0;
    for (size_t i = 0; i < (size_t)M * d; i++) nonzero |= ref[i] != 0;
    cr_assert(nonzero);
    /* finishing them (mean, then L2 normalization) on the device: identical */
    float *fr = malloc((size_t)M * d * sizeof *fr), *fg = malloc((size_t)M * d * sizeof *fg);
    folio_pool_finish(ref, ub, ue, M, d, fr);
    void *db = dev_copy(ub, sizeof ub), *de = dev_copy(ue, sizeof ue), *df = dev_copy(NULL, (size_t)M * d * 4);
    cr_assert_eq(folio_cuda_pool_finish(da, db, de, M, d, df, NULL), FOLIO_OK);
    cr_assert_eq(folio_cuda_sync(), FOLIO_OK);
    cr_assert_eq(folio_cuda_download(fg, df, (size_t)M * d * 4), FOLIO_OK);
    for (int r = 0; r < M; r++)
        for (uint32_t c = 0; c < d; c++)
            cr_assert(fg[(size_t)r * d + c] == fr[(size_t)r * d + c],
                      "finish d=%u range %d column %u: device %.9g != cpu %.9g", d, r, c,
                      (double)fg[(size_t)r * d + c], (double)fr[(size_t)r * d + c]);
    folio_cuda_free(&db);
    folio_cuda_free(&de);
    folio_cuda_free(&df);
    free(fr);
    free(fg);
    folio_cuda_free(&dx);
    folio_cuda_free(&di);
    folio_cuda_free(&da);
    free(X);
    free(ref);
    free(got);
}

Test(cuda_embed, pool_fixed_exact)
{
    SKIP_WITHOUT_GPU();
    check_pool_fixed(256, 0, 3000, 1);
    check_pool_fixed(100, 4096, 7001, 2);
    check_pool_fixed(1, 130, 2200, 3);
    check_pool_fixed(300, 2048, 5120, 4);
}
