/* attn/attn_cpu_simd.h — internal: 16-float vectors (GCC/Clang vector
 * extensions) shared by the CPU kernels.  Under -march=native these become
 * AVX-512 (or pairs of AVX2) registers; other targets get the same code
 * lowered to narrower vectors.  Not part of the public API. */
#ifndef FOLIO_ATTN_CPU_SIMD_H
#define FOLIO_ATTN_CPU_SIMD_H

#include <math.h>
#include <stdint.h>
#include <string.h>

typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));

static inline v16f v16_bcast(float x) { return (v16f){0} + x; }

/* lane select: m ? a : b (m from a vector comparison: all ones / zeros) */
static inline v16f v16_sel(v16i m, v16f a, v16f b) { return (v16f)(((v16i)a & m) | ((v16i)b & ~m)); }

static inline v16f v16_load(const float *p)
{
    v16f v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void v16_store(float *p, v16f v) { memcpy(p, &v, sizeof v); }

/* exp for x <= ~88 (Cephes-style polynomial, ~1 ulp); x below -87.3 gives
 * ~1e-38, which callers mask to 0 where it matters. */
static inline v16f v16_exp(v16f x)
{
    const v16f hi = v16_bcast(88.3762626647949f), lo = v16_bcast(-87.3365478515625f);
    x = v16_sel(x < lo, lo, x);
    x = v16_sel(x > hi, hi, x);
    const float magic = 12582912.0f; /* 1.5 * 2^23: rounds to integer */
    v16f t = x * 1.44269504088896341f + magic;
    v16f nf = t - magic;
    v16f r = x - nf * 0.693359375f;
    r = r - nf * -2.12194440e-4f;
    v16f y = v16_bcast(1.9875691500E-4f);
    y = y * r + 1.3981999507E-3f;
    y = y * r + 8.3334519073E-3f;
    y = y * r + 4.1665795894E-2f;
    y = y * r + 1.6666665459E-1f;
    y = y * r + 5.0000001201E-1f;
    y = y * (r * r) + r + 1.0f;
    v16i ni = (v16i)t - (v16i)v16_bcast(magic);
    v16i pw = (ni + 127) << 23;
    return y * (v16f)pw;
}

static inline float v16_hmax(v16f v)
{
    float m = v[0];
    for (int i = 1; i < 16; i++) m = v[i] > m ? v[i] : m;
    return m;
}
static inline float v16_hsum(v16f v)
{
    /* fixed pairwise order */
    float s8[8], s4[4];
    for (int i = 0; i < 8; i++) s8[i] = v[i] + v[i + 8];
    for (int i = 0; i < 4; i++) s4[i] = s8[i] + s8[i + 4];
    return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

#endif
