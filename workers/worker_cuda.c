/* workers/worker_cuda.c — the GPU worker: a document (or a rank's share of
 * one) stays on the device from the embedding to the pooled sums; only the
 * text, token spans and IDF weights go up, and only block summaries, the
 * salience mass and fixed-point pooled sums come back.  Halos and block
 * summaries travel by NCCL between the GPUs that share a document.
 *
 * Per document: hashed embedding -> L layers, each on one stream: block
 * means -> (NCCL broadcast of every rank's block rows) -> upper hierarchy
 * levels -> summary-key selection -> bf16 copies of X and the nodes ->
 * fused block-sparse attention (tensor cores) -> residual + per-head RMS
 * normalization -> salience mass (int64 atomics, exact) -> (NCCL halo
 * exchange) ; then the final block means.  Pooling runs on demand over the
 * resident X (folio_gpu_pool_ranges).  Every kernel has its CPU reference in
 * attn/ and a test comparing them.
 *
 * One folio_gpu_t per worker (threads each have their own worker, stream and
 * buffers, so short documents from several threads overlap on the device).
 */
#include "workers_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../attn/attn_cuda.h"

#ifdef FOLIO_HAVE_CUDA
#include <cuda_runtime.h>
#include <nccl.h>
#include <omp.h>
#include <pthread.h>

#define FOLIO_CHECK_CUDA(call)                                                          \
    do {                                                                                \
        cudaError_t folio_cu_rc_ = (call);                                              \
        FOLIO_CHECK_GENERIC(folio_cu_rc_ == cudaSuccess, FOLIO_ERR_CUDA, "CUDA: %s: %s", \
                            #call, cudaGetErrorString(folio_cu_rc_));                   \
    } while (0)
#define FOLIO_CHECK_NCCL(call)                                                          \
    do {                                                                                \
        ncclResult_t folio_nc_rc_ = (call);                                             \
        FOLIO_CHECK_GENERIC(folio_nc_rc_ == ncclSuccess, FOLIO_ERR_NCCL, "NCCL: %s: %s", \
                            #call, ncclGetErrorString(folio_nc_rc_));                   \
    } while (0)

enum { TRACE_MAX = 48 };

struct folio_gpu {
    int device;
    cudaStream_t stream;
    float *X; size_t X_cap;          /* (nx, d) fp32 layer input, halos incl. */
    uint16_t *Xb; size_t Xb_cap;     /* (nx, d) bf16 copy for the kernel      */
    float *out; size_t out_cap;      /* (len, d) attention output             */
    float *nodes; size_t nodes_cap;  /* (n_nodes, d) fp32 summaries           */
    uint16_t *nodesb; size_t nodesb_cap;
    int32_t *sel; size_t sel_cap;    /* (nqb, H, s_max)                       */
    int32_t *seln; size_t seln_cap;  /* (nqb, H)                              */
    float *mass; size_t mass_cap;    /* (nqb, H, s_max) node mass per slot    */
    int64_t *nmass; size_t nmass_cap;/* (n_nodes) salience mass, fixed point  */
    char *text; size_t text_cap;     /* the tokens' bytes                     */
    folio_span_t *spans; size_t spans_cap; /* (nx) spans, rebased on text     */
    float *w; size_t w_cap;          /* (nx) IDF weights                      */
    uint32_t *items; size_t items_cap;   /* pooling work items (m, 3)         */
    int64_t *acc; size_t acc_cap;    /* pooled fixed-point sums               */
    float *fin; size_t fin_cap;      /* finished pooled vectors               */
    uint64_t fin_rows;               /* of them, kept for folio_gpu_gather_spans */
    float *gat; size_t gat_cap;      /* rank 0: other ranks' finished rows    */
    void *stage;                     /* pinned, 2 x STAGE_BYTES (d2h, h2d)    */
    cudaEvent_t stage_ev[2];
    bool stage_failed;               /* no pinned memory: plain copies        */
    int stage_next;                  /* the half h2d fills next               */
    uint32_t *fbe; size_t fbe_cap;   /* begin/end of the finished ranges      */
    int *redone;                     /* device: blocks x heads the attention kernel had to
                                        recompute (its slow path), told at the end: a
                                        wrong softmax reference shows only as time */
    uint32_t *h_items; size_t h_items_cap;
    /* geometry of the resident document (folio_gpu_pool_ranges) */
    uint64_t t0, t1, hl;
    uint32_t d;
    bool resident;
    /* FOLIO_PROFILE=2: a long document's timeline on this rank, for each
     * step when the host queued it and when the device finished it (an
     * event: no synchronization added, which would expose the host's
     * launch work), both as absolute CLOCK_MONOTONIC times so that the
     * ranks of one host compare: who waits for whom at each exchange, and
     * where the device waits for the host. */
    bool trace;
    int ntr;
    double tr_host[TRACE_MAX];
    const char *tr_name[TRACE_MAX];
    cudaEvent_t tr_ev[TRACE_MAX];
};

static void trace_mark(folio_gpu_t *g, const char *name)
{
    if (!g->trace || g->ntr >= TRACE_MAX) return;
    if (g->ntr == 0) cudaStreamSynchronize(g->stream); /* the origin: device and host at one time */
    cudaEventRecord(g->tr_ev[g->ntr], g->stream);
    g->tr_host[g->ntr] = folio_now();
    g->tr_name[g->ntr++] = name;
}

/* The timeline as one log line (after the stream is drained). */
static void trace_print(folio_gpu_t *g, const folio_layer_span_t *sp)
{
    if (!g->trace || g->ntr == 0 || sp->n < 65536) return;
    char line[4096];
    int o = snprintf(line, sizeof line, "profile timeline [%llu,%llu) start %.4f, step +device (+queued) ms:",
                     (unsigned long long)sp->t0, (unsigned long long)sp->t1, g->tr_host[0]);
    for (int i = 1; i < g->ntr && o > 0 && (size_t)o < sizeof line; i++) {
        float ms = 0.f;
        cudaEventElapsedTime(&ms, g->tr_ev[0], g->tr_ev[i]);
        o += snprintf(line + o, sizeof line - (size_t)o, " %s +%.1f (+%.1f)", g->tr_name[i], ms,
                      1e3 * (g->tr_host[i] - g->tr_host[0]));
    }
    folio_log(FOLIO_LOG_INFO, "%s", line);
}

static folio_status_t dgrow(void **p, size_t *cap, size_t bytes)
{
    if (bytes <= *cap) return FOLIO_OK;
    if (*p) cudaFree(*p);
    *p = NULL;
    *cap = 0;
    FOLIO_CHECK_CUDA(cudaMalloc(p, bytes));
    *cap = bytes;
    return FOLIO_OK;
}

static bool stage_ready(folio_gpu_t *g);

folio_status_t folio_gpu_create(int device, const folio_pattern_t *p, bool staging, folio_gpu_t **out)
{
    *out = NULL;
    if (!folio_cuda_available()) return FOLIO_ERR_NO_DEVICE;
    /* The CUDA kernel implements head_dim 64, block 64 and no summary bias. */
    if (p->head_dim != 64 || p->block != 64 || p->sumbias) return FOLIO_ERR_UNSUPPORTED;
    int n = 0;
    FOLIO_CHECK_CUDA(cudaGetDeviceCount(&n));
    if (n <= 0) return FOLIO_ERR_NO_DEVICE;
    folio_gpu_t *g = calloc(1, sizeof *g);
    FOLIO_CHECK_ALLOC(g);
    g->device = device % n;
    if (cudaSetDevice(g->device) != cudaSuccess || cudaStreamCreate(&g->stream) != cudaSuccess) {
        free(g);
        folio_log(FOLIO_LOG_ERROR, "CUDA: cannot use device %d", device % n);
        return FOLIO_ERR_CUDA;
    }
    folio_status_t st = folio_cuda_device_code_ok(g->device);
    if (st != FOLIO_OK) {
        cudaStreamDestroy(g->stream);
        free(g);
        return st;
    }
    if (cudaMalloc((void **)&g->redone, sizeof(int)) != cudaSuccess ||
        cudaMemset(g->redone, 0, sizeof(int)) != cudaSuccess) { /* a count only: go on without it */
        cudaGetLastError();
        cudaFree(g->redone);
        g->redone = NULL;
    }
    /* events belong to the current device: made after cudaSetDevice */
    const char *prof = getenv("FOLIO_PROFILE");
    g->trace = prof && atoi(prof) >= 2;
    for (int i = 0; g->trace && i < TRACE_MAX; i++)
        if (cudaEventCreate(&g->tr_ev[i]) != cudaSuccess) g->trace = false; /* no timeline, no failure */
    /* Pinning 32 MB and loading kernels take milliseconds: here, once, not
     * inside the first long document (a failure only means slower copies,
     * or kernels loaded at first use, later). */
    if (staging) {
        stage_ready(g);
        if (folio_cuda_preload() != FOLIO_OK) cudaGetLastError();
    }
    *out = g;
    return FOLIO_OK;
}

void folio_gpu_destroy(folio_gpu_t **pg)
{
    if (!pg || !*pg) return;
    folio_gpu_t *g = *pg;
    int redone = 0;
    if (g->redone && cudaMemcpy(&redone, g->redone, sizeof redone, cudaMemcpyDeviceToHost) == cudaSuccess &&
        redone > 0)
        folio_log(FOLIO_LOG_INFO, "GPU %d: %d query blocks x heads failed the attention kernel's softmax "
                  "check and were recomputed (its slow path)", g->device, redone);
    cudaFree(g->redone);
    cudaFree(g->X); cudaFree(g->Xb); cudaFree(g->out); cudaFree(g->nodes); cudaFree(g->nodesb);
    cudaFree(g->sel); cudaFree(g->seln); cudaFree(g->mass); cudaFree(g->nmass);
    cudaFree(g->text); cudaFree(g->spans); cudaFree(g->w); cudaFree(g->items); cudaFree(g->acc);
    cudaFree(g->fin); cudaFree(g->fbe); cudaFree(g->gat);
    if (g->stage) {
        cudaFreeHost(g->stage);
        cudaEventDestroy(g->stage_ev[0]);
        cudaEventDestroy(g->stage_ev[1]);
    }
    free(g->h_items);
    for (int i = 0; i < TRACE_MAX; i++)
        if (g->tr_ev[i]) cudaEventDestroy(g->tr_ev[i]);
    if (g->stream) cudaStreamDestroy(g->stream);
    free(g);
    *pg = NULL;
}

/* Large results to the host through a pinned double buffer: the device
 * writes one piece while host threads copy the previous one out.  A copy
 * from the device straight into pageable memory (malloc'd result tables,
 * fresh pages) runs at ~1.5 GB/s: 45 ms for the block vectors of a
 * 4M-token document on rank 0, longer than its attention layers take. */
enum { STAGE_BYTES = 16 << 20, STAGE_MIN = 4 << 20 };

static bool stage_ready(folio_gpu_t *g)
{
    if (g->stage) return true;
    if (g->stage_failed) return false;
    if (cudaMallocHost(&g->stage, 2 * (size_t)STAGE_BYTES) != cudaSuccess) {
        g->stage = NULL;
    } else if (cudaEventCreateWithFlags(&g->stage_ev[0], cudaEventDisableTiming) != cudaSuccess) {
        cudaFreeHost(g->stage);
        g->stage = NULL;
    } else if (cudaEventCreateWithFlags(&g->stage_ev[1], cudaEventDisableTiming) != cudaSuccess) {
        cudaEventDestroy(g->stage_ev[0]);
        cudaFreeHost(g->stage);
        g->stage = NULL;
    }
    if (!g->stage) {
        cudaGetLastError(); /* not sticky: the plain copy below works */
        g->stage_failed = true;
        folio_log(FOLIO_LOG_WARN, "CUDA: no pinned staging memory, device-to-host copies go direct (slower)");
    }
    return g->stage != NULL;
}

/* Whether a copy of `bytes` goes through the pinned stage.  Small ones and
 * those of thread workers (short documents, inside a parallel region) go
 * direct: sixteen workers each pinning 32 MB would cost more. */
static bool staged(folio_gpu_t *g, size_t bytes)
{
    return bytes >= STAGE_MIN && !omp_in_parallel() && stage_ready(g);
}

/* bytes from the device (after the stream's earlier work) into host dst;
 * returns when they are there. */
static folio_status_t d2h(folio_gpu_t *g, void *dst, const void *src, size_t bytes)
{
    if (!staged(g, bytes)) {
        if (bytes) FOLIO_CHECK_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, g->stream));
        FOLIO_CHECK_CUDA(cudaStreamSynchronize(g->stream));
        return FOLIO_OK;
    }
    const size_t nc = (bytes + STAGE_BYTES - 1) / STAGE_BYTES;
    for (size_t c = 0; c <= nc; c++) {
        if (c < nc) { /* piece c into half c & 1 (free: its last piece, c - 2, was copied out) */
            const size_t o = c * STAGE_BYTES, n = bytes - o < STAGE_BYTES ? bytes - o : STAGE_BYTES;
            char *half = (char *)g->stage + (c & 1) * (size_t)STAGE_BYTES;
            FOLIO_CHECK_CUDA(cudaMemcpyAsync(half, (const char *)src + o, n, cudaMemcpyDeviceToHost, g->stream));
            FOLIO_CHECK_CUDA(cudaEventRecord(g->stage_ev[c & 1], g->stream));
        }
        if (c > 0) { /* piece c - 1 out, while piece c travels */
            const size_t k = c - 1, o = k * STAGE_BYTES, n = bytes - o < STAGE_BYTES ? bytes - o : STAGE_BYTES;
            FOLIO_CHECK_CUDA(cudaEventSynchronize(g->stage_ev[k & 1]));
            folio_memcpy_par((char *)dst + o, (const char *)g->stage + (k & 1) * (size_t)STAGE_BYTES, n, 0);
        }
    }
    return FOLIO_OK;
}

/* bytes from host src to the device dst, ordered on the stream and
 * asynchronous (src may be reused on return): host threads copy a piece
 * into a pinned half while the previous piece travels.  The pageable copy
 * it replaces ran at a few GB/s and held the host: 14 ms for a 2M-token
 * document's text, spans and weights, before any kernel could start. */
static folio_status_t h2d(folio_gpu_t *g, void *dst, const void *src, size_t bytes)
{
    if (!staged(g, bytes)) {
        if (bytes) FOLIO_CHECK_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, g->stream));
        return FOLIO_OK;
    }
    for (size_t o = 0; o < bytes; o += STAGE_BYTES) {
        const size_t n = bytes - o < STAGE_BYTES ? bytes - o : STAGE_BYTES;
        const int h = g->stage_next;
        g->stage_next ^= 1;
        char *half = (char *)g->stage + (size_t)h * STAGE_BYTES;
        /* the half's last transfer (either direction: each is followed by
         * a record of its event) has finished with it */
        FOLIO_CHECK_CUDA(cudaEventSynchronize(g->stage_ev[h]));
        folio_memcpy_par(half, (const char *)src + o, n, 0);
        FOLIO_CHECK_CUDA(cudaMemcpyAsync((char *)dst + o, half, n, cudaMemcpyHostToDevice, g->stream));
        FOLIO_CHECK_CUDA(cudaEventRecord(g->stage_ev[h], g->stream));
    }
    return FOLIO_OK;
}

/* Block rows of every rank to every rank: one in-place broadcast per rank,
 * grouped (counts differ per rank, so not ncclAllGather). */
static folio_status_t nccl_allgather_rows(folio_exchange_t *x, folio_gpu_t *g, float *nodes,
                                          const uint64_t *row0, int P, uint32_t d)
{
    ncclComm_t c = (ncclComm_t)fx_nccl(x);
    /* Drain the stream first so the kernels before it are not counted as
     * exchange time. */
    FOLIO_CHECK_CUDA(cudaStreamSynchronize(g->stream));
    trace_mark(g, "exch in");
    double t = folio_now();
    FOLIO_CHECK_NCCL(ncclGroupStart());
    for (int r = 0; r < P; r++) {
        size_t cnt = (size_t)(row0[r + 1] - row0[r]) * d;
        float *buf = nodes + row0[r] * d;
        FOLIO_CHECK_NCCL(ncclBroadcast(buf, buf, cnt, ncclFloat, r, c, g->stream));
    }
    FOLIO_CHECK_NCCL(ncclGroupEnd());
    FOLIO_CHECK_CUDA(cudaStreamSynchronize(g->stream)); /* exchange time is measured */
    fx_add_seconds(x, folio_now() - t);
    trace_mark(g, "exch out");
    return FOLIO_OK;
}

static folio_status_t nccl_halo(folio_exchange_t *x, folio_gpu_t *g, const folio_layer_span_t *sp)
{
    ncclComm_t c = (ncclComm_t)fx_nccl(x);
    const int me = folio_exchange_rank(x), P = sp->P;
    const size_t d = sp->d, len = sp->t1 - sp->t0;
    float *X = g->X;
    FOLIO_CHECK_CUDA(cudaStreamSynchronize(g->stream));
    trace_mark(g, "halo in");
    double t = folio_now();
    FOLIO_CHECK_NCCL(ncclGroupStart());
    if (me > 0) {
        FOLIO_CHECK_NCCL(ncclSend(X + sp->hl * d, sp->hl * d, ncclFloat, me - 1, c, g->stream));
        FOLIO_CHECK_NCCL(ncclRecv(X, sp->hl * d, ncclFloat, me - 1, c, g->stream));
    }
    if (me + 1 < P) {
        FOLIO_CHECK_NCCL(ncclSend(X + (sp->hl + len - sp->hr) * d, sp->hr * d, ncclFloat, me + 1, c, g->stream));
        FOLIO_CHECK_NCCL(ncclRecv(X + (sp->hl + len) * d, sp->hr * d, ncclFloat, me + 1, c, g->stream));
    }
    FOLIO_CHECK_NCCL(ncclGroupEnd());
    FOLIO_CHECK_CUDA(cudaStreamSynchronize(g->stream));
    fx_add_seconds(x, folio_now() - t);
    trace_mark(g, "halo out");
    return FOLIO_OK;
}

/* The results of a split document to rank 0, device to device: every
 * rank's final block rows into rank 0's g->nodes and the salience mass
 * summed into its g->nmass (int64: exact in any order).  Rank 0 then
 * copies the whole document's rows to the host once, as a single GPU
 * does, instead of receiving the others' host copies through MPI (on the
 * single writer, that was 0.02 s of a 4M-token document's 0.2 s). */
static folio_status_t nccl_gather_results(folio_exchange_t *x, folio_gpu_t *g, const folio_layer_span_t *sp,
                                          uint64_t nn)
{
    ncclComm_t c = (ncclComm_t)fx_nccl(x);
    const int me = folio_exchange_rank(x), P = sp->P;
    const size_t d = sp->d;
    FOLIO_CHECK_CUDA(cudaStreamSynchronize(g->stream)); /* the kernels before are not gather time */
    trace_mark(g, "gather in");
    double t = folio_now();
    FOLIO_CHECK_NCCL(ncclGroupStart());
    for (int r = 1; r < P; r++) {
        const size_t cnt = (size_t)(sp->row0[r + 1] - sp->row0[r]) * d;
        float *rows = g->nodes + sp->row0[r] * d;
        if (cnt == 0) continue;
        if (me == 0) FOLIO_CHECK_NCCL(ncclRecv(rows, cnt, ncclFloat, r, c, g->stream));
        else if (me == r) FOLIO_CHECK_NCCL(ncclSend(rows, cnt, ncclFloat, 0, c, g->stream));
    }
    FOLIO_CHECK_NCCL(ncclGroupEnd());
    FOLIO_CHECK_NCCL(ncclReduce(g->nmass, g->nmass, nn, ncclInt64, ncclSum, 0, c, g->stream));
    FOLIO_CHECK_CUDA(cudaStreamSynchronize(g->stream));
    fx_add_gather_seconds(x, folio_now() - t);
    trace_mark(g, "gather out");
    return FOLIO_OK;
}

static folio_status_t hgrow(void **p, size_t *cap, size_t bytes)
{
    if (bytes <= *cap) return FOLIO_OK;
    void *q = realloc(*p, bytes);
    FOLIO_CHECK_ALLOC(q);
    *p = q;
    *cap = bytes;
    return FOLIO_OK;
}

/* folio_gpu_encode up to the results on the device (and gathered to rank
 * 0's device over ranks). */
static folio_status_t encode_on_device(folio_gpu_t *g, folio_exchange_t *x, const folio_layer_span_t *sp,
                                       const folio_doc_t *doc, const float *weights)
{
    const folio_pattern_t *p = sp->p;
    const uint32_t d = sp->d, H = p->heads;
    const uint64_t len = sp->t1 - sp->t0, nx = sp->nx, nn = sp->h->n_nodes;
    const uint64_t nqb = sp->qb1 - sp->qb0;
    const int s_max = sp->s_max, sm1 = s_max > 0 ? s_max : 1;
    const bool multi = sp->P > 1;
    FOLIO_CHECK_GENERIC(!multi || fx_nccl(x), FOLIO_ERR_INTERNAL, "GPU layers over ranks need a NCCL communicator");
    FOLIO_CHECK_GENERIC(nx > 0 && nx <= UINT32_MAX, FOLIO_ERR_TOO_LARGE, "%s: %llu token rows on one GPU",
                        doc->id, (unsigned long long)nx);
    FOLIO_CHECK_CUDA(cudaSetDevice(g->device));
    FOLIO_TRY(dgrow((void **)&g->X, &g->X_cap, nx * d * 4));
    FOLIO_TRY(dgrow((void **)&g->Xb, &g->Xb_cap, nx * d * 2));
    FOLIO_TRY(dgrow((void **)&g->out, &g->out_cap, (len ? len : 1) * d * 4));
    FOLIO_TRY(dgrow((void **)&g->nodes, &g->nodes_cap, (nn + 1) * d * 4));
    FOLIO_TRY(dgrow((void **)&g->nodesb, &g->nodesb_cap, (nn + 1) * d * 2));
    FOLIO_TRY(dgrow((void **)&g->sel, &g->sel_cap, nqb * H * sm1 * 4));
    FOLIO_TRY(dgrow((void **)&g->seln, &g->seln_cap, nqb * H * 4));
    FOLIO_TRY(dgrow((void **)&g->mass, &g->mass_cap, nqb * H * sm1 * 4));
    FOLIO_TRY(dgrow((void **)&g->nmass, &g->nmass_cap, (nn + 1) * 8));
    trace_mark(g, "allocated");

    /* Layer-0 input on the device: the bytes of tokens [x0, x0 + nx), their
     * spans as they are (document offsets: the kernel subtracts base), the
     * weights (halo rows are embedded here too, the embedding being per
     * token). */
    const folio_span_t *tk = doc->tokens + sp->x0;
    const uint64_t base = tk[0].start, bytes = tk[nx - 1].end - base;
    FOLIO_TRY(dgrow((void **)&g->text, &g->text_cap, bytes + 1));
    FOLIO_TRY(dgrow((void **)&g->spans, &g->spans_cap, nx * sizeof(folio_span_t)));
    FOLIO_TRY(h2d(g, g->text, doc->text + base, bytes));
    FOLIO_TRY(h2d(g, g->spans, tk, nx * sizeof(folio_span_t)));
    if (weights) {
        FOLIO_TRY(dgrow((void **)&g->w, &g->w_cap, nx * 4));
        FOLIO_TRY(h2d(g, g->w, weights + sp->x0, nx * 4));
    }
    trace_mark(g, "input copied");
    FOLIO_TRY(folio_cuda_embed(g->text, bytes, base, g->spans, weights ? g->w : NULL, (uint32_t)nx, d,
                               FOLIO_EMBED_SEED, g->X, g->stream));
    trace_mark(g, "embedded");
    FOLIO_CHECK_CUDA(cudaMemsetAsync(g->nmass, 0, nn * 8, g->stream));

    for (uint32_t l = 0; l < p->layers; l++) {
        float *mine = g->nodes + (size_t)sp->qb0 * d;
        FOLIO_TRY(folio_cuda_block_means(g->X + sp->hl * d, (int64_t)len, (int)d, (int)p->block, mine, g->stream));
        if (multi) FOLIO_TRY(nccl_allgather_rows(x, g, g->nodes, sp->row0, sp->P, d));
        FOLIO_TRY(folio_cuda_hier_build_upper(sp->h, (int)d, g->nodes, g->stream));
        trace_mark(g, "summaries");
        if (s_max > 0)
            FOLIO_TRY(folio_cuda_attn_select(p, sp->h, g->nodes, g->nodes, d, sp->qb0, sp->qb1, g->sel, g->seln,
                                             s_max, g->stream));
        trace_mark(g, "routed");
        FOLIO_TRY(folio_cuda_f32_to_bf16(g->X, g->Xb, (int64_t)(nx * d), g->stream));
        FOLIO_TRY(folio_cuda_f32_to_bf16(g->nodes, g->nodesb, (int64_t)(nn * d), g->stream));
        folio_attn_cuda_args_t a = {0};
        a.q = a.k = a.v = g->Xb;
        a.ld = d;
        a.x0 = (int64_t)sp->x0;
        a.nx = (int64_t)nx;
        a.q0 = (int64_t)sp->t0;
        a.q1 = (int64_t)sp->t1;
        a.n_doc = (int64_t)sp->n;
        a.node_k = a.node_v = g->nodesb;
        a.ld_nodes = d;
        a.n_nodes = (int64_t)nn;
        a.sel = s_max > 0 ? g->sel : NULL;
        a.sel_n = s_max > 0 ? g->seln : NULL;
        a.s_max = s_max;
        a.out = g->out;
        a.ld_out = d;
        a.node_mass = s_max > 0 ? g->mass : NULL;
        a.H = (int)H;
        a.d_h = (int)p->head_dim;
        a.B = (int)p->block;
        a.W = (int)(p->window < sp->n ? p->window : sp->n);
        a.scale = folio_pattern_scale(p);
        /* after the first layer every head slice is at norm sqrt(d_h) (residual_l2norm), the nodes
         * (means of such rows) at most that: the kernel's softmax needs no per-row reference;
         * the first layer's rows are embeddings at norm sqrt(d) x IDF weight */
        a.row_norm_max = l > 0 ? 1.01f * sqrtf((float)p->head_dim) : 0.f;
        a.stream = g->stream;
        a.n_redone = g->redone;
        FOLIO_TRY(folio_attn_sparse_fwd_cuda(&a));
        FOLIO_TRY(folio_cuda_residual_l2norm(g->X + sp->hl * d, g->out, (int64_t)len, (int)H, (int)p->head_dim,
                                             g->stream));
        trace_mark(g, "attended");
        if (s_max > 0)
            FOLIO_TRY(folio_cuda_mass_accumulate(g->sel, g->seln, g->mass, (uint32_t)nqb, (int)H, s_max, g->nmass,
                                                 g->stream));
        if (multi && l + 1 < p->layers) FOLIO_TRY(nccl_halo(x, g, sp));
    }
    /* Block summaries of the final token vectors (this rank's blocks) and
     * the salience mass come back; X stays for pooling. */
    FOLIO_TRY(folio_cuda_block_means(g->X + sp->hl * d, (int64_t)len, (int)d, (int)p->block,
                                     g->nodes + (size_t)sp->qb0 * d, g->stream));
    trace_mark(g, "final means");
    if (multi) FOLIO_TRY(nccl_gather_results(x, g, sp, nn));
    return FOLIO_OK;
}

folio_status_t folio_gpu_encode(folio_gpu_t *g, folio_exchange_t *x, const folio_layer_span_t *sp,
                                const folio_doc_t *doc, const float *weights, float *nodes, int64_t *mass)
{
    const uint32_t d = sp->d;
    const uint64_t nn = sp->h->n_nodes;
    const bool multi = sp->P > 1, back = !multi || folio_exchange_rank(x) == 0; /* rows come to this host */
    const uint64_t r0 = multi ? 0 : sp->qb0, r1 = multi ? sp->row0[sp->P] : sp->qb1;
    g->resident = false;
    g->ntr = 0;
    trace_mark(g, "start");
    /* the block rows' host pages faulted in while the device computes */
    folio_prefault_t *pf = NULL;
    if (back) {
        void *reg = nodes + r0 * d;
        size_t bytes = (size_t)(r1 - r0) * d * 4;
        folio_prefault_start(&reg, &bytes, 1, &pf);
    }
    folio_status_t st = encode_on_device(g, x, sp, doc, weights);
    folio_prefault_join(&pf);
    trace_mark(g, "pages ready");
    FOLIO_TRY(st);
    if (back) {
        FOLIO_CHECK_CUDA(cudaMemcpyAsync(mass, g->nmass, nn * 8, cudaMemcpyDeviceToHost, g->stream));
        FOLIO_TRY(d2h(g, nodes + r0 * d, g->nodes + r0 * d, (size_t)(r1 - r0) * d * 4));
    }
    FOLIO_CHECK_CUDA(cudaStreamSynchronize(g->stream));
    trace_mark(g, "results on host");
    if (g->trace) { /* the last event is done before the line is made */
        FOLIO_CHECK_CUDA(cudaStreamSynchronize(g->stream));
        trace_print(g, sp);
    }
    g->t0 = sp->t0;
    g->t1 = sp->t1;
    g->hl = sp->hl;
    g->d = d;
    g->resident = true;
    return FOLIO_OK;
}

/* Items of at most this many tokens: a long range (a section, the whole
 * document) is summed by many CTAs at once. */
enum { POOL_ITEM_TOKENS = 1024 };

/* Device fixed-point sums of ranges [0, m) (clipped to the resident rows)
 * into g->acc (m, d), zeroed first; asynchronous. */
static folio_status_t pool_sums(folio_gpu_t *g, const uint32_t *begin, const uint32_t *end, uint64_t m)
{
    const uint32_t d = g->d;
    FOLIO_CHECK_CUDA(cudaSetDevice(g->device));
    FOLIO_TRY(dgrow((void **)&g->acc, &g->acc_cap, (m ? m : 1) * d * sizeof(int64_t)));
    FOLIO_CHECK_CUDA(cudaMemsetAsync(g->acc, 0, m * d * sizeof(int64_t), g->stream));
    uint64_t ni = 0;
    for (uint64_t r = 0; r < m; r++) {
        const uint64_t b = begin[r] > g->t0 ? begin[r] : g->t0, e = end[r] < g->t1 ? end[r] : g->t1;
        if (e > b) ni += (e - b + POOL_ITEM_TOKENS - 1) / POOL_ITEM_TOKENS;
    }
    if (ni == 0) return FOLIO_OK;
    FOLIO_CHECK_GENERIC(ni <= 0x7fffffff, FOLIO_ERR_TOO_LARGE, "GPU pooling: too many ranges");
    FOLIO_TRY(hgrow((void **)&g->h_items, &g->h_items_cap, ni * 3 * sizeof(uint32_t)));
    FOLIO_TRY(dgrow((void **)&g->items, &g->items_cap, ni * 3 * sizeof(uint32_t)));
    uint64_t k = 0;
    for (uint64_t r = 0; r < m; r++) {
        const uint64_t b = begin[r] > g->t0 ? begin[r] : g->t0, e = end[r] < g->t1 ? end[r] : g->t1;
        for (uint64_t c = b; c < e; c += POOL_ITEM_TOKENS) {
            g->h_items[3 * k] = (uint32_t)r;
            g->h_items[3 * k + 1] = (uint32_t)(c - g->t0);
            g->h_items[3 * k + 2] = (uint32_t)((c + POOL_ITEM_TOKENS < e ? c + POOL_ITEM_TOKENS : e) - g->t0);
            k++;
        }
    }
    FOLIO_CHECK_CUDA(cudaMemcpyAsync(g->items, g->h_items, ni * 3 * sizeof(uint32_t), cudaMemcpyHostToDevice,
                                     g->stream));
    return folio_cuda_pool_fixed(g->X + g->hl * d, d, g->items, (uint32_t)ni, g->acc, g->stream);
}

folio_status_t folio_gpu_pool_ranges(folio_gpu_t *g, const uint32_t *begin, const uint32_t *end, uint64_t m,
                                     uint64_t w0, uint64_t w1, float *fin, void *part)
{
    FOLIO_CHECK_GENERIC(g->resident, FOLIO_ERR_INTERNAL, "GPU pooling without an encoded document");
    FOLIO_CHECK_GENERIC(w0 <= w1 && w1 <= m, FOLIO_ERR_ARG, "GPU pooling: finished ranges [%llu, %llu) of %llu",
                        (unsigned long long)w0, (unsigned long long)w1, (unsigned long long)m);
    const uint32_t d = g->d;
    g->fin_rows = 0;
    if (m == 0) return FOLIO_OK;
    FOLIO_TRY(pool_sums(g, begin, end, m));
    const uint64_t nf = w1 - w0;
    if (nf > 0) {
        FOLIO_CHECK_GENERIC(nf <= UINT32_MAX, FOLIO_ERR_TOO_LARGE, "GPU pooling: too many ranges");
        FOLIO_TRY(dgrow((void **)&g->fin, &g->fin_cap, nf * d * sizeof(float)));
        FOLIO_TRY(dgrow((void **)&g->fbe, &g->fbe_cap, 2 * nf * sizeof(uint32_t)));
        FOLIO_CHECK_CUDA(cudaMemcpyAsync(g->fbe, begin + w0, nf * sizeof(uint32_t), cudaMemcpyHostToDevice, g->stream));
        FOLIO_CHECK_CUDA(cudaMemcpyAsync(g->fbe + nf, end + w0, nf * sizeof(uint32_t), cudaMemcpyHostToDevice,
                                         g->stream));
        FOLIO_TRY(folio_cuda_pool_finish(g->acc + w0 * d, g->fbe, g->fbe + nf, (uint32_t)nf, d, g->fin, g->stream));
        if (fin) FOLIO_TRY(d2h(g, fin, g->fin, nf * d * sizeof(float)));
        else g->fin_rows = nf;
    }
    char *pp = part;
    if (w0 > 0) {
        FOLIO_CHECK_CUDA(cudaMemcpyAsync(pp, g->acc, w0 * d * sizeof(int64_t), cudaMemcpyDeviceToHost, g->stream));
        pp += w0 * d * sizeof(int64_t);
    }
    if (m > w1)
        FOLIO_CHECK_CUDA(cudaMemcpyAsync(pp, g->acc + w1 * d, (m - w1) * d * sizeof(int64_t), cudaMemcpyDeviceToHost,
                                         g->stream));
    FOLIO_CHECK_CUDA(cudaStreamSynchronize(g->stream));
    return FOLIO_OK;
}

folio_status_t folio_gpu_gather_spans(folio_gpu_t *g, folio_exchange_t *x, uint64_t lo, uint64_t hi, uint64_t n_rows,
                                      float *out)
{
    const int me = folio_exchange_rank(x), P = folio_exchange_size(x);
    const size_t d = g->d;
    folio_status_t st = FOLIO_OK;
    if (!(lo <= hi && hi <= n_rows) || (me > 0 && hi - lo > g->fin_rows)) {
        /* still take part, with no rows, so that no rank blocks */
        folio_log(FOLIO_LOG_ERROR, "gather: rows [%llu, %llu) of %llu (%llu on the device)", (unsigned long long)lo,
                  (unsigned long long)hi, (unsigned long long)n_rows, (unsigned long long)g->fin_rows);
        st = FOLIO_ERR_ARG;
        lo = hi = 0;
    }
    uint64_t *sp = malloc(3 * (size_t)P * sizeof *sp), *oks = sp + 2 * P; /* spans, then readiness */
    FOLIO_CHECK_ALLOC(sp);
    /* every rank learns every count, so that sends and receives pair up */
    const uint64_t mine[2] = {lo, hi};
    folio_status_t gst = fx_allgather_u64(x, mine, 2, sp);
    if (gst != FOLIO_OK) { free(sp); return gst; }
    double t = folio_now();
    size_t total = 0; /* rank 0: rows from the others */
    for (int r = 1; r < P; r++) total += (size_t)(sp[2 * r + 1] - sp[2 * r]);
    gst = cudaSetDevice(g->device) == cudaSuccess ? FOLIO_OK : FOLIO_ERR_CUDA;
    if (gst == FOLIO_OK && me == 0 && total > 0) gst = dgrow((void **)&g->gat, &g->gat_cap, total * d * sizeof(float));
    /* NCCL needs both sides of every transfer: each rank says whether it
     * can take part, and either all move their rows or none does (rank 0
     * then fails the document; the others have nothing to store) */
    const uint64_t ok = gst == FOLIO_OK;
    folio_status_t ost = fx_allgather_u64(x, &ok, 1, oks);
    bool all_ok = ost == FOLIO_OK;
    for (int r = 0; all_ok && r < P; r++) all_ok = oks[r] != 0;
    if (!all_ok) {
        if (me == 0)
            folio_log(FOLIO_LOG_ERROR, "gather of pooled rows: %s",
                      gst != FOLIO_OK ? folio_status_str(gst) : "a rank could not send its rows");
        free(sp);
        fx_add_gather_seconds(x, folio_now() - t);
        if (st == FOLIO_OK) st = gst != FOLIO_OK ? gst : ost != FOLIO_OK ? ost : FOLIO_ERR_CUDA;
        return me == 0 ? st : (gst != FOLIO_OK ? gst : st);
    }
    ncclComm_t c = (ncclComm_t)fx_nccl(x);
    FOLIO_CHECK_NCCL(ncclGroupStart());
    size_t at = 0;
    for (int r = 1; r < P; r++) {
        const size_t cnt = (size_t)(sp[2 * r + 1] - sp[2 * r]) * d;
        if (cnt == 0) continue;
        if (me == 0) FOLIO_CHECK_NCCL(ncclRecv(g->gat + at, cnt, ncclFloat, r, c, g->stream));
        else if (me == r) FOLIO_CHECK_NCCL(ncclSend(g->fin, cnt, ncclFloat, 0, c, g->stream));
        at += cnt;
    }
    FOLIO_CHECK_NCCL(ncclGroupEnd());
    if (me == 0) { /* each rank's rows to their place in the host table */
        at = 0;
        for (int r = 1; r < P; r++) {
            const uint64_t a = sp[2 * r], b = sp[2 * r + 1];
            if (b > a && b <= n_rows) {
                FOLIO_TRY(d2h(g, out + a * d, g->gat + at, (b - a) * d * sizeof(float)));
            } else if (b > a) {
                folio_log(FOLIO_LOG_ERROR, "gather: rank %d sent rows [%llu, %llu) of %llu", r,
                          (unsigned long long)a, (unsigned long long)b, (unsigned long long)n_rows);
                st = FOLIO_ERR_INTERNAL;
            }
            at += (size_t)(b - a) * d;
        }
    }
    free(sp);
    FOLIO_CHECK_CUDA(cudaStreamSynchronize(g->stream));
    fx_add_gather_seconds(x, folio_now() - t);
    return st;
}

folio_status_t folio_nccl_create(MPI_Comm comm, int device, void **out)
{
    *out = NULL;
    int rank, size, n = 0;
    FOLIO_CHECK_MPI(MPI_Comm_rank(comm, &rank));
    FOLIO_CHECK_MPI(MPI_Comm_size(comm, &size));
    FOLIO_CHECK_CUDA(cudaGetDeviceCount(&n));
    FOLIO_CHECK_GENERIC(n > 0, FOLIO_ERR_NO_DEVICE, "NCCL: no CUDA device");
    FOLIO_CHECK_CUDA(cudaSetDevice(device % n));
    ncclUniqueId id;
    if (rank == 0) FOLIO_CHECK_NCCL(ncclGetUniqueId(&id));
    FOLIO_CHECK_MPI(MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, comm));
    ncclComm_t c;
    FOLIO_CHECK_NCCL(ncclCommInitRank(&c, size, id, rank));
    /* NCCL connects peers lazily, per algorithm, on the first operation that
     * needs them (hundreds of ms on 4 GPUs).  Do it here, with the
     * operations the exchange uses -- a grouped broadcast from every root
     * (summaries; ring algorithm, not the one an all-reduce may pick),
     * sends/receives to both neighbours (halos), every rank's send to rank
     * 0 and an int64 reduce onto it (the results) -- at a small and a large
     * size (protocols differ by size), so that a document's exchanges and
     * gathers measure steady state.  (Without the last two, the first split
     * document on 4 GPUs waited 0.2 s in its result gathers.) */
    enum { PROBE = 1 << 20 }; /* floats per root at the large size */
    float *probe = NULL;
    FOLIO_CHECK_CUDA(cudaMalloc((void **)&probe, (size_t)size * PROBE * sizeof *probe + 4 * PROBE * sizeof *probe));
    ncclResult_t wr = ncclSuccess;
    const size_t sizes[2] = {256, PROBE};
    for (int k = 0; k < 2 && wr == ncclSuccess; k++) {
        const size_t cnt = sizes[k];
        float *halo = probe + (size_t)size * PROBE;
        ncclGroupStart();
        for (int r = 0; r < size; r++) ncclBroadcast(probe + (size_t)r * cnt, probe + (size_t)r * cnt, cnt, ncclFloat, r, c, NULL);
        wr = ncclGroupEnd();
        if (wr != ncclSuccess || size < 2) continue;
        ncclGroupStart();
        if (rank > 0) {
            ncclSend(halo, cnt, ncclFloat, rank - 1, c, NULL);
            ncclRecv(halo + PROBE, cnt, ncclFloat, rank - 1, c, NULL);
        }
        if (rank + 1 < size) {
            ncclSend(halo + 2 * (size_t)PROBE, cnt, ncclFloat, rank + 1, c, NULL);
            ncclRecv(halo + 3 * (size_t)PROBE, cnt, ncclFloat, rank + 1, c, NULL);
        }
        wr = ncclGroupEnd();
        if (wr != ncclSuccess) continue;
        ncclGroupStart(); /* the result gathers: every rank to rank 0 */
        for (int r = 1; r < size; r++) {
            if (rank == 0) ncclRecv(probe + (size_t)r * cnt, cnt, ncclFloat, r, c, NULL);
            else if (rank == r) ncclSend(probe + (size_t)r * cnt, cnt, ncclFloat, 0, c, NULL);
        }
        wr = ncclGroupEnd();
        if (wr == ncclSuccess) wr = ncclReduce(probe, probe, cnt / 2, ncclInt64, ncclSum, 0, c, NULL);
    }
    cudaStreamSynchronize(NULL);
    cudaFree(probe);
    if (wr != ncclSuccess) ncclCommDestroy(c);
    FOLIO_CHECK_GENERIC(wr == ncclSuccess, FOLIO_ERR_NCCL, "NCCL warm-up: %s", ncclGetErrorString(wr));
    *out = c;
    return FOLIO_OK;
}

void folio_nccl_destroy(void **c)
{
    if (!c || !*c) return;
    ncclCommDestroy((ncclComm_t)*c);
    *c = NULL;
}

/* The node-local rank the launcher gives this process, before MPI_Init:
 * 0 for a process no launcher started, -1 when a launcher did but does not
 * say (a wrong guess would leave a context, hundreds of MB, on another
 * rank's GPU). */
static int launcher_local_rank(void)
{
    static const char *const local[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"};
    static const char *const launched[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof local / sizeof *local; i++) {
        const char *v = getenv(local[i]);
        if (v && *v) return atoi(v) > 0 ? atoi(v) : 0;
    }
    for (size_t i = 0; i < sizeof launched / sizeof *launched; i++)
        if (getenv(launched[i])) return -1;
    return 0;
}

struct folio_gpu_warmup {
    pthread_t thread;
    int local_rank;
};

static void *warmup_main(void *arg)
{
    folio_thread_name("folio-cuda-warm");
    folio_gpu_warmup_t *w = arg;
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n <= 0) {
        cudaGetLastError();
        return NULL;
    }
    /* a failure here is only a slower start: the worker checks again */
    if (cudaSetDevice(w->local_rank % n) == cudaSuccess && cudaFree(0) == cudaSuccess &&
        folio_cuda_device_code_ok(w->local_rank % n) == FOLIO_OK)
        (void)folio_cuda_preload();
    cudaGetLastError();
    return NULL;
}

void folio_gpu_warmup_start(folio_gpu_warmup_t **out)
{
    *out = NULL;
    folio_gpu_warmup_t *w = calloc(1, sizeof *w);
    if (!w) return;
    w->local_rank = launcher_local_rank();
    if (w->local_rank < 0 || pthread_create(&w->thread, NULL, warmup_main, w) != 0) {
        free(w);
        return;
    }
    *out = w;
}

void folio_gpu_warmup_end(folio_gpu_warmup_t **pw)
{
    if (!pw || !*pw) return;
    pthread_join((*pw)->thread, NULL);
    free(*pw);
    *pw = NULL;
}

#else /* !FOLIO_HAVE_CUDA */

void folio_gpu_warmup_start(folio_gpu_warmup_t **out) { *out = NULL; }
void folio_gpu_warmup_end(folio_gpu_warmup_t **w) { if (w) *w = NULL; }

struct folio_gpu { int unused; };

folio_status_t folio_gpu_create(int device, const folio_pattern_t *p, bool staging, folio_gpu_t **out)
{
    (void)device; (void)p; (void)staging;
    *out = NULL;
    return FOLIO_ERR_NO_DEVICE;
}
void folio_gpu_destroy(folio_gpu_t **g) { if (g) *g = NULL; }
folio_status_t folio_gpu_encode(folio_gpu_t *g, folio_exchange_t *x, const folio_layer_span_t *sp,
                                const folio_doc_t *doc, const float *weights, float *nodes, int64_t *mass)
{
    (void)g; (void)x; (void)sp; (void)doc; (void)weights; (void)nodes; (void)mass;
    return FOLIO_ERR_UNSUPPORTED;
}
folio_status_t folio_gpu_pool_ranges(folio_gpu_t *g, const uint32_t *begin, const uint32_t *end, uint64_t m,
                                     uint64_t w0, uint64_t w1, float *fin, void *part)
{
    (void)g; (void)begin; (void)end; (void)m; (void)w0; (void)w1; (void)fin; (void)part;
    return FOLIO_ERR_UNSUPPORTED;
}
folio_status_t folio_gpu_gather_spans(folio_gpu_t *g, folio_exchange_t *x, uint64_t lo, uint64_t hi, uint64_t n_rows,
                                      float *out)
{
    (void)g; (void)x; (void)lo; (void)hi; (void)n_rows; (void)out;
    return FOLIO_ERR_UNSUPPORTED;
}
folio_status_t folio_nccl_create(MPI_Comm comm, int device, void **out)
{
    (void)comm; (void)device;
    *out = NULL;
    return FOLIO_ERR_UNSUPPORTED;
}
void folio_nccl_destroy(void **c) { if (c) *c = NULL; }

#endif
