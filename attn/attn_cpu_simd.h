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

static inline v16f v16_bcast(float x) { return (v16f){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}; }

/* lane select: m ? a : b (m from a vector comparison: all ones / zeros) */
static inline v16f v16_sel(v16i m, v16f a, v16f b) { return (v16f)(((v16i)a & m) | ((v16i)b & ~m)); }

/* Pins a vector in a register (an empty asm), so the compiler loads it once
 * instead of folding a fresh memory operand into every FMA that uses it. */
#if defined(__AVX512F__)
#define V16_IN_REG(v) __asm__("" : "+v"(v))
#else
#define V16_IN_REG(v) ((void)0)
#endif

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

static inline v16f v16_max(v16f a, v16f b) { return v16_sel(a > b, a, b); }

/* horizontal max / sum by halving shuffles (fixed order: deterministic) */
static inline float v16_hmax(v16f v)
{
    v = v16_max(v, __builtin_shuffle(v, (v16i){8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7}));
    v = v16_max(v, __builtin_shuffle(v, (v16i){4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11}));
    v = v16_max(v, __builtin_shuffle(v, (v16i){2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13}));
    v = v16_max(v, __builtin_shuffle(v, (v16i){1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14}));
    return v[0];
}
static inline float v16_hsum(v16f v)
{
    v = v + __builtin_shuffle(v, (v16i){8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7});
    v = v + __builtin_shuffle(v, (v16i){4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11});
    v = v + __builtin_shuffle(v, (v16i){2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13});
    v = v + __builtin_shuffle(v, (v16i){1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14});
    return v[0];
}

/* Up to 8 head slices x[r] (d_h each, r < m) scaled to L2 norm target
 * (= sqrt(d_h)), unless zero: the step of folio_rmsnorm_heads, shared with
 * the kernel's fused epilogue.  Each lane of a vector of 8 doubles sums one
 * row's squares in order c = 0 .. d_h-1 (a float's square is exact in
 * double, so every step rounds once, fused or not): the plain sequential
 * sum, bit for bit, without its 4-cycle-per-element dependency chain. */
typedef double v8d __attribute__((vector_size(64)));
static inline void attn_rms_rows8(float *const x[8], int m, uint32_t d_h, double target)
{
    const float *r[8];
    for (int i = 0; i < 8; i++) r[i] = x[i < m ? i : 0]; /* m >= 1: spare lanes repeat row 0 */
    v8d s = {0, 0, 0, 0, 0, 0, 0, 0};
    for (uint32_t c = 0; c < d_h; c++) {
        const v8d v = {r[0][c], r[1][c], r[2][c], r[3][c], r[4][c], r[5][c], r[6][c], r[7][c]};
        s = s + v * v;
    }
    for (int i = 0; i < m; i++)
        if (s[i] > 0) {
            const float f = (float)(target / sqrt(s[i]));
            for (uint32_t c = 0; c < d_h; c++) x[i][c] *= f;
        }
}

#endif
