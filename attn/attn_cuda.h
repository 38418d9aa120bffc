/* attn/attn_cuda.h — the CUDA backend of attn/: kernels and a small device
 * context, callable from C.
 *
 * Semantics are those of attn/attn.h (the CPU kernels are the reference):
 * one attention layer, per head h (columns h*d_h .. h*d_h+d_h-1 of every
 * row), query token i attends to
 *   - window keys j with |i - j| <= W, 0 <= j < n_doc, and
 *   - the summary nodes sel[qb][h][0 .. sel_n[qb][h]) of its query block
 *     qb = (i - q0) / B,
 * scores scaled by `scale` (= beta / sqrt(d_h)), softmax over the union.
 * Operands are bf16, accumulation and softmax fp32, on the tensor cores:
 * warpgroup MMA (wgmma m64n64k16) in sm_90a builds (the default, FOLIO_WGMMA),
 * mma.sync m16n8k16 for other architectures (CMAKE_CUDA_ARCHITECTURES=80,
 * 90, ...).  The fast kernel supports d_h == 64 and B == 64 (the default
 * pattern; other shapes return FOLIO_ERR_UNSUPPORTED so the caller can use
 * the CPU path).  Memory is O(n * d): no score matrix is ever stored.
 *
 * Everything here works on DEVICE pointers unless a name says _host.  All
 * calls are asynchronous on the given stream (NULL = the context's stream or
 * the legacy default stream) except those that return host data.
 *
 * When the build has no CUDA (FOLIO_HAVE_CUDA undefined) this header still
 * compiles: every entry point becomes an inline stub that reports
 * FOLIO_ERR_UNSUPPORTED and folio_cuda_available() returns false.
 */
#ifndef FOLIO_ATTN_CUDA_H
#define FOLIO_ATTN_CUDA_H

#include "../common/common.h"
#include "attn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ kernel args
 * Device-side twin of the CPU folio_attn_args_t.  bf16 values are passed as
 * raw 16-bit patterns (uint16_t) so C callers need no CUDA headers. */
typedef struct {
    const uint16_t *q, *k, *v;   /* (nx, ld) bf16: rows = global tokens [x0, x0+nx);
                                    q = k = v for folio's weightless encoder */
    int64_t ld;                  /* row stride (elements) of q, k, v; >= H*d_h */
    int64_t x0, nx;              /* X covers [x0, x0+nx) and must hold every window
                                    key of the queries: [max(0,q0-W), min(n_doc,q1+W)) */
    int64_t q0, q1, n_doc;       /* queries [q0, q1), q0 % B == 0 */
    const uint16_t *node_k, *node_v; /* (n_nodes, ld_nodes) bf16 summary keys/values */
    int64_t ld_nodes, n_nodes;
    const int32_t *sel;          /* (n_qblocks, H, s_max) node indices, may be NULL if s_max == 0 */
    const int32_t *sel_n;        /* (n_qblocks, H) counts <= s_max, may be NULL if s_max == 0 */
    int s_max;
    void *out;                   /* (q1-q0, ld_out): fp32, or bf16 when out_bf16 */
    int64_t ld_out;
    int out_bf16;
    float *node_mass;            /* optional (n_qblocks, H, s_max): sum over the block's
                                    queries of the softmax weight of each selected node */
    int H, d_h, B, W;
    float scale;
    void *stream;                /* cudaStream_t, NULL = default stream */
    float row_norm_max;          /* optional: a bound on the L2 norm of every head slice of
                                    q, k and the nodes (0 = unknown).  With R^2 scale log2(e)
                                    <= 90 (e.g. rows normalized to sqrt(d_h), as every layer
                                    after the first) the kernel's softmax needs no per-row
                                    reference; without it (q = k) each row takes its own
                                    key's score as the reference, so rows of any norm (the
                                    first layer's IDF-weighted embeddings) need no redo */
    int *n_redone;               /* optional device counter: the call adds the number of
                                    (query block, head) pairs that failed the softmax check
                                    and were redone (0 when the reference was right) */
} folio_attn_cuda_args_t;

#ifdef FOLIO_HAVE_CUDA

/* True when this binary was built with CUDA and a usable device is present. */
bool folio_cuda_available(void);

/* FOLIO_OK when this build carries GPU code that runs on `device` (the
 * current one after cudaSetDevice); otherwise FOLIO_ERR_CUDA with a message
 * naming the device's compute capability, the build's architectures and the
 * CMake option that fixes it (instead of "no kernel image" at the first
 * launch, deep inside a job). */
folio_status_t folio_cuda_device_code_ok(int device);

/* Readies the current device for long documents at set-up: loads every
 * kernel the encoder launches (CUDA loads a kernel lazily at its first
 * launch, which waits for the device to go idle: at the first layer of a
 * split document, right after an exchange, ~10 ms of the device waiting
 * for the host) and lets the stream-ordered allocator keep what it
 * allocated across synchronizations (its default gives memory back at
 * each one, to be mapped again by the next layer). */
folio_status_t folio_cuda_preload(void);

/* The attention kernel folio_attn_sparse_fwd_cuda launches on the current
 * device: "wgmma" (sm_90a build on a compute capability 9.0 GPU) or
 * "mma.sync" (for benchmarks and logs). */
const char *folio_cuda_attn_kernel_name(void);

/* Thin wrappers so C callers (workers, tests) need no CUDA headers.
 * folio_cuda_malloc: *p = device buffer of `bytes` (freed by folio_cuda_free,
 * NULL-safe, nulls the pointer).  upload/download are synchronous copies. */
folio_status_t folio_cuda_malloc(void **p, size_t bytes);
void folio_cuda_free(void **p);
folio_status_t folio_cuda_upload(void *dst, const void *src, size_t bytes);
folio_status_t folio_cuda_download(void *dst, const void *src, size_t bytes);
folio_status_t folio_cuda_sync(void);

/* The fused block-sparse flash-style forward (see the top of this file).
 * Validates the arguments (clear message, FOLIO_ERR_ARG / _UNSUPPORTED) and
 * launches on a->stream, asynchronously: the attention kernel, then a short
 * second kernel that redoes the rare query blocks whose softmax needed a
 * reference (extreme scores; attn/attn_sparse.cu, "softmax") -- both in
 * stream order, so a->out is complete when the stream is.  Returns
 * FOLIO_ERR_CUDA if a launch fails. */
folio_status_t folio_attn_sparse_fwd_cuda(const folio_attn_cuda_args_t *a);

/* Pure bf16 conversion helpers on the device: n floats <-> bf16. */
folio_status_t folio_cuda_f32_to_bf16(const float *src, uint16_t *dst, int64_t n, void *stream);
folio_status_t folio_cuda_bf16_to_f32(const uint16_t *src, float *dst, int64_t n, void *stream);

/* Block summaries: node[b] = mean over tokens [b*B, min(n,(b+1)*B)) of X
 * (fp32, (n, d) row-major), b in [0, ceil(n/B)).  out: (ceil(n/B), d) fp32. */
folio_status_t folio_cuda_block_means(const float *X, int64_t n, int d, int B, float *out, void *stream);

/* Routed top-k alone: for query block qb in [qb0, qb1) and head h, the k
 * blocks (indices in [0, nb)) outside qb's group [g*G, g*G+G) whose key
 * summary (node_k row, head slice) scores highest against qb's mean query
 * (node_q row), ties to the lower index.  node_q, node_k: (nb, ld) fp32.
 * out: (qb1-qb0, H, k) in descending score order, -1 padded; out_n:
 * (qb1-qb0, H) counts. */
folio_status_t folio_cuda_route_topk(const float *node_q, const float *node_k, int64_t ld,
                                     int64_t nb, int H, int d_h, int G, int k,
                                     int64_t qb0, int64_t qb1, int32_t *out, int32_t *out_n,
                                     void *stream);

/* X <- rmsnorm_h(X + Y): each head's d_h slice of X + Y scaled to L2 norm
 * sqrt(d_h) (a zero slice stays zero), as the CPU encoder's residual step
 * (attn.h, "Normalization").  X, Y: (n, H*d_h) fp32. */
folio_status_t folio_cuda_residual_l2norm(float *X, const float *Y, int64_t n, int H, int d_h, void *stream);

/* Levels >= 2 of the hierarchy on the device, as folio_hier_build_upper:
 * nodes (h->n_nodes, d) fp32 with level 1 filled; each upper node = the
 * token-count-weighted mean of its children (children in index order). */
folio_status_t folio_cuda_hier_build_upper(const folio_hier_t *h, int d, float *nodes, void *stream);

/* Summary keys on the device, exactly as folio_attn_select (attn.h) chooses
 * them: hierarchical siblings level by level in index order (own ancestor
 * excluded; LONGT5: all blocks), then for HIER_TOPK the routed blocks by
 * descending score (ties to the lower index; none when the document has a
 * single group).  p resolved for the document, h its hierarchy.
 * node_q: (nb, ld) fp32 mean query of each block (= level-1 summaries when
 * Q = X); node_k: (n_nodes, ld) fp32 summaries (level 1 used for routing).
 * sel: (qb1-qb0, H, s_max), sel_n: (qb1-qb0, H), device.  Routing scores are
 * fp32 dot products: selections equal the CPU's except at exact (or
 * last-bit) ties.  Requires d_h == 64 and k <= 32 for HIER_TOPK. */
folio_status_t folio_cuda_attn_select(const folio_pattern_t *p, const folio_hier_t *h,
                                      const float *node_q, const float *node_k, int64_t ld,
                                      uint32_t qb0, uint32_t qb1, int32_t *sel, int32_t *sel_n,
                                      int s_max, void *stream);

/* Pooling, as folio_pool_ranges: out[r] = L2-normalized mean of X rows
 * [begin[r], end[r]) (zeros for an empty range), double accumulation in the
 * CPU's order, so results are bit-identical to the CPU's.  X: (n, d) fp32,
 * begin/end: (m) uint32, out: (m, d) fp32, all device.  Ranges must lie in
 * [0, n] (checked by the caller: they come from shard/). */
folio_status_t folio_cuda_pool_ranges(const float *X, uint64_t n, uint32_t d, const uint32_t *begin,
                                      const uint32_t *end, uint32_t m, float *out, void *stream);

/* Fixed-point pooled sums, as folio_pool_fixed (attn.h), bit-identical:
 * X: (rows, d) fp32 device rows of tokens [t0, t1) (local row = token - t0);
 * items: (m_items, 3) uint32 device triples (range r, first local row, end
 * local row), several items may share a range (a long range cut in pieces);
 * acc: (ranges, d) int64 device, added to with integer atomics (exact in any
 * order).  The caller clips ranges to [t0, t1) and zeroes acc. */
folio_status_t folio_cuda_pool_fixed(const float *X, uint32_t d, const uint32_t *items, uint32_t m_items,
                                     int64_t *acc, void *stream);

/* folio_pool_finish on the device (bit-identical but for denormals, which
 * the device flushes): acc (m, d) int64 complete sums, begin/end (m), out
 * (m, d) fp32; all device. */
folio_status_t folio_cuda_pool_finish(const int64_t *acc, const uint32_t *begin, const uint32_t *end, uint32_t m,
                                      uint32_t d, float *out, void *stream);

/* Salience mass, as folio_mass_accumulate: mass[sel[..]] +=
 * llrint(node_mass * FOLIO_MASS_ONE) for every selected slot, with integer
 * atomics (exact, order-independent).  All device; mass: (n_nodes) int64. */
folio_status_t folio_cuda_mass_accumulate(const int32_t *sel, const int32_t *sel_n, const float *node_mass,
                                          uint32_t n_qblocks, int H, int s_max, int64_t *mass, void *stream);

/* Hashed embedding, as folio_embed (same features, hashes, signs and
 * normalization; fp32 sums in the CPU's order).  spans: (n) token byte
 * ranges of a document, text: (len) of its bytes from byte `base` on (a
 * slice: spans need no rebasing on the host), weights: (n) or NULL,
 * X: (n, d) out; all device. */
folio_status_t folio_cuda_embed(const char *text, uint64_t len, uint64_t base, const folio_span_t *spans,
                                const float *weights, uint32_t n, uint32_t d, uint64_t seed, float *X, void *stream);

/* ------------------------------------------------------------ host helpers
 * The CUDA kernel behind the CPU kernel's exact signature: a->q/k/v, node_k/v
 * are HOST fp32 buffers (converted to bf16 on the device), a->out and
 * a->node_mass host fp32 outputs.  Synchronous; allocates and frees device
 * memory on each call: for tests, references and small jobs.  a->threads is
 * ignored. */
folio_status_t folio_attn_sparse_fwd_cuda_host(const folio_attn_args_t *a);
/* The same with the kernel's bf16 output (out_bf16 != 0: what the benchmarks
 * and the bf16 path use), widened to fp32 into a->out on the host. */
folio_status_t folio_attn_sparse_fwd_cuda_host_out(const folio_attn_args_t *a, int out_bf16);
/* ... and with the kernel's row_norm_max (0: unknown; see folio_attn_cuda_args_t);
 * redone (optional): the number of blocks x heads the kernel had to redo */
folio_status_t folio_attn_sparse_fwd_cuda_host_rn(const folio_attn_args_t *a, int out_bf16, float row_norm_max,
                                                  int *redone);

/* ------------------------------------------------------------ benchmark
 * Times the fused kernel alone on random bf16 inputs of n tokens, H heads of
 * width d_h, window W, and s_sum summary keys per (query block, head) drawn
 * from n_nodes = ceil(n/64) + 64 random nodes (s_sum = 0: local only).
 * Results: median ms of `reps` launches (after warm-up) and the useful
 * TFLOP/s (4 * d_h * attended pairs, summed over heads).  Needs a device. */
typedef struct {
    double ms_median, ms_min, tflops_useful, pairs;
    double tflops_computed;   /* counting the masked work of edge tiles too */
} folio_attn_cuda_bench_t;
folio_status_t folio_attn_bench_cuda(int64_t n, int H, int d_h, int W, int s_sum,
                                     int out_bf16, int with_node_mass, int reps,
                                     folio_attn_cuda_bench_t *res);

/* Times folio_cuda_attn_select (hierarchy + routed top-k) alone for a
 * document of n tokens under pattern p (resolved), on random summaries:
 * median ms of `reps`.  route_ms (optional, 4): the routed top-k alone,
 * [0] the kernel in use (wgmma with bulk-copied tiles on sm_90a, else mma.sync;
 * scores kept in registers), [1] the tiled
 * fp32 kernel, [2] the first one-thread-per-row kernel, [3] the wmma
 * tensor-core filtered kernel (all four exact; hier+topk with k <= 8 only,
 * left untouched otherwise).  Needs a device. */
folio_status_t folio_cuda_bench_select(const folio_pattern_t *p, int64_t n, int reps, double *ms_median,
                                       double *route_ms);

#else /* !FOLIO_HAVE_CUDA: stubs so callers compile everywhere */

static inline bool folio_cuda_available(void) { return false; }
static inline folio_status_t folio_cuda_device_code_ok(int device) { (void)device; return FOLIO_ERR_UNSUPPORTED; }
static inline folio_status_t folio_cuda_preload(void) { return FOLIO_ERR_UNSUPPORTED; }
static inline const char *folio_cuda_attn_kernel_name(void) { return "none"; }

static inline folio_status_t folio_cuda_malloc(void **p, size_t bytes)
{ (void)bytes; if (p) *p = NULL; return FOLIO_ERR_UNSUPPORTED; }
static inline void folio_cuda_free(void **p) { if (p) *p = NULL; }
static inline folio_status_t folio_cuda_upload(void *dst, const void *src, size_t bytes)
{ (void)dst; (void)src; (void)bytes; return FOLIO_ERR_UNSUPPORTED; }
static inline folio_status_t folio_cuda_download(void *dst, const void *src, size_t bytes)
{ (void)dst; (void)src; (void)bytes; return FOLIO_ERR_UNSUPPORTED; }
static inline folio_status_t folio_cuda_sync(void) { return FOLIO_ERR_UNSUPPORTED; }
static inline folio_status_t folio_cuda_block_means(const float *X, int64_t n, int d, int B, float *out, void *stream)
{ (void)X; (void)n; (void)d; (void)B; (void)out; (void)stream; return FOLIO_ERR_UNSUPPORTED; }
static inline folio_status_t folio_cuda_hier_build_upper(const folio_hier_t *h, int d, float *nodes, void *stream)
{ (void)h; (void)d; (void)nodes; (void)stream; return FOLIO_ERR_UNSUPPORTED; }
static inline folio_status_t folio_cuda_attn_select(const folio_pattern_t *p, const folio_hier_t *h,
                                                    const float *node_q, const float *node_k, int64_t ld,
                                                    uint32_t qb0, uint32_t qb1, int32_t *sel, int32_t *sel_n,
                                                    int s_max, void *stream)
{ (void)p; (void)h; (void)node_q; (void)node_k; (void)ld; (void)qb0; (void)qb1; (void)sel; (void)sel_n;
  (void)s_max; (void)stream; return FOLIO_ERR_UNSUPPORTED; }
static inline folio_status_t folio_cuda_route_topk(const float *node_q, const float *node_k, int64_t ld,
                                                   int64_t nb, int H, int d_h, int G, int k,
                                                   int64_t qb0, int64_t qb1, int32_t *out, int32_t *out_n,
                                                   void *stream)
{ (void)node_q; (void)node_k; (void)ld; (void)nb; (void)H; (void)d_h; (void)G; (void)k; (void)qb0;
  (void)qb1; (void)out; (void)out_n; (void)stream; return FOLIO_ERR_UNSUPPORTED; }
static inline folio_status_t folio_cuda_f32_to_bf16(const float *src, uint16_t *dst, int64_t n, void *stream)
{ (void)src; (void)dst; (void)n; (void)stream; return FOLIO_ERR_UNSUPPORTED; }
static inline folio_status_t folio_cuda_bf16_to_f32(const uint16_t *src, float *dst, int64_t n, void *stream)
{ (void)src; (void)dst; (void)n; (void)stream; return FOLIO_ERR_UNSUPPORTED; }
static inline folio_status_t folio_cuda_pool_ranges(const float *X, uint64_t n, uint32_t d, const uint32_t *begin,
                                                    const uint32_t *end, uint32_t m, float *out, void *stream)
{ (void)X; (void)n; (void)d; (void)begin; (void)end; (void)m; (void)out; (void)stream; return FOLIO_ERR_UNSUPPORTED; }
static inline folio_status_t folio_cuda_pool_fixed(const float *X, uint32_t d, const uint32_t *items, uint32_t m_items,
                                                   int64_t *acc, void *stream)
{ (void)X; (void)d; (void)items; (void)m_items; (void)acc; (void)stream; return FOLIO_ERR_UNSUPPORTED; }
static inline folio_status_t folio_cuda_pool_finish(const int64_t *acc, const uint32_t *begin, const uint32_t *end,
                                                    uint32_t m, uint32_t d, float *out, void *stream)
{ (void)acc; (void)begin; (void)end; (void)m; (void)d; (void)out; (void)stream; return FOLIO_ERR_UNSUPPORTED; }
static inline folio_status_t folio_cuda_mass_accumulate(const int32_t *sel, const int32_t *sel_n, const float *node_mass,
                                                        uint32_t n_qblocks, int H, int s_max, int64_t *mass, void *stream)
{ (void)sel; (void)sel_n; (void)node_mass; (void)n_qblocks; (void)H; (void)s_max; (void)mass; (void)stream;
  return FOLIO_ERR_UNSUPPORTED; }
static inline folio_status_t folio_cuda_embed(const char *text, uint64_t len, uint64_t base, const folio_span_t *spans,
                                              const float *weights, uint32_t n, uint32_t d, uint64_t seed, float *X,
                                              void *stream)
{ (void)text; (void)len; (void)base; (void)spans; (void)weights; (void)n; (void)d; (void)seed; (void)X; (void)stream;
  return FOLIO_ERR_UNSUPPORTED; }
static inline folio_status_t folio_cuda_residual_l2norm(float *X, const float *Y, int64_t n, int H, int d_h, void *stream)
{ (void)X; (void)Y; (void)n; (void)H; (void)d_h; (void)stream; return FOLIO_ERR_UNSUPPORTED; }
static inline folio_status_t folio_attn_sparse_fwd_cuda(const folio_attn_cuda_args_t *a)
{ (void)a; return FOLIO_ERR_UNSUPPORTED; }
static inline folio_status_t folio_attn_sparse_fwd_cuda_host(const folio_attn_args_t *a)
{ (void)a; return FOLIO_ERR_UNSUPPORTED; }
static inline folio_status_t folio_attn_sparse_fwd_cuda_host_out(const folio_attn_args_t *a, int out_bf16)
{ (void)a; (void)out_bf16; return FOLIO_ERR_UNSUPPORTED; }
static inline folio_status_t folio_attn_sparse_fwd_cuda_host_rn(const folio_attn_args_t *a, int out_bf16,
                                                                float row_norm_max, int *redone)
{ (void)a; (void)out_bf16; (void)row_norm_max; (void)redone; return FOLIO_ERR_UNSUPPORTED; }
typedef struct {
    double ms_median, ms_min, tflops_useful, pairs;
    double tflops_computed;
} folio_attn_cuda_bench_t;
static inline folio_status_t folio_attn_bench_cuda(int64_t n, int H, int d_h, int W, int s_sum,
                                                   int out_bf16, int with_node_mass, int reps,
                                                   folio_attn_cuda_bench_t *res)
{ (void)n; (void)H; (void)d_h; (void)W; (void)s_sum; (void)out_bf16; (void)with_node_mass;
  (void)reps; (void)res; return FOLIO_ERR_UNSUPPORTED; }

static inline folio_status_t folio_cuda_bench_select(const folio_pattern_t *p, int64_t n, int reps, double *ms_median,
                                                     double *route_ms)
{ (void)p; (void)n; (void)reps; (void)ms_median; (void)route_ms; return FOLIO_ERR_UNSUPPORTED; }
#endif /* FOLIO_HAVE_CUDA */

#ifdef __cplusplus
}
#endif
#endif /* FOLIO_ATTN_CUDA_H */
