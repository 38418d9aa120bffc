/* attn/attn.h — the attention pattern, the hashed embedding, the encoder
 * layers and the CPU kernels of folio (design.md, "The encoder" and "The
 * sparse attention pattern").
 *
 * attn/ knows nothing of MPI, LMDB or files: every function here works on
 * caller-owned memory.  Unless a comment says otherwise, output buffers are
 * allocated by the caller, nothing is retained after a call returns, and all
 * matrices are row-major fp32.
 *
 * Notation.  n = tokens of one document, d = H * d_h (heads x head width).
 * A token row of X is (H, d_h): head h owns columns [h*d_h, (h+1)*d_h).
 *
 * Hierarchy.  Level 0 = tokens.  Level 1 = blocks of B tokens
 * (nb = ceil(n/B), the last block may be partial).  Level l+1 = groups of G
 * consecutive level-l nodes, built while level l has more than G nodes; the
 * last level built (<= G nodes) is the top.  Every node's summary vector is
 * the mean of the layer input over the tokens under it (a partial block or
 * group is weighted by its real token count).  Nodes are laid out flat:
 * level 1 (= block index) first, then level 2, ..., top last
 * (folio_hier_t.offset[]).
 *
 * Pattern.  Query token i (block b) attends to the union of
 *   (1) local:   tokens j with |i - j| <= W, 0 <= j < n;
 *   (2) hier:    at every level l >= 1, the siblings of i's own level-l
 *                ancestor (the nodes that share its parent; at the top
 *                level: all top nodes), EXCLUDING the ancestor itself — its
 *                content is represented more finely by the level below and
 *                the window, so window + hier keys partition the document;
 *   (3) routed:  per head, the k blocks outside b's group (b's level-2
 *                ancestor; no routed keys when the document has a single
 *                group) whose summary scores highest against b's mean query
 *                (= b's own level-1 summary when Q = X), ties to the lower
 *                block index.
 * Variants: LOCAL = (1); LONGT5 = (1) + ALL block summaries (own included);
 * HIER = (1)+(2); HIER_TOPK = (1)+(2)+(3) (default); DENSE = every token.
 * A key appears once.  All queries of a block share its summary keys.
 *
 * Normalization.  After each layer X <- rmsnorm_h(X + attn_out): each head's
 * d_h slice is scaled to L2 norm sqrt(d_h) (RMS 1, no affine; a zero slice
 * stays zero), so scores q.k * beta/sqrt(d_h) = beta*sqrt(d_h)*cos: sharp
 * enough to be selective at the default beta = 1.
 */
#ifndef FOLIO_ATTN_H
#define FOLIO_ATTN_H

#include <math.h>

#include "../common/common.h"
#include "../shard/shard.h" /* folio_span_t only */

#ifdef __cplusplus
extern "C" {
#endif

/* ================================================================ pattern */

typedef enum {
    FOLIO_PATTERN_LOCAL,
    FOLIO_PATTERN_LONGT5,
    FOLIO_PATTERN_HIER,
    FOLIO_PATTERN_HIER_TOPK,  /* default */
    FOLIO_PATTERN_DENSE,
} folio_pattern_kind_t;

/* A plain value (copy freely).  Spec string: a named variant and/or a
 * comma-separated key=value list, e.g. "hier+topk", "local,window=128",
 * "window=256,block=64,group=64,topk=8,layers=2,heads=4,head_dim=64,beta=1",
 * "budget=512".  Variant names: local, longt5, hier, hier+topk, dense. */
typedef struct {
    folio_pattern_kind_t kind;
    uint32_t window;   /* W >= 0, local half-width                     (256) */
    uint32_t block;    /* B, power of two in [1, 4096]                  (64) */
    uint32_t group;    /* G >= 2, children per hierarchy node           (64) */
    uint32_t topk;     /* k routed blocks per query block and head       (8) */
    uint32_t layers;   /* L >= 1                                         (2) */
    uint32_t heads;    /* H >= 1                                         (4) */
    uint32_t head_dim; /* d_h >= 1                                      (64) */
    float beta;        /* > 0; scores scaled by beta / sqrt(d_h)         (1) */
    uint32_t budget;   /* keys per query; 0 = fixed pattern, else window,
                          group and topk are chosen per document by
                          folio_pattern_resolve (budget >= 64)           (0) */
    uint32_t sumbias;  /* 1: a summary node's score gets + ln(tokens under it),
                          so one node weighs like the tokens it stands for
                          when attention is flat; 0: plain scores        (0) */
} folio_pattern_t;

#define FOLIO_PATTERN_SPEC_MAX 256 /* enough for folio_pattern_print */

folio_pattern_t folio_pattern_default(void);

/* Parses spec on top of the defaults (NULL or "" = default).  Later keys
 * override earlier ones; a variant name sets only the kind.  On error returns
 * FOLIO_ERR_PARSE (unknown key/variant, junk number) or FOLIO_ERR_ARG (value
 * out of range) and writes a reason naming the offending item to err. */
folio_status_t folio_pattern_parse(const char *spec, folio_pattern_t *p, char *err, size_t errlen);

/* Range checks of every field (the same ones parse applies). */
folio_status_t folio_pattern_validate(const folio_pattern_t *p, char *err, size_t errlen);

/* Canonical spec: "<variant>,window=..,block=..,group=..,topk=..,layers=..,
 * heads=..,head_dim=..,beta=..[,budget=..][,sumbias=1]" (beta printed with the
 * fewest digits that read back as the same float, so parse(print(p)) == p).
 * Returns the length snprintf would
 * write (truncated if >= cap). */
size_t folio_pattern_print(const folio_pattern_t *p, char *buf, size_t cap);

static inline uint32_t folio_pattern_dim(const folio_pattern_t *p) { return p->heads * p->head_dim; }
static inline float folio_pattern_scale(const folio_pattern_t *p)
{ return p->beta / sqrtf((float)p->head_dim); }

/* The concrete pattern used for a document of n tokens.  Fixed patterns
 * (budget == 0) are returned unchanged except that DENSE gets window = n.
 * Budget mode (K = budget): n <= K -> window covering the document (exact
 * dense attention); otherwise window W, group G and topk k are chosen so that
 * folio_pattern_keys_bound(out, n) <= K with ~1/4 of K for summary keys and
 * the rest for the window, hence cost per token ~K whatever n (10 .. 10^9);
 * routing (whose exact top-k costs ~2*nb*d flops per token) is dropped
 * (topk = 0) once ceil(n/B) > B*K/8, where it would exceed 1/16 of the
 * attention's cost.
 * out->budget is kept (records the mode); out is a fixed pattern for n. */
folio_status_t folio_pattern_resolve(const folio_pattern_t *p, uint64_t n, folio_pattern_t *out);

/* Upper bound on keys per query (tokens + summary nodes) of pattern p for a
 * document of n tokens (p resolved: call with the output of resolve):
 *   min(n, 2W+1) + S where S = 0 (local, dense), nb (longt5),
 *   sum over levels of (siblings - 1) <= levels*(G-1) (hier), + min(k, nb) (hier+topk). */
uint64_t folio_pattern_keys_bound(const folio_pattern_t *p, uint64_t n);

/* Maximum summary keys of one query block (the s_max of the selection). */
uint32_t folio_pattern_summary_max(const folio_pattern_t *p, uint64_t n);

/* ================================================================ hierarchy
 * Pure arithmetic of the block/group tree of one document. */

#define FOLIO_HIER_MAX_LEVELS 40

typedef struct {
    uint64_t n;                      /* tokens                                  */
    uint32_t B, G;
    uint32_t n_levels;               /* levels >= 1 (1 = blocks only)           */
    uint32_t count[FOLIO_HIER_MAX_LEVELS + 1];  /* count[l]: nodes at level l (l >= 1) */
    uint32_t offset[FOLIO_HIER_MAX_LEVELS + 1]; /* offset[l]: flat index of level l's first node */
    uint32_t n_nodes;                /* all nodes of levels 1..n_levels         */
} folio_hier_t;

/* n >= 1, B >= 1, G >= 2; FOLIO_ERR_TOO_LARGE when ceil(n/B) >= 2^32. */
folio_status_t folio_hier_init(folio_hier_t *h, uint64_t n, uint32_t B, uint32_t G);
/* Level-l ancestor index (within level l) of block b (level 1: b itself). */
static inline uint32_t folio_hier_ancestor(const folio_hier_t *h, uint32_t b, uint32_t l)
{ uint32_t a = b; for (uint32_t i = 1; i < l; i++) a /= h->G; return a; }
/* Siblings of node idx at level l: indices [*s0, *s1) within level l that
 * share its parent (all nodes at the top level); idx itself is inside. */
void folio_hier_siblings(const folio_hier_t *h, uint32_t l, uint32_t idx, uint32_t *s0, uint32_t *s1);
/* Tokens [*t0, *t1) under node idx of level l. */
void folio_hier_node_tokens(const folio_hier_t *h, uint32_t l, uint32_t idx, uint64_t *t0, uint64_t *t1);
/* Level (>= 1) and in-level index of flat node f. */
void folio_hier_node_level(const folio_hier_t *h, uint32_t f, uint32_t *level, uint32_t *idx);
/* out[f] = ln(tokens under flat node f), (n_nodes): the score bias of
 * pattern option sumbias=1. */
void folio_hier_log_sizes(const folio_hier_t *h, float *out);

/* ================================================================ embedding */

/* Hashed-feature ("random indexing") token vectors.  For token i (bytes
 * spans[i] of text): features = its ASCII-lowercased form (weight 1) and the
 * character 3-,4-,5-grams of "<form>" (weight 1/sqrt(#grams) each); each
 * feature maps through folio_hash64(feature, seed) to a pseudo-random vector
 * of +-1/sqrt(d) entries; the token vector is the weighted sum, scaled to L2
 * norm sqrt(d) * weights[i] (weights = IDF computed by the caller; NULL = 1).
 * Deterministic.  X: (n, d) written. */
folio_status_t folio_embed(const char *text, const folio_span_t *spans, const float *weights,
                           uint32_t n, uint32_t d, uint64_t seed, float *X);

/* The encoder's fixed inputs, shared by ingest (documents) and jobs
 * (questions) so both are encoded alike.  The seed is part of the encoder's
 * definition: changing it changes every stored vector. */
#define FOLIO_EMBED_SEED 0x666f6c696f656d62ull /* "folioemb" */

/* IDF weight of a term in n_docs documents, df of them containing it:
 * BM25's ln(1 + (N - df + 0.5) / (df + 0.5)), floored at a small positive
 * value so no token vanishes entirely. */
static inline float folio_idf(uint64_t n_docs, uint64_t df)
{
    if (df > n_docs) df = n_docs;
    double v = log(1.0 + ((double)n_docs - (double)df + 0.5) / ((double)df + 0.5));
    return (float)(v < 0.05 ? 0.05 : v);
}

/* ================================================================ kernels */

/* One attention layer over queries [q0, q1) (global token indices, q0 % B == 0)
 * of a document of n_doc tokens.
 * q, k, v: (nx, ld) rows = global tokens [x0, x0 + nx); they must contain every
 *   window key of the queries: [max(0, q0-W), min(n_doc, q1+W)).  For folio's
 *   weightless encoder q = k = v = the layer input.
 * node_k, node_v: (n_nodes, ld_nodes) summary vectors (any levels, indexed as
 *   the caller laid them out, normally folio_hier_t's flat layout).
 * sel: (n_qblocks, H, s_max) node indices selected for each query block and
 *   head; sel_n: (n_qblocks, H) how many (<= s_max); qblock = (q - q0) / B.
 *   May be NULL when s_max == 0.
 * out: (q1 - q0, ld_out) attention output (before the residual/normalization,
 *   unless residual / rmsnorm below ask for them).
 * node_mass (optional, may be NULL): (n_qblocks, H, s_max) sum over the
 *   block's queries of the softmax weight given to each selected node — for
 *   salience.
 * Score = (q . k) * scale; softmax over window keys UNION selected nodes.
 * Deterministic: results are bit-identical for any thread count and any
 * split of the queries at block boundaries (each (block, head) is computed by
 * one thread in a fixed order). */
typedef struct {
    const float *q, *k, *v;
    int64_t ld;
    int64_t x0, nx;
    int64_t q0, q1, n_doc;
    const float *node_k, *node_v;
    int64_t ld_nodes, n_nodes;
    const int32_t *sel, *sel_n;
    int s_max;
    float *out;
    int64_t ld_out;
    float *node_mass;
    int H, d_h, B, W;
    float scale;
    int threads;   /* 0 = OpenMP default */
    const float *node_bias; /* optional (n_nodes): added to the scaled score of
                               each node key (sumbias=1: ln of its token count);
                               NULL = none */
    /* Optional epilogue, so that the encoder's residual and normalization
     * cost no extra passes over (n, d) arrays: residual (q1 - q0, ld_res),
     * rows = queries, must not overlap out: out = residual + attention;
     * rmsnorm: then each head slice of out is scaled as folio_rmsnorm_heads
     * does.  Bit-identical to those separate passes. */
    const float *residual;
    int64_t ld_res;
    bool rmsnorm;
    /* Optional (n_nodes): mass[node] += llrint(node mass * FOLIO_MASS_ONE)
     * for every selected node of every (query block, head), the integers
     * folio_mass_accumulate would add from node_mass, summed per thread
     * while the block is in cache (no (n_qblocks, H, s_max) array). */
    int64_t *mass;
} folio_attn_args_t;

/* The fast kernel: 64-key tiles with a FlashAttention-style online softmax;
 * the window keys of 8 consecutive query blocks are transposed once per head
 * into a per-thread buffer ((B*8 + 2W) * d_h floats: O(d_h * (B + W)), or
 * O(d_h * n) for dense W = n), each block's summary keys gathered once;
 * 4 queries x 64 keys register-blocked score and value micro-kernels in GCC/
 * Clang vector extensions (AVX-512/AVX2 under -march=native, narrower ISAs
 * get the same code lowered); OpenMP over (8-block chunk, head) tasks. */
folio_status_t folio_attn_sparse_fwd_cpu(const folio_attn_args_t *a);

/* The obviously-right O(n^2) reference: per head, attention of every token
 * over the concatenation [tokens ; nodes] (n + n_nodes keys) with an explicit
 * mask, computed in double.  X: (n, H*d_h) q = k = v; nodes: (n_nodes, H*d_h);
 * mask: (H, n, n + n_nodes) bytes, nonzero = allowed; out: (n, H*d_h).
 * node_w (optional): (n, H, n_nodes) the softmax weight of each node. */
folio_status_t folio_attn_dense_ref(const float *X, uint32_t n, const float *nodes, uint32_t n_nodes,
                                    uint32_t H, uint32_t d_h, float scale, const uint8_t *mask,
                                    float *out, float *node_w);
/* The same with node_bias (n_nodes, may be NULL) added to node scores. */
folio_status_t folio_attn_dense_ref_bias(const float *X, uint32_t n, const float *nodes, uint32_t n_nodes,
                                         const float *node_bias, uint32_t H, uint32_t d_h, float scale,
                                         const uint8_t *mask, float *out, float *node_w);

/* The explicit mask of a pattern for a whole document (for tests and the
 * reference): (H, n, n + n_nodes) bytes, from the same sel/sel_n the kernel
 * gets (n_qblocks = nb, queries [0, n)).  Returns a malloc'd buffer the caller
 * frees, or NULL (FOLIO_ERR_NOMEM) in *st. */
uint8_t *folio_attn_build_mask(const folio_pattern_t *p, uint32_t n, uint32_t n_nodes,
                               const int32_t *sel, const int32_t *sel_n, int s_max,
                               folio_status_t *st);

/* ================================================================ encoder
 * The steps of one layer, exposed so a document split over ranks (blocks
 * [b0, b1) per rank) computes exactly what a whole-document run computes:
 *   1. folio_attn_block_sums  — summaries of the rank's blocks (layer input);
 *   2. (caller allgathers all nb block summaries of the document, in order);
 *   3. folio_hier_build_upper — every rank builds levels >= 2 identically;
 *   4. folio_attn_select      — summary keys of the rank's query blocks;
 *   5. folio_encoder_layer    — attention over the rank's queries, with W halo
 *                               rows of the layer input on each side, then
 *                               residual + per-head RMS normalization;
 *   6. (caller exchanges halo rows of the new X for the next layer.)
 * Salience: node_mass from the kernel is accumulated into int64 fixed point
 * (folio_mass_accumulate, unit 2^-24), so sums reduced across ranks in any
 * order are exact. */

/* Optional learned projections of one layer: y = x W, each (d, d) row-major;
 * NULL = identity.  (wo is applied to the attention output.) */
typedef struct {
    const float *wq, *wk, *wv, *wo;
} folio_layer_weights_t;

/* Block means of tokens [t0, t1) of a document of n tokens: t0 % B == 0 and
 * (t1 % B == 0 or t1 == n).  X: (t1 - t0, d) rows of those tokens.
 * out: ((t1 - t0 + B - 1) / B, d) = rows [t0/B, ...) of level 1. */
folio_status_t folio_attn_block_sums(const float *X, uint64_t t0, uint64_t t1, uint64_t n,
                                     uint32_t B, uint32_t d, float *out);

/* nodes: (h->n_nodes, d) with level-1 rows filled; fills levels >= 2 as token-
 * count-weighted means of their children, in a fixed order. */
folio_status_t folio_hier_build_upper(const folio_hier_t *h, uint32_t d, float *nodes);

/* Summary keys for query blocks [qb0, qb1): sel (qb1-qb0, H, s_max), sel_n
 * (qb1-qb0, H).  p resolved for the document; s_max >= folio_pattern_summary_max.
 * node_q: (nb, d) mean query of each block (= level-1 summaries when Q = X),
 * node_k: (n_nodes, d) summary keys.  Order inside a block: hierarchical keys
 * level by level in index order, then routed keys by descending score.
 * Routing is exact: the k best blocks by the fp32 score (q . k, one fused
 * multiply-add chain over c = 0 .. d_h-1, as the CUDA route_topk_kernel),
 * ties to the lower index.  Cost: O(nb^2 * d) multiply-adds per layer.  In
 * AVX512-VNNI builds they are int8 estimates (4x the fp32 rate) with a
 * rigorous error bound, and only blocks that the bound cannot rule out are
 * re-scored in fp32 (~3 per selected block on random layer inputs), which
 * selects the same blocks in the same order; other builds score everything
 * in fp32.  With node_q == node_k and all query blocks (Q = K), up to 32768
 * blocks, each pair of candidate tiles is estimated once (the estimates are
 * symmetric; nb^2 / 16 bytes of tile maxima, <= 64 MiB).  At 1M tokens with
 * the default pattern: ~0.42 s CPU per layer with VNNI, 2.0 s without (the
 * attention kernel: ~11 s); bench/RESULTS.md. */
folio_status_t folio_attn_select(const folio_pattern_t *p, const folio_hier_t *h,
                                 const float *node_q, const float *node_k,
                                 uint32_t qb0, uint32_t qb1, int32_t *sel, int32_t *sel_n,
                                 int s_max, int threads);

#define FOLIO_MASS_ONE ((int64_t)1 << 24)
/* mass[sel[..]] += llrint(node_mass * FOLIO_MASS_ONE) for every selected slot. */
void folio_mass_accumulate(const int32_t *sel, const int32_t *sel_n, const float *node_mass,
                           uint32_t n_qblocks, int H, int s_max, int64_t *mass);

/* One layer over queries [q0, q1) (q0 % B == 0, q1 % B == 0 or q1 == n):
 * X: (nx, d) layer input rows [x0, x0+nx) incl. the W halo (see the kernel);
 * nodes: (h->n_nodes, d) summaries of this layer's input (all levels);
 * sel/sel_n from folio_attn_select for the blocks of [q0, q1);
 * w: optional projections (NULL = identity);
 * Xout: (q1 - q0, d) = rmsnorm_h(X + attn_out) for the queries (must not
 *   overlap X: the kernel reads X while Xout fills).
 * mass: optional (h->n_nodes) int64 accumulator of the node salience mass. */
folio_status_t folio_encoder_layer(const folio_pattern_t *p, const folio_hier_t *h,
                                   const folio_layer_weights_t *w,
                                   const float *X, uint64_t x0, uint64_t nx,
                                   uint64_t q0, uint64_t q1, const float *nodes,
                                   const int32_t *sel, const int32_t *sel_n, int s_max,
                                   float *Xout, int64_t *mass, int threads);

/* X (n, d) in place: each head slice scaled to L2 norm sqrt(d_h). */
void folio_rmsnorm_heads(float *X, uint64_t n, uint32_t H, uint32_t d_h);

/* Whole-document convenience: resolves p for n, runs p->layers layers of
 * the steps above over X0 (n, d).  Results owned by *out (free with
 * folio_encoded_clear). */
typedef struct {
    folio_pattern_t pattern;  /* resolved for this document                   */
    folio_hier_t hier;
    uint64_t n; uint32_t d;
    float *X;                 /* (n, d) final token vectors                    */
    float *nodes;             /* (hier.n_nodes, d) summaries of the final X    */
    int64_t *mass;            /* (hier.n_nodes) salience mass, all layers/heads */
} folio_encoded_t;

folio_status_t folio_encoder_run(const folio_pattern_t *p, const folio_layer_weights_t *w,
                                 const float *X0, uint64_t n, int threads, folio_encoded_t *out);
void folio_encoded_clear(folio_encoded_t *e);

/* ================================================================ outputs */

/* out[r] = L2-normalized mean of X rows [begin[r], end[r]) (zeros for an
 * empty range).  X: (n, d), out: (m, d).  Use for sentences, sections,
 * blocks and the whole document. */
folio_status_t folio_pool_ranges(const float *X, uint64_t n, uint32_t d, const uint32_t *begin,
                                 const uint32_t *end, uint32_t m, float *out);

/* Fixed-point pooled sums, the exact form used when a range is split over
 * ranks or devices: acc[r*d + j] += sum over tokens t of range r clipped to
 * [t0, t1) of llrint(X[t - t0][j] * FOLIO_POOL_ONE).  Integer sums do not
 * depend on the order or the split, so partial sums from any number of ranks
 * add up to the same value.  X: rows of tokens [t0, t1); begin/end: (m)
 * ranges in document tokens; acc: (m, d), added to.  Ranges may be empty or
 * lie outside [t0, t1) (they add nothing).  (|x| <= sqrt(d_h) after the
 * per-head normalization, so 2^32 leaves room for 2^27 tokens per range.) */
#define FOLIO_POOL_ONE 4294967296.0
void folio_pool_fixed(const float *X, uint64_t t0, uint64_t t1, uint32_t d, const uint32_t *begin,
                      const uint32_t *end, uint64_t m, int64_t *acc);
/* Finishes complete fixed-point sums: out[r] = L2-normalized mean of range
 * r, i.e. acc / FOLIO_POOL_ONE / (end - begin) in double, rounded to float,
 * then scaled by (float)(1 / sqrt(sum of squares)) accumulated in double
 * with fma in column order (zeros for an empty range or a zero sum).
 * acc: (m, d) complete sums; out: (m, d). */
void folio_pool_finish(const int64_t *acc, const uint32_t *begin, const uint32_t *end, uint64_t m, uint32_t d,
                       float *out);

/* Attention-derived salience per range (sentence).  The mass a node received
 * (sum over layers, heads and queries of the softmax weight on it) is spread
 * evenly over the tokens under it; a token's salience is the sum over its
 * ancestors; a sentence's salience is the mean over its tokens divided by the
 * document mean over all tokens (1 = average; 0 if nothing attends through
 * summaries, e.g. a single-block document). out: (m). */
folio_status_t folio_salience_ranges(const folio_hier_t *h, const int64_t *mass,
                                     const uint32_t *begin, const uint32_t *end, uint32_t m,
                                     float *out);

/* ================================================================ metrics */

/* Dense attention statistics of one document (first layer, Q = K = V = X
 * (n, H*d_h), scale), computed once and shared by every pattern evaluated on
 * it: the dense output (n, d), and for every query and head the softmax mass
 * on each key block of B tokens ((n, H, ceil(n/B)) floats: O(n^2 H / B)
 * memory, meant for n <= ~32k).  Opaque; create/destroy. */
typedef struct folio_dense_stats folio_dense_stats_t;
folio_status_t folio_dense_stats_create(const float *X, uint64_t n, uint32_t H, uint32_t d_h, uint32_t B,
                                        float scale, int threads, folio_dense_stats_t **out);
void folio_dense_stats_destroy(folio_dense_stats_t **s);
/* Milliseconds the dense output took (the fast kernel with W = n). */
double folio_dense_stats_ms(const folio_dense_stats_t *s);

/* Pattern quality on one document (first layer, Q = K = V = X (n, d)):
 * fidelity = 1 - ||O_sparse - O_dense|| / ||O_dense|| (Frobenius, dense =
 * plain attention over all tokens, no summaries); recall = mean over queries
 * and heads of the dense softmax mass on tokens the pattern covers (window
 * tokens and tokens under any selected summary node — for hier, whose keys
 * partition the document, this is 1 by construction); recall_fine counts only
 * window tokens and level-1 (block) nodes, so it shows what the fine keys
 * (window, sibling blocks, routed blocks) catch; keys = mean/max keys per
 * query; ms_sparse = summaries + selection + sparse kernel of one layer.
 * dense: from folio_dense_stats_create with the same heads, head_dim, block
 * and scale as p resolved for n, or NULL (computed here, slow). */
typedef struct {
    double fidelity, recall, recall_fine, keys_mean, keys_max, ms_sparse, ms_dense;
} folio_pattern_quality_t;

folio_status_t folio_pattern_quality(const folio_pattern_t *p, const float *X, uint64_t n,
                                     const folio_dense_stats_t *dense, int threads,
                                     folio_pattern_quality_t *q);
/* Plain dense attention over all n tokens (the fast kernel with W = n). */
folio_status_t folio_attn_dense_fast(const float *X, uint64_t n, uint32_t H, uint32_t d_h,
                                     float scale, int threads, float *out);

/* ================================================================ probe */

/* Measured single-core fp32 FMA peak in GFLOP/s (register-resident FMA
 * chains, widest vectors the compiler gives; ~50 ms). */
double folio_fma_peak_gflops(void);

#ifdef __cplusplus
}
#endif
#endif /* FOLIO_ATTN_H */
