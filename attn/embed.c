/* attn/embed.c — hashed-feature ("random indexing") token embedding.
 *
 * Each feature (the token's lowercased form, and its byte 3-, 4- and 5-grams
 * of "<form>" with boundary marks) is hashed with folio_hash64 under the seed;
 * the hash seeds a splitmix64 stream whose bits give the signs of a +-1/sqrt(d)
 * vector.  The token vector is the weighted sum (form 1, every n-gram
 * 1/sqrt(#grams)), scaled to L2 norm sqrt(d) * weight.  No state but the seed. */
#include "attn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#define FORM_MAX 64 /* bytes of a token used for features (longer tokens are hashed whole) */

static inline void add_feature(float *acc, uint32_t d, uint64_t hash, float w)
{
    uint64_t state = hash;
    uint32_t c0 = 0;
#if defined(__AVX512F__)
    /* A set bit j subtracts w from element c0 + j, a clear one adds it: the
     * value acc + (1 - 2 bit) w of the loop below, bit for bit (s w is exactly
     * +-w), 16 elements an instruction instead of one (the scalar loop was
     * ~13% of a CPU ingest's compute). */
    const __m512 vw = _mm512_set1_ps(w);
    for (; c0 + 64 <= d; c0 += 64) {
        const uint64_t bits = folio_splitmix64(&state);
        for (int q = 0; q < 4; q++) {
            float *p = acc + c0 + 16 * q;
            const __m512 a = _mm512_loadu_ps(p);
            _mm512_storeu_ps(p, _mm512_mask_sub_ps(_mm512_add_ps(a, vw), (__mmask16)(bits >> (16 * q)), a, vw));
        }
    }
#endif
    for (; c0 < d; c0 += 64) {
        uint64_t bits = folio_splitmix64(&state);
        uint32_t m = d - c0 < 64 ? d - c0 : 64;
        for (uint32_t j = 0; j < m; j++) {
            /* sign from bit j: +w or -w, branch-free */
            float s = 1.0f - 2.0f * (float)((bits >> j) & 1u);
            acc[c0 + j] += s * w;
        }
    }
}

folio_status_t folio_embed(const char *text, const folio_span_t *spans, const float *weights, uint32_t n,
                           uint32_t d, uint64_t seed, float *X)
{
    FOLIO_CHECK_GENERIC(d >= 1 && (n == 0 || (text && spans && X)), FOLIO_ERR_ARG, "embed: bad arguments");
    const float unit = 1.0f / sqrtf((float)d);
    const uint64_t gram_seed = seed ^ 0x5bd1e9955bd1e995ull;
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        float *acc = malloc(sizeof(float) * d);
        if (!acc) failed = 1;
#pragma omp for schedule(static, 256)
        for (int64_t i = 0; i < (int64_t)n; i++) {
            if (!acc) continue;
            const folio_span_t t = spans[i];
            uint32_t len = t.end > t.start ? t.end - t.start : 0;
            char form[FORM_MAX + 2];
            form[0] = '<';
            uint32_t fl = len < FORM_MAX ? len : FORM_MAX;
            for (uint32_t j = 0; j < fl; j++) {
                char c = text[t.start + j];
                form[1 + j] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
            }
            form[1 + fl] = '>';
            for (uint32_t c = 0; c < d; c++) acc[c] = 0;
            /* the whole form: for tokens longer than FORM_MAX hash the full lowercased token */
            uint64_t hw;
            if (len <= FORM_MAX) {
                hw = folio_hash64(form + 1, fl, seed);
            } else {
                char *big = malloc(len);
                if (!big) { failed = 1; continue; }
                for (uint32_t j = 0; j < len; j++) {
                    char c = text[t.start + j];
                    big[j] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
                }
                hw = folio_hash64(big, len, seed);
                free(big);
            }
            add_feature(acc, d, hw, unit);
            uint32_t L = fl + 2, ngr = 0;
            for (uint32_t g = 3; g <= 5; g++) ngr += L >= g ? L - g + 1 : 0;
            if (ngr) {
                float gw = unit / sqrtf((float)ngr);
                for (uint32_t g = 3; g <= 5; g++)
                    for (uint32_t s = 0; s + g <= L; s++)
                        add_feature(acc, d, folio_hash64(form + s, g, gram_seed + g), gw);
            }
            double nn = 0;
            for (uint32_t c = 0; c < d; c++) nn += (double)acc[c] * acc[c];
            float wgt = weights ? weights[i] : 1.0f;
            float f = nn > 0 ? (float)(sqrt((double)d) / sqrt(nn)) * wgt : 0.0f;
            float *x = X + (size_t)i * d;
            for (uint32_t c = 0; c < d; c++) x[c] = acc[c] * f;
        }
        free(acc);
    }
    FOLIO_CHECK_GENERIC(!failed, FOLIO_ERR_NOMEM, "embed: out of memory");
    return FOLIO_OK;
}
