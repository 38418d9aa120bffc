/* attn/attn_cuda_embed.cu — the hashed embedding, pooling and salience-mass
 * kernels of the CUDA backend; each computes exactly what its CPU twin in
 * attn/ computes (folio_embed, folio_pool_ranges, folio_pool_fixed,
 * folio_pool_finish, folio_mass_accumulate) and
 * tests/unit/test_cuda_embed.c compares them. */
#include "attn_cuda_internal.h"

#include <cuda_runtime.h>
#include <math.h>


namespace {

/* ------------------------------------------------------------ folio_hash64 on the device
 * The same function as common/hash.c, over bytes given by an accessor (so a
 * long token can be lowercased while it is read). */
__device__ __forceinline__ uint64_t mum(uint64_t a, uint64_t b)
{
    return (a * b) ^ __umul64hi(a, b);
}

constexpr uint64_t P0 = 0xa0761d6478bd642full, P1 = 0xe7037ed1a0b428dbull, P2 = 0x8ebc6af09c88c6e3ull,
                   P3 = 0x589965cc75374cc3ull;

template <class Get> __device__ __forceinline__ uint64_t rd32(const Get &g, uint64_t i)
{
    return (uint64_t)g(i) | ((uint64_t)g(i + 1) << 8) | ((uint64_t)g(i + 2) << 16) | ((uint64_t)g(i + 3) << 24);
}
template <class Get> __device__ __forceinline__ uint64_t rd64(const Get &g, uint64_t i)
{
    return rd32(g, i) | (rd32(g, i + 4) << 32);
}

template <class Get> __device__ uint64_t dev_hash64(const Get &g, uint64_t len, uint64_t seed)
{
    uint64_t a, b, p = 0;
    seed ^= mum(seed ^ P0, P1);
    if (len <= 16) {
        if (len >= 4) {
            a = (rd32(g, 0) << 32) | rd32(g, (len >> 3) << 2);
            b = (rd32(g, len - 4) << 32) | rd32(g, len - 4 - ((len >> 3) << 2));
        } else if (len > 0) {
            a = ((uint64_t)g(0) << 16) | ((uint64_t)g(len >> 1) << 8) | (uint64_t)g(len - 1);
            b = 0;
        } else {
            a = b = 0;
        }
    } else {
        uint64_t i = len;
        if (i > 48) {
            uint64_t s1 = seed, s2 = seed;
            do {
                seed = mum(rd64(g, p) ^ P1, rd64(g, p + 8) ^ seed);
                s1 = mum(rd64(g, p + 16) ^ P2, rd64(g, p + 24) ^ s1);
                s2 = mum(rd64(g, p + 32) ^ P3, rd64(g, p + 40) ^ s2);
                p += 48;
                i -= 48;
            } while (i > 48);
            seed ^= s1 ^ s2;
        }
        while (i > 16) {
            seed = mum(rd64(g, p) ^ P1, rd64(g, p + 8) ^ seed);
            i -= 16;
            p += 16;
        }
        a = rd64(g, p + i - 16);
        b = rd64(g, p + i - 8);
    }
    a ^= P1;
    b ^= seed;
    const uint64_t lo = a * b, hi = __umul64hi(a, b);
    return mum(lo ^ P0 ^ len, hi ^ P1);
}

struct BufBytes {
    const unsigned char *p;
    __device__ unsigned char operator()(uint64_t i) const { return p[i]; }
};
struct LowerBytes { /* a token read from the text, ASCII-lowercased */
    const unsigned char *p;
    __device__ unsigned char operator()(uint64_t i) const
    {
        const unsigned char c = p[i];
        return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
    }
};

/* splitmix64 word w of the stream seeded by h (the CPU draws words in order). */
__device__ __forceinline__ uint64_t mix_word(uint64_t h, uint32_t w)
{
    uint64_t z = h + (uint64_t)(w + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

constexpr int kFormMax = 64;      /* as attn/embed.c FORM_MAX */
constexpr int kEmbedWarps = 4;

/* Row i of X from the warp's accumulator: scaled to norm sqrt(d) x weight,
 * the norm in double, summed in column order as on the CPU. */
__device__ __forceinline__ void embed_end(const float *acc, const float *weights, uint64_t i, uint32_t d, float *X,
                                          int lane)
{
    __syncwarp();
    double nn = 0;
    if (lane == 0)
        for (uint32_t c = 0; c < d; c++) nn += (double)acc[c] * acc[c];
    nn = __shfl_sync(0xffffffffu, nn, 0);
    const float wgt = weights ? weights[i] : 1.0f;
    const float f = nn > 0 ? __fmul_rn((float)(sqrt((double)d) / sqrt(nn)), wgt) : 0.0f;
    float *x = X + i * d;
    for (uint32_t c = lane; c < d; c += 32) x[c] = __fmul_rn(acc[c], f);
}

/* One warp per token; the warp's accumulator row lives in shared memory
 * (each lane owns fixed columns).  The lanes first hash different features
 * (the form, then its 3-, 4- and 5-grams by start: the CPU's order) into
 * shared memory; then, feature by feature, lane b draws sign word b, which
 * the warp reads by shuffles.  Per column the features still add in the
 * CPU's order, so the rows are the CPU's to the bit (test_cuda_embed).  The
 * first version had every lane hash every feature and draw every sign
 * word: 22.0 -> 18.5 ms for the input and embedding of a 2.2M-token
 * document (2x H200, ninth session, GPU_NOTES.md). */
constexpr int kFeatMax = 1 + (kFormMax + 2 - 2) + (kFormMax + 2 - 3) + (kFormMax + 2 - 4); /* word + n-grams */

__global__ void __launch_bounds__(32 * kEmbedWarps) embed_kernel(const unsigned char *text, uint32_t base,
                                                                     const folio_span_t *spans,
                                                                     const float *weights, uint32_t n, uint32_t d,
                                                                     uint64_t seed, float *X)
{
    extern __shared__ float esm[];
    __shared__ unsigned char forms[kEmbedWarps][kFormMax + 8];
    __shared__ uint64_t hashes[kEmbedWarps][kFeatMax];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const uint64_t i = (uint64_t)blockIdx.x * kEmbedWarps + warp;
    if (i >= n) return;
    float *acc = esm + (size_t)warp * d;
    unsigned char *form = forms[warp];
    uint64_t *hs = hashes[warp];
    const folio_span_t t = spans[i];
    const uint32_t len = t.end > t.start ? t.end - t.start : 0;
    const uint32_t fl = len < kFormMax ? len : kFormMax;
    const LowerBytes tok{text + (t.start - base)};
    for (uint32_t j = lane; j < fl; j += 32) form[1 + j] = tok(j);
    if (lane == 0) {
        form[0] = '<';
        form[1 + fl] = '>';
    }
    for (uint32_t c = lane; c < d; c += 32) acc[c] = 0.f;
    __syncwarp();
    const float unit = __fdiv_rn(1.0f, __fsqrt_rn((float)d));
    const uint32_t L = fl + 2;
    uint32_t ngr = 0;
    for (uint32_t g = 3; g <= 5; g++) ngr += L >= g ? L - g + 1 : 0;
    const uint32_t nf = 1 + ngr;
    const uint64_t gram_seed = seed ^ 0x5bd1e9955bd1e995ull;
    /* feature f: 0 = the form, then the 3-, 4- and 5-grams by start, the CPU's order */
    for (uint32_t f = lane; f < nf; f += 32) {
        uint64_t h;
        if (f == 0) {
            h = len <= (uint32_t)kFormMax ? dev_hash64(BufBytes{form + 1}, fl, seed) : dev_hash64(tok, len, seed);
        } else {
            uint32_t k = f - 1, g = 3;
            while (k >= L - g + 1) { /* L >= 3 here: ngr > 0 */
                k -= L - g + 1;
                g++;
            }
            h = dev_hash64(BufBytes{form + k}, g, gram_seed + g);
        }
        hs[f] = h;
    }
    __syncwarp();
    const float gw = ngr ? __fdiv_rn(unit, __fsqrt_rn((float)ngr)) : 0.f;
    const uint32_t nblk = (d + 63) / 64;
    for (uint32_t f = 0; f < nf; f++) {
        const uint64_t h = hs[f];
        const float w = f == 0 ? unit : gw;
        for (uint32_t b0 = 0; b0 < nblk; b0 += 32) {
            const uint64_t mine = b0 + lane < nblk ? mix_word(h, b0 + lane) : 0;
            const uint32_t b1 = nblk - b0 < 32 ? nblk : b0 + 32;
            for (uint32_t b = b0; b < b1; b++) {
                const uint64_t bits = __shfl_sync(0xffffffffu, mine, (int)(b - b0));
                const uint32_t c0 = b * 64;
                for (uint32_t j = lane; j < 64 && c0 + j < d; j += 32) {
                    const float sg = 1.0f - 2.0f * (float)((bits >> j) & 1u);
                    acc[c0 + j] += sg * w;
                }
            }
        }
    }
    embed_end(acc, weights, i, d, X, lane);
}

/* One CTA per range: columns over threads, tokens in order (double sums). */
__global__ void pool_kernel(const float *X, uint32_t d, const uint32_t *begin, const uint32_t *end, float *out)
{
    extern __shared__ double acc[];
    const uint32_t r = blockIdx.x;
    const uint32_t b = begin[r], e = end[r];
    for (uint32_t c = threadIdx.x; c < d; c += blockDim.x) {
        double s = 0;
        for (uint32_t i = b; i < e; i++) s += X[(size_t)i * d + c];
        acc[c] = s;
    }
    __syncthreads();
    __shared__ double f;
    if (threadIdx.x == 0) {
        double nn = 0;
        for (uint32_t c = 0; c < d; c++) nn += acc[c] * acc[c];
        f = nn > 0 ? 1.0 / sqrt(nn) : 0.0;
    }
    __syncthreads();
    for (uint32_t c = threadIdx.x; c < d; c += blockDim.x) out[(size_t)r * d + c] = (float)(acc[c] * f);
}

/* One CTA per item (range r, local rows [b, e)): columns over threads,
 * tokens summed in int64 fixed point, then one integer atomic per column
 * (a range cut into several items adds up exactly in any order). */
__global__ void pool_fixed_kernel(const float *X, uint32_t d, const uint32_t *items, int64_t *acc)
{
    const uint32_t *it = items + 3 * (size_t)blockIdx.x;
    const uint32_t r = it[0], b = it[1], e = it[2];
    for (uint32_t c = threadIdx.x; c < d; c += blockDim.x) {
        long long s = 0;
        for (uint32_t t = b; t < e; t++) s += __double2ll_rn((double)X[(size_t)t * d + c] * FOLIO_POOL_ONE);
        atomicAdd((unsigned long long *)&acc[(size_t)r * d + c], (unsigned long long)s);
    }
}

/* One warp per range, as folio_pool_finish: the lanes form the mean of
 * their columns (double), round to float into shared memory; lane 0 sums
 * the squares with fma in column order (the CPU's order); all scale. */
__global__ void pool_finish_kernel(const int64_t *acc, const uint32_t *begin, const uint32_t *end, uint32_t m,
                                   uint32_t d, float *out)
{
    extern __shared__ float fsm[];
    const uint32_t warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const uint64_t r = (uint64_t)blockIdx.x * (blockDim.x >> 5) + warp;
    if (r >= m) return;
    float *o = fsm + (size_t)warp * d;
    const uint64_t c = end[r] > begin[r] ? end[r] - begin[r] : 0;
    for (uint32_t j = lane; j < d; j += 32) {
        const double v = c ? (double)acc[r * d + j] / FOLIO_POOL_ONE / (double)c : 0.0;
        o[j] = __double2float_rn(v);
    }
    __syncwarp();
    float inv = 0.f;
    bool scale = false;
    if (lane == 0) {
        double ss = 0;
        for (uint32_t j = 0; j < d; j++) ss = fma((double)o[j], (double)o[j], ss);
        scale = ss > 0;
        if (scale) inv = __double2float_rn(1.0 / sqrt(ss));
    }
    inv = __shfl_sync(0xffffffffu, inv, 0);
    scale = __shfl_sync(0xffffffffu, scale, 0);
    for (uint32_t j = lane; j < d; j += 32) out[r * d + j] = scale ? __fmul_rn(o[j], inv) : o[j];
}

__global__ void mass_kernel(const int32_t *sel, const int32_t *sel_n, const float *node_mass, uint64_t rows,
                            int s_max, int64_t *mass)
{
    const uint64_t k = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x;
    if (k >= rows * (uint64_t)s_max) return;
    const uint64_t r = k / s_max;
    const int e = (int)(k % s_max);
    if (e >= sel_n[r]) return;
    const long long v = __double2ll_rn((double)node_mass[k] * (double)FOLIO_MASS_ONE);
    atomicAdd((unsigned long long *)&mass[sel[k]], (unsigned long long)v);
}

} // namespace

cudaError_t folio_cuda_preload_embed(void)
{
    cudaFuncAttributes fa;
    cudaError_t e = cudaFuncGetAttributes(&fa, embed_kernel);
    if (e == cudaSuccess) e = cudaFuncGetAttributes(&fa, pool_kernel);
    if (e == cudaSuccess) e = cudaFuncGetAttributes(&fa, pool_fixed_kernel);
    if (e == cudaSuccess) e = cudaFuncGetAttributes(&fa, pool_finish_kernel);
    if (e == cudaSuccess) e = cudaFuncGetAttributes(&fa, mass_kernel);
    return e;
}

extern "C" folio_status_t folio_cuda_embed(const char *text, uint64_t len, uint64_t base, const folio_span_t *spans,
                                           const float *weights, uint32_t n, uint32_t d, uint64_t seed, float *X,
                                           void *stream)
{
    FOLIO_CHECK_GENERIC(d >= 1 && d <= 8192 && (n == 0 || (text && spans && X)) && base <= UINT32_MAX, FOLIO_ERR_ARG,
                        "embed cuda: bad arguments (n=%u d=%u base=%llu)", n, d, (unsigned long long)base);
    (void)len; /* spans index the text; the caller validated them (shard/) */
    if (n == 0) return FOLIO_OK;
    const size_t sm = (size_t)kEmbedWarps * d * sizeof(float);
    const auto kern = embed_kernel;
    /* static shared memory (forms, hashes: < 8 KB) and this must fit the 48 KB
     * a launch gets without asking */
    if (sm + 8 * 1024 > 48 * 1024)
        FOLIO_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)sm));
    kern<<<(n + kEmbedWarps - 1) / kEmbedWarps, 32 * kEmbedWarps, sm, (cudaStream_t)stream>>>(
        (const unsigned char *)text, (uint32_t)base, spans, weights, n, d, seed, X);
    FOLIO_CUDA_CHECK(cudaGetLastError());
    return FOLIO_OK;
}

extern "C" folio_status_t folio_cuda_pool_ranges(const float *X, uint64_t n, uint32_t d, const uint32_t *begin,
                                                 const uint32_t *end, uint32_t m, float *out, void *stream)
{
    FOLIO_CHECK_GENERIC(d >= 1 && d <= 6144 && (m == 0 || (X && begin && end && out)), FOLIO_ERR_ARG,
                        "pool cuda: bad arguments (d=%u m=%u)", d, m);
    (void)n;
    if (m == 0) return FOLIO_OK;
    pool_kernel<<<m, 256, (size_t)d * sizeof(double), (cudaStream_t)stream>>>(X, d, begin, end, out);
    FOLIO_CUDA_CHECK(cudaGetLastError());
    return FOLIO_OK;
}

extern "C" folio_status_t folio_cuda_pool_fixed(const float *X, uint32_t d, const uint32_t *items, uint32_t m_items,
                                                int64_t *acc, void *stream)
{
    FOLIO_CHECK_GENERIC(d >= 1 && (m_items == 0 || (X && items && acc)), FOLIO_ERR_ARG,
                        "pool fixed cuda: bad arguments (d=%u items=%u)", d, m_items);
    if (m_items == 0) return FOLIO_OK;
    pool_fixed_kernel<<<m_items, d < 256 ? ((d + 31) / 32) * 32 : 256, 0, (cudaStream_t)stream>>>(X, d, items, acc);
    FOLIO_CUDA_CHECK(cudaGetLastError());
    return FOLIO_OK;
}

extern "C" folio_status_t folio_cuda_pool_finish(const int64_t *acc, const uint32_t *begin, const uint32_t *end,
                                                 uint32_t m, uint32_t d, float *out, void *stream)
{
    FOLIO_CHECK_GENERIC(d >= 1 && d <= 12288 && (m == 0 || (acc && begin && end && out)), FOLIO_ERR_ARG,
                        "pool finish cuda: bad arguments (d=%u m=%u)", d, m);
    if (m == 0) return FOLIO_OK;
    uint32_t wpb = 12288 / d;
    wpb = wpb < 1 ? 1 : wpb > 8 ? 8 : wpb;
    pool_finish_kernel<<<(m + wpb - 1) / wpb, 32 * wpb, (size_t)wpb * d * sizeof(float), (cudaStream_t)stream>>>(
        acc, begin, end, m, d, out);
    FOLIO_CUDA_CHECK(cudaGetLastError());
    return FOLIO_OK;
}

extern "C" folio_status_t folio_cuda_mass_accumulate(const int32_t *sel, const int32_t *sel_n, const float *node_mass,
                                                     uint32_t n_qblocks, int H, int s_max, int64_t *mass,
                                                     void *stream)
{
    FOLIO_CHECK_GENERIC(H >= 1 && s_max >= 0, FOLIO_ERR_ARG, "mass cuda: bad arguments");
    const uint64_t rows = (uint64_t)n_qblocks * H, tot = rows * (uint64_t)s_max;
    if (tot == 0) return FOLIO_OK;
    mass_kernel<<<(unsigned)((tot + 255) / 256), 256, 0, (cudaStream_t)stream>>>(sel, sel_n, node_mass, rows, s_max,
                                                                                  mass);
    FOLIO_CUDA_CHECK(cudaGetLastError());
    return FOLIO_OK;
}
