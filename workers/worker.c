/* workers/worker.c — the CPU worker: one document at a time through the
 * encoder, then pooling into sentence/section/document vectors and salience.
 * Buffers grow to the largest document seen and are reused. */
#include "workers_internal.h"

#include <stdlib.h>
#include <string.h>

struct folio_worker {
    folio_worker_cfg_t cfg;
    char spec[FOLIO_PATTERN_SPEC_MAX];
    uint32_t d;
    float *sent; size_t sent_cap;      /* (n_sents, d)                      */
    float *sec; size_t sec_cap;        /* (n_sections, d)                   */
    float *nodes; size_t nodes_cap;    /* (n_nodes + 1, d) summaries; rows [0, n_blocks) the block vectors */
    float *fin; size_t fin_cap;        /* ranks > 0: finished pooled rows on their way to rank 0 */
    float *docv;                       /* (d)                               */
    float *sal; size_t sal_cap;        /* (n_sents)                         */
    uint32_t *rb, *re; size_t r_cap;   /* range begin/end scratch           */
    folio_gpu_t *gpu;                  /* non-NULL: layers run on the device */
    bool profile;                      /* FOLIO_PROFILE set: stage timings   */
};

/* Every buffer grown here is rewritten whole by the next document, so the
 * old contents are not kept (realloc would copy up to hundreds of MB). */
static folio_status_t grow_f(float **p, size_t *cap, size_t need)
{
    if (need <= *cap) return FOLIO_OK;
    free(*p);
    *cap = 0;
    *p = malloc(need * sizeof **p);
    FOLIO_CHECK_ALLOC(*p);
    *cap = need;
    return FOLIO_OK;
}

folio_status_t folio_worker_create(const folio_worker_cfg_t *cfg, folio_worker_t **out)
{
    *out = NULL;
    char err[256];
    FOLIO_CHECK_GENERIC(folio_pattern_validate(&cfg->pattern, err, sizeof err) == FOLIO_OK,
                        FOLIO_ERR_ARG, "invalid pattern: %s", err);
    folio_worker_t *w = calloc(1, sizeof *w);
    FOLIO_CHECK_ALLOC(w);
    w->profile = getenv("FOLIO_PROFILE") != NULL;
    if (cfg->backend != FOLIO_BACKEND_CPU) {
        folio_status_t gst = folio_gpu_create(cfg->device, &cfg->pattern, cfg->long_docs, &w->gpu);
        if (gst != FOLIO_OK && cfg->backend == FOLIO_BACKEND_CUDA) {
            folio_log(FOLIO_LOG_ERROR, "--backend cuda: %s", gst == FOLIO_ERR_NO_DEVICE
                      ? "no usable CUDA device (or this build has no CUDA)"
                      : gst == FOLIO_ERR_UNSUPPORTED ? "the CUDA kernels need head_dim=64, block=64 and no sumbias"
                      : folio_status_str(gst));
            free(w);
            return gst;
        }
        if (gst != FOLIO_OK && cfg->announce)
            folio_log(FOLIO_LOG_INFO, "backend auto: %s, using the CPU",
                      gst == FOLIO_ERR_NO_DEVICE ? "no CUDA device"
                      : gst == FOLIO_ERR_UNSUPPORTED ? "pattern not supported by the CUDA kernels"
                      : folio_status_str(gst));
        if (gst == FOLIO_OK && cfg->announce) folio_log(FOLIO_LOG_INFO, "backend: CUDA device %d", cfg->device);
    }

    w->cfg = *cfg;
    w->d = folio_pattern_dim(&cfg->pattern);
    folio_pattern_print(&cfg->pattern, w->spec, sizeof w->spec);
    w->docv = malloc(w->d * sizeof *w->docv);
    if (!w->docv) { free(w); return FOLIO_ERR_NOMEM; }
    *out = w;
    return FOLIO_OK;
}

void folio_worker_destroy(folio_worker_t **pw)
{
    if (!pw || !*pw) return;
    folio_worker_t *w = *pw;
    free(w->sent); free(w->sec); free(w->nodes); free(w->fin); free(w->docv); free(w->sal);
    free(w->rb); free(w->re);
    folio_gpu_destroy(&w->gpu);
    free(w);
    *pw = NULL;
}

const char *folio_worker_pattern_spec(const folio_worker_t *w) { return w->spec; }
bool folio_worker_on_gpu(const folio_worker_t *w) { return w->gpu != NULL; }

/* Over GPUs a split document's results travel device to device to rank
 * 0 (NCCL, worker_cuda.c), not through the MPI result gathers. */
static bool results_on_device(const folio_worker_t *w, int P) { return w->gpu && P > 1; }

static folio_status_t ranges(folio_worker_t *w, size_t m)
{
    if (m <= w->r_cap) return FOLIO_OK;
    uint32_t *b = realloc(w->rb, m * sizeof *b);
    FOLIO_CHECK_ALLOC(b);
    w->rb = b;
    uint32_t *e = realloc(w->re, m * sizeof *e);
    FOLIO_CHECK_ALLOC(e);
    w->re = e;
    w->r_cap = m;
    return FOLIO_OK;
}

folio_status_t folio_worker_resolve(const folio_worker_t *w, uint64_t n, folio_pattern_t *out)
{
    return folio_pattern_resolve(&w->cfg.pattern, n, out);
}

/* Pooled L2-normalized means of token ranges, accumulated in fixed point so
 * that a range split over ranks sums to exactly the same value. */
/* Fixed-point sum of rows [b, e) of X (local rows from t0) into a[d]. */
static void pool_rows(const float *X, uint64_t t0, uint64_t b, uint64_t e, uint32_t d, int64_t *a)
{
    const uint32_t b32 = (uint32_t)b, e32 = (uint32_t)e;
    folio_pool_fixed(X, t0, e, d, &b32, &e32, 1, a);
}

/* Ranges are independent (each writes its own row) and integer sums are
 * exact, so any schedule gives the same result.  Short ranges are one task
 * each; a long range (a section, the whole document) is cut into chunks
 * summed in parallel into private rows, then added up. */
enum { POOL_CHUNK = 8192 };
static void pool_partial(const float *X, uint64_t t0, uint64_t t1, uint32_t d, const uint32_t *rb,
                         const uint32_t *re, uint64_t lo, uint64_t cnt, int64_t *acc)
{
#pragma omp parallel for schedule(dynamic, 16) if (cnt > 64)
    for (uint64_t r = 0; r < cnt; r++) {
        uint64_t b = rb[lo + r] > t0 ? rb[lo + r] : t0, e = re[lo + r] < t1 ? re[lo + r] : t1;
        if (e > b && e - b <= POOL_CHUNK) pool_rows(X, t0, b, e, d, acc + r * d);
    }
    for (uint64_t r = 0; r < cnt; r++) {
        uint64_t b = rb[lo + r] > t0 ? rb[lo + r] : t0, e = re[lo + r] < t1 ? re[lo + r] : t1;
        if (e <= b || e - b <= POOL_CHUNK) continue;
        uint64_t nc = (e - b + POOL_CHUNK - 1) / POOL_CHUNK;
        int64_t *part = calloc(nc * d, sizeof *part);
        if (!part) { pool_rows(X, t0, b, e, d, acc + r * d); continue; } /* slow but right */
#pragma omp parallel for schedule(dynamic, 1)
        for (uint64_t c = 0; c < nc; c++) {
            uint64_t cb = b + c * POOL_CHUNK, ce = cb + POOL_CHUNK < e ? cb + POOL_CHUNK : e;
            pool_rows(X, t0, cb, ce, d, part + c * d);
        }
        for (uint64_t c = 0; c < nc; c++)
            for (uint32_t j = 0; j < d; j++) acc[r * d + j] += part[c * d + j];
        free(part);
    }
}


/* First and one-past-last range index intersecting tokens [t0, t1): ranges
 * are in order and non-overlapping (sentences, sections). */
static void ranges_hit(const uint32_t *rb, const uint32_t *re, uint64_t m, uint64_t t0, uint64_t t1,
                       uint64_t *lo, uint64_t *hi)
{
    uint64_t a = 0, b = m;
    while (a < b) { /* first with re > t0 */
        uint64_t mid = (a + b) / 2;
        if (re[mid] > t0) b = mid; else a = mid + 1;
    }
    uint64_t e = a;
    while (e < m && rb[e] < t1) e++;
    *lo = a;
    *hi = e > a ? e : a;
}

/* Rank 0's side of a pooled-ranges gather: every rank's header (its
 * status and ranges) with the partial sums of the ranges a rank boundary
 * cuts (at most two per rank), added up per range and finished once all
 * have arrived; the finished rows travel apart (fx_gather_spans), straight
 * into their place in out. */
typedef struct {
    uint64_t m;          /* ranges in all                            */
    uint32_t d;
    int64_t *pacc;       /* (np_cap, d) partial sums                 */
    uint64_t *pidx;      /* (np_cap) their range index               */
    size_t np, np_cap;
    uint64_t *spans;     /* (P, 2) every rank's [lo, hi)             */
    folio_status_t remote; /* first failure reported by a rank       */
} pooled_gather_t;

/* blob: u64 {status, lo, hi, wlo, whi}, then int64 rows of the ranges
 * [lo, wlo) and [whi, hi). */
enum { POOL_HDR = 5 };

static folio_status_t pooled_take(void *ctx, int rank, const void *blob, size_t bytes)
{
    pooled_gather_t *g = ctx;
    const uint32_t d = g->d;
    uint64_t hd[POOL_HDR];
    FOLIO_CHECK_GENERIC(bytes >= sizeof hd, FOLIO_ERR_INTERNAL, "pooled results of rank %d: short blob", rank);
    memcpy(hd, blob, sizeof hd);
    g->spans[2 * rank] = g->spans[2 * rank + 1] = 0;
    if (hd[0] != FOLIO_OK) {
        if (g->remote == FOLIO_OK) g->remote = (folio_status_t)hd[0];
        return FOLIO_OK;
    }
    const uint64_t lo = hd[1], hi = hd[2], wlo = hd[3], whi = hd[4];
    const uint64_t npart = (wlo - lo) + (hi - whi);
    FOLIO_CHECK_GENERIC(lo <= wlo && wlo <= whi && whi <= hi && hi <= g->m && bytes == sizeof hd + npart * d * sizeof(int64_t),
                        FOLIO_ERR_INTERNAL, "pooled results of rank %d: bad blob", rank);
    g->spans[2 * rank] = lo;
    g->spans[2 * rank + 1] = hi;
    const char *p = (const char *)blob + sizeof hd;
    for (uint64_t r = lo; r < hi; r++) {
        if (r == wlo) r = whi;
        if (r >= hi) break;
        size_t k = 0;
        while (k < g->np && g->pidx[k] != r) k++;
        if (k == g->np) {
            if (g->np == g->np_cap) {
                size_t nc = g->np_cap ? 2 * g->np_cap : 8;
                int64_t *a = realloc(g->pacc, nc * d * sizeof *a);
                FOLIO_CHECK_ALLOC(a);
                g->pacc = a;
                uint64_t *ix = realloc(g->pidx, nc * sizeof *ix);
                FOLIO_CHECK_ALLOC(ix);
                g->pidx = ix;
                g->np_cap = nc;
            }
            memset(g->pacc + k * d, 0, d * sizeof *g->pacc);
            g->pidx[k] = r;
            g->np++;
        }
        int64_t row[d];
        memcpy(row, p, d * sizeof row[0]);
        p += d * sizeof row[0];
        for (uint32_t j = 0; j < d; j++) g->pacc[k * d + j] += row[j];
    }
    return FOLIO_OK;
}

/* Pools ranges [rb, re) of X (local rows [t0, t1)) into out (m rows) on
 * rank 0.  A range that lies wholly in this rank's tokens is finished here
 * (its fixed-point sum is complete), so only a float row travels; a range
 * cut by a rank boundary sends its partial sum, which rank 0 adds up
 * exactly before finishing it the same way.  Results do not depend on the
 * split.  The finished rows are written once where they end up: on rank 0
 * into out itself, on the others into the worker's reusable scratch, from
 * which MPI moves them into rank 0's out (a long document's sentence
 * vectors are hundreds of MB; every extra buffer was fresh memory to fault
 * in and copy through, on the single writer). */
static folio_status_t pool_ranges_x(folio_worker_t *w, folio_exchange_t *x, const float *X, uint64_t t0,
                                    uint64_t t1, uint32_t d, const uint32_t *rb, const uint32_t *re, uint64_t m,
                                    float *out)
{
    if (m == 0) return FOLIO_OK;
    const int me = folio_exchange_rank(x), P = folio_exchange_size(x);
    uint64_t lo, hi;
    ranges_hit(rb, re, m, t0, t1, &lo, &hi);
    uint64_t wlo = lo, whi = hi;
    while (wlo < hi && rb[wlo] < t0) wlo++;
    while (whi > wlo && re[whi - 1] > t1) whi--;
    const uint64_t nfin = whi - wlo, npart = (wlo - lo) + (hi - whi);
    const size_t bytes = POOL_HDR * sizeof(uint64_t) + npart * d * sizeof(int64_t);
    char *blob = malloc(bytes);
    folio_status_t pst = blob ? FOLIO_OK : FOLIO_ERR_NOMEM;
    float *fin = NULL;
    /* over GPUs a rank's finished rows stay on its device (folio_gpu_gather_spans) */
    const bool on_dev = results_on_device(w, P);
    if (pst == FOLIO_OK) {
        if (me == 0) fin = out + wlo * d;
        else if (on_dev) fin = NULL;
        else if ((pst = grow_f(&w->fin, &w->fin_cap, nfin > 0 ? nfin * d : 1)) == FOLIO_OK) fin = w->fin;
    }
    char *part = blob ? blob + POOL_HDR * sizeof(uint64_t) : NULL;
    if (pst == FOLIO_OK && w->gpu) {
        /* complete ranges finished on the device; only floats come back */
        pst = folio_gpu_pool_ranges(w->gpu, rb + lo, re + lo, hi - lo, wlo - lo, whi - lo, fin, part);
    } else if (pst == FOLIO_OK) {
        int64_t *mine = calloc((hi - lo) * d + 1, sizeof *mine);
        if (!mine) pst = FOLIO_ERR_NOMEM;
        if (pst == FOLIO_OK) pool_partial(X, t0, t1, d, rb, re, lo, hi - lo, mine);
        if (pst == FOLIO_OK) {
            folio_pool_finish(mine + (wlo - lo) * d, rb + wlo, re + wlo, nfin, d, fin);
            if (wlo > lo) memcpy(part, mine, (wlo - lo) * d * sizeof *mine);
            if (hi > whi) memcpy(part + (wlo - lo) * d * sizeof *mine, mine + (whi - lo) * d,
                                 (hi - whi) * d * sizeof *mine);
        }
        free(mine);
    }
    uint64_t hd[POOL_HDR] = {(uint64_t)pst, lo, hi, wlo, whi};
    size_t send = bytes;
    if (pst != FOLIO_OK) { /* still take part in both gathers (a header, no rows), so no rank waits */
        hd[1] = hd[2] = hd[3] = hd[4] = 0;
        send = sizeof hd;
        wlo = whi = 0;
    }
    if (blob) memcpy(blob, hd, sizeof hd);
    pooled_gather_t g = {m, d, NULL, NULL, 0, 0, NULL, FOLIO_OK};
    folio_status_t st = FOLIO_OK;
    if (me == 0) {
        g.spans = calloc(2 * (size_t)P, sizeof *g.spans);
        if (!g.spans) st = FOLIO_ERR_NOMEM;
    }
    /* a rank that cannot gather still sends (rank 0 would otherwise block) */
    folio_status_t gst = fx_gather_each(x, blob ? (const void *)blob : hd, blob ? send : sizeof hd,
                                        st == FOLIO_OK ? pooled_take : NULL, &g);
    if (st == FOLIO_OK) st = gst;
    gst = on_dev ? folio_gpu_gather_spans(w->gpu, x, wlo, whi, m, out) : fx_gather_spans(x, fin, wlo, whi, d, m, out);
    if (st == FOLIO_OK) st = gst;
    free(blob);
    if (st == FOLIO_OK && g.remote != FOLIO_OK) st = g.remote;
    if (st == FOLIO_OK && pst != FOLIO_OK) st = pst;
    if (st == FOLIO_OK && me == 0) {
        /* ranges no rank holds (empty ones at a boundary) are zero; the
         * ranks' [lo, hi) come in token order */
        uint64_t next = 0;
        for (int r = 0; r < P; r++) {
            if (g.spans[2 * r + 1] <= g.spans[2 * r]) continue;
            if (g.spans[2 * r] > next) memset(out + next * d, 0, (g.spans[2 * r] - next) * d * sizeof *out);
            if (g.spans[2 * r + 1] > next) next = g.spans[2 * r + 1];
        }
        if (m > next) memset(out + next * d, 0, (m - next) * d * sizeof *out);
        for (size_t k = 0; k < g.np; k++)
            folio_pool_finish(g.pacc + k * d, rb + g.pidx[k], re + g.pidx[k], 1, d, out + g.pidx[k] * d);
    }
    free(g.pacc);
    free(g.pidx);
    free(g.spans);
    return st;
}

/* Query rows of one folio_encoder_layer call on the CPU.  The layer's output
 * goes back into X chunk by chunk, so that no second (len, d) array is
 * held (it was half of a long document's memory: 1 KB a token at d = 256).
 * A chunk's output is written back once the next chunk has been computed:
 * that one's window keys reach W <= LAYER_CHUNK rows into it, and no later
 * chunk reaches that far back.  Queries are independent (the kernel shares
 * no arithmetic between blocks, node mass adds up in exact integers), so
 * the results are bit-identical to one call over all the queries. */
enum { LAYER_CHUNK = 65536 };

static uint64_t layer_chunk_rows(const folio_pattern_t *p)
{
    uint64_t c = p->window > LAYER_CHUNK ? p->window : LAYER_CHUNK;
    return (c + p->block - 1) / p->block * p->block;
}

/* The L layers on the CPU: X (nx, d) holds the layer-0 input with halos and
 * ends holding the last layer's output in its middle rows.  Xout: two
 * (layer_chunk_rows, d) buffers, one after the other. */
static folio_status_t layers_cpu(folio_worker_t *w, folio_exchange_t *x, const folio_layer_span_t *sp,
                                 float *X, float *Xout, float *nodes, int32_t *sel, int32_t *seln,
                                 int64_t *mass)
{
    const folio_pattern_t *p = sp->p;
    const uint32_t d = sp->d, B = p->block, H = p->heads;
    const uint64_t len = sp->t1 - sp->t0, hl = sp->hl, hr = sp->hr;
    const uint64_t *row0 = sp->row0;
    const uint64_t C = layer_chunk_rows(p), W = p->window, xe = sp->x0 + sp->nx;
    const size_t smx = sp->s_max > 0 ? (size_t)sp->s_max : 1;
    folio_status_t st = FOLIO_OK;
    for (uint32_t l = 0; st == FOLIO_OK && l < p->layers; l++) {
        st = folio_attn_block_sums(X + hl * d, sp->t0, sp->t1, sp->n, B, d, nodes + (size_t)sp->qb0 * d);
        if (st == FOLIO_OK) st = fx_allgather_rows(x, nodes + (size_t)sp->qb0 * d, row0, d, nodes);
        if (st == FOLIO_OK) st = folio_hier_build_upper(sp->h, d, nodes);
        if (st == FOLIO_OK)
            st = folio_attn_select(p, sp->h, nodes, nodes, sp->qb0, sp->qb1, sel, seln, sp->s_max, w->cfg.threads);
        uint64_t pend0 = 0, pend1 = 0; /* computed rows not yet in X */
        float *pend = NULL;
        for (uint64_t c0 = sp->t0, k = 0; st == FOLIO_OK && c0 < sp->t1; c0 += C, k ^= 1) {
            const uint64_t c1 = c0 + C < sp->t1 ? c0 + C : sp->t1;
            const uint64_t r0 = c0 - sp->x0 > W ? c0 - W : sp->x0, r1 = c1 + W < xe ? c1 + W : xe;
            const size_t qb = (size_t)(c0 / B - sp->qb0);
            float *out = Xout + k * C * d;
            st = folio_encoder_layer(p, sp->h, NULL, X + (r0 - sp->x0) * d, r0, r1 - r0, c0, c1, nodes,
                                     sel + qb * H * smx, seln + qb * H, sp->s_max, out, mass, w->cfg.threads);
            if (st != FOLIO_OK) break;
            if (pend) memcpy(X + (pend0 - sp->x0) * d, pend, (pend1 - pend0) * d * sizeof *X);
            pend = out; pend0 = c0; pend1 = c1;
        }
        if (st != FOLIO_OK) break;
        if (pend) memcpy(X + (pend0 - sp->x0) * d, pend, (pend1 - pend0) * d * sizeof *X);
        if (l + 1 < p->layers && sp->P > 1)
            st = fx_halo(x, X + hl * d, X + (hl + len - hr) * d, X, X + (hl + len) * d, hl, hr, d);
    }
    return st;
}

folio_status_t folio_worker_result_shape(const folio_worker_t *w, const folio_doc_t *doc, uint32_t *d,
                                         uint32_t *n_blocks)
{
    folio_pattern_t p;
    FOLIO_TRY(folio_pattern_resolve(&w->cfg.pattern, doc->n_tokens, &p));
    *d = w->d;
    *n_blocks = (uint32_t)((doc->n_tokens + p.block - 1) / p.block);
    return FOLIO_OK;
}

folio_status_t folio_worker_encode_range(folio_worker_t *w, folio_exchange_t *x,
                                         const folio_doc_t *doc, const float *weights,
                                         uint64_t t0, uint64_t t1, const folio_result_dest_t *dest,
                                         folio_doc_results_t *res)
{
    memset(res, 0, sizeof *res);
    double tm_start = folio_now();
    const double ex0 = folio_exchange_seconds(x), ga0 = folio_exchange_gather_seconds(x);
    const uint64_t n = doc->n_tokens;
    const uint32_t d = w->d;
    const int P = folio_exchange_size(x), me = folio_exchange_rank(x);
    FOLIO_CHECK_GENERIC(n > 0 && t0 < t1 && t1 <= n, FOLIO_ERR_ARG, "%s: bad token range [%llu, %llu) of %llu",
                        doc->id, (unsigned long long)t0, (unsigned long long)t1, (unsigned long long)n);
    folio_pattern_t p;
    FOLIO_TRY(folio_pattern_resolve(&w->cfg.pattern, n, &p));
    folio_hier_t h;
    FOLIO_TRY(folio_hier_init(&h, n, p.block, p.group));
    const uint32_t B = p.block, nb = h.count[1];
    FOLIO_CHECK_GENERIC(t0 % B == 0 && (t1 % B == 0 || t1 == n), FOLIO_ERR_ARG,
                        "%s: range not at block boundaries", doc->id);
    uint64_t W = p.window < n ? p.window : n;

    /* Everyone's range: block rows for the allgather, halo sizes. */
    uint64_t mine2[2] = {t0, t1};
    uint64_t *rng = malloc(2 * (size_t)P * sizeof *rng + ((size_t)P + 1) * sizeof(uint64_t));
    FOLIO_CHECK_ALLOC(rng);
    uint64_t *row0 = rng + 2 * P;
    folio_status_t st = fx_allgather_u64(x, mine2, 2, rng);
    for (int r = 0; st == FOLIO_OK && r < P; r++) {
        row0[r] = rng[2 * r] / B;
        bool ok = rng[2 * r] < rng[2 * r + 1] && (r == 0 ? rng[0] == 0 : rng[2 * r] == rng[2 * r - 1]);
        if (P > 1 && rng[2 * r + 1] - rng[2 * r] < W) ok = false;
        if (!ok) {
            folio_log(FOLIO_LOG_ERROR, "%s: rank ranges do not tile the document in >= W pieces", doc->id);
            st = FOLIO_ERR_ARG;
        }
    }
    row0[P] = nb;
    if (st == FOLIO_OK && rng[2 * P - 1] != n) st = FOLIO_ERR_ARG;
    if (st != FOLIO_OK) { free(rng); return st; }

    const uint64_t hl = me > 0 ? W : 0, hr = me + 1 < P ? W : 0;
    const uint64_t x0 = t0 - hl, nx = hl + (t1 - t0) + hr, len = t1 - t0;
    const uint32_t qb0 = (uint32_t)(t0 / B), qb1 = (uint32_t)((t1 + B - 1) / B);
    const int s_max = (int)folio_pattern_summary_max(&p, n);
    const int H = (int)p.heads;
    float *X = NULL, *Xout = NULL, *nodes = NULL;
    int32_t *sel = NULL, *seln = NULL;
    int64_t *mass = NULL;
    /* The worker's own buffer, reused across documents: on rank 0 its block
     * rows are the result (no copy), and a long document's nodes are not
     * fresh pages to fault in again for every document. */
    st = grow_f(&w->nodes, &w->nodes_cap, ((size_t)h.n_nodes + 1) * d);
    nodes = w->nodes;
    mass = calloc((size_t)h.n_nodes + 1, sizeof *mass);
    if (st == FOLIO_OK && !mass) st = FOLIO_ERR_NOMEM;
    folio_layer_span_t sp = {&p, &h, n, d, t0, t1, x0, nx, hl, hr, qb0, qb1, s_max, P, row0};
    const uint32_t ns = doc->n_sents, nsec = doc->n_sections;
    /* The result tables (rank 0): the caller's, when it gives them (they are
     * its result message: nothing to copy afterwards, which on the single
     * writer was 0.01-0.02 s of a multi-million-token document), or the
     * worker's own.  Over GPUs even the block rows come from the device
     * straight into them. */
    float *t_sent = NULL, *t_sec = NULL, *t_sal = NULL, *t_doc = NULL, *t_blk = NULL;
    if (st == FOLIO_OK && me == 0 && dest) {
        uint32_t dd = 0, dnb = 0; /* the tables were sized by folio_worker_result_shape */
        if (folio_worker_result_shape(w, doc, &dd, &dnb) != FOLIO_OK || dd != d || dnb != nb) {
            folio_log(FOLIO_LOG_ERROR, "%s: result tables sized for %u x %u, the document has %u x %u", doc->id,
                      dnb, dd, nb, d);
            st = FOLIO_ERR_INTERNAL;
        }
    }
    if (st == FOLIO_OK && me == 0 && dest) {
        t_sent = dest->sent, t_sec = dest->sections, t_sal = dest->salience, t_doc = dest->doc, t_blk = dest->blocks;
    } else if (st == FOLIO_OK && me == 0) {
        st = grow_f(&w->sent, &w->sent_cap, (size_t)ns * d);
        if (st == FOLIO_OK) st = grow_f(&w->sal, &w->sal_cap, ns ? ns : 1);
        if (st == FOLIO_OK) st = grow_f(&w->sec, &w->sec_cap, (size_t)nsec * d);
        t_sent = w->sent, t_sec = w->sec, t_sal = w->sal, t_doc = w->docv;
    }
    double tm_embed = folio_now(), tm_layers = tm_embed;
    if (w->gpu) {
        /* Everything from the embedding to the final block means on the
         * device; X never comes back to the host.  Meanwhile the pages of
         * the pooled tables are faulted in (fresh ones for a document
         * longer than any before: hundreds of MB). */
        folio_prefault_t *pf = NULL;
        if (st == FOLIO_OK && me == 0) {
            void *reg[2] = {t_sent, t_sec};
            size_t bytes[2] = {(size_t)ns * d * sizeof(float), (size_t)nsec * d * sizeof(float)};
            folio_prefault_start(reg, bytes, 2, &pf);
        }
        if (st == FOLIO_OK) st = folio_gpu_encode(w->gpu, x, &sp, doc, weights, t_blk ? t_blk : nodes, mass);
        folio_prefault_join(&pf);
        tm_layers = folio_now(); /* "layers" = the whole device encode */
    } else {
        X = malloc(nx * d * sizeof *X);
        const uint64_t C = layer_chunk_rows(&p), crow = len < C ? len : C;
        Xout = malloc(2 * crow * d * sizeof *Xout); /* see layers_cpu */
        sel = malloc(((size_t)(qb1 - qb0) * H * (s_max > 0 ? s_max : 1)) * sizeof *sel);
        seln = malloc((size_t)(qb1 - qb0) * H * sizeof *seln);
        if (!X || !Xout || !sel || !seln) st = FOLIO_ERR_NOMEM;
        /* Layer 0 input, halo included: the embedding is per token, so each
         * rank embeds its halo rows itself instead of receiving them. */
        if (st == FOLIO_OK)
            st = folio_embed(doc->text, doc->tokens + x0, weights ? weights + x0 : NULL, (uint32_t)nx, d,
                             FOLIO_EMBED_SEED, X);
        tm_embed = folio_now();
        if (st == FOLIO_OK) st = layers_cpu(w, x, &sp, X, Xout, nodes, sel, seln, mass);
        tm_layers = folio_now();
        /* Block summaries of the final token vectors. */
        if (st == FOLIO_OK) st = folio_attn_block_sums(X + hl * d, t0, t1, n, B, d, nodes + (size_t)qb0 * d);
    }
    /* Every rank's block vectors (stored by rank 0 only) and the salience
     * mass summed on rank 0 (over GPUs, folio_gpu_encode gathered both). */
    if (!results_on_device(w, P)) {
        if (st == FOLIO_OK) st = fx_gather_rows(x, nodes + (size_t)qb0 * d, row0, d, nodes);
        if (st == FOLIO_OK) st = fx_reduce_i64(x, mass, h.n_nodes);
    }
    if (st == FOLIO_OK && t_blk && !w->gpu) folio_memcpy_par(t_blk, nodes, (size_t)nb * d * sizeof *nodes, 0);
    const double tm_blocks = folio_now();

    size_t m = ns > nsec ? ns : nsec;
    if (st == FOLIO_OK) st = ranges(w, m ? m : 1);
    /* Sentences, then sections (token range from their first sentence's first
     * token to their last sentence's last token), then the whole document. */
    for (uint32_t i = 0; st == FOLIO_OK && i < ns; i++) { /* failed: rb may not exist */
        w->rb[i] = doc->sents[i].tok_begin;
        w->re[i] = doc->sents[i].tok_end;
    }
    const float *Xmid = X ? X + hl * d : NULL; /* NULL on the GPU: X is on the device */
    const double tm_sent0 = folio_now();
    if (st == FOLIO_OK) st = pool_ranges_x(w, x, Xmid, t0, t1, d, w->rb, w->re, ns, t_sent);
    const double tm_sent1 = folio_now();
    if (st == FOLIO_OK && me == 0) st = folio_salience_ranges(&h, mass, w->rb, w->re, ns, t_sal);
    /* Sections partition the sentences, so the non-empty ones are in token
     * order and do not overlap: they pool like sentences -- a rank sends the
     * sections it holds whole, finished, and the partial sums of the (at
     * most two) its boundaries cut -- instead of every rank reducing a full
     * (n_sections, d) int64 table onto rank 0 (2 KB a section from every
     * rank, on the single writer).  Empty sections are zero rows. */
    if (st == FOLIO_OK) {
        uint32_t nne = 0;
        for (uint32_t i = 0; i < nsec; i++) {
            const folio_section_t *s = &doc->sections[i];
            if (s->sent_end <= s->sent_begin) continue;
            w->rb[nne] = doc->sents[s->sent_begin].tok_begin;
            w->re[nne] = doc->sents[s->sent_end - 1].tok_end;
            nne++;
        }
        float *sec_c = NULL; /* rank 0, when some are empty: the non-empty ones' rows */
        if (me == 0 && nne < nsec) {
            sec_c = malloc(((size_t)nne * d + 1) * sizeof *sec_c);
            if (!sec_c) st = FOLIO_ERR_NOMEM;
        }
        if (st == FOLIO_OK) st = pool_ranges_x(w, x, Xmid, t0, t1, d, w->rb, w->re, nne, sec_c ? sec_c : t_sec);
        if (st == FOLIO_OK && sec_c) {
            for (uint32_t i = 0, k = 0; i < nsec; i++) {
                const folio_section_t *s = &doc->sections[i];
                if (s->sent_end > s->sent_begin) memcpy(t_sec + (size_t)i * d, sec_c + (size_t)k++ * d, d * sizeof *sec_c);
                else memset(t_sec + (size_t)i * d, 0, d * sizeof *sec_c);
            }
        }
        free(sec_c);
    }
    double tm_pool = folio_now();
    uint32_t all_b = 0, all_e = (uint32_t)n;
    if (st == FOLIO_OK) st = pool_ranges_x(w, x, Xmid, t0, t1, d, &all_b, &all_e, 1, me == 0 ? t_doc : w->docv);

    if (w->profile && n >= 65536)
        folio_log(FOLIO_LOG_INFO, "profile %s [%llu,%llu) of %llu: alloc+embed %.3fs, layers %.3fs (%s), "
                  "mass+pool %.3fs (blocks+mass %.3fs, sentences %.3fs), doc pool %.3fs; of which exchange %.3fs, "
                  "gathers+sync %.3fs", doc->id,
                  (unsigned long long)t0, (unsigned long long)t1, (unsigned long long)n, tm_embed - tm_start,
                  tm_layers - tm_embed, w->gpu ? "cuda (embed+layers+block means)" : "cpu", tm_pool - tm_layers,
                  tm_blocks - tm_layers, tm_sent1 - tm_sent0,
                  folio_now() - tm_pool, folio_exchange_seconds(x) - ex0, folio_exchange_gather_seconds(x) - ga0);
    if (st == FOLIO_OK && me == 0) {
        res->pattern = w->spec;
        res->d = d;
        res->n_blocks = nb;
        res->sent_vecs = t_sent;
        res->block_vecs = t_blk ? t_blk : w->nodes;
        res->section_vecs = t_sec;
        res->doc_vec = t_doc;
        res->salience = t_sal;
    }
    free(X); free(Xout); free(sel); free(seln); free(mass); free(rng);
    return st;
}

folio_status_t folio_worker_encode(folio_worker_t *w, const folio_doc_t *doc, const float *weights,
                                   const folio_result_dest_t *dest, folio_doc_results_t *res)
{
    folio_exchange_t *x = NULL;
    FOLIO_TRY(folio_exchange_create_local(&x));
    folio_status_t st = folio_worker_encode_range(w, x, doc, weights, 0, doc->n_tokens, dest, res);
    folio_exchange_destroy(&x);
    return st;
}
