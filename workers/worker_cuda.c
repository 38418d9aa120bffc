/* workers/worker_cuda.c — the GPU worker: the L layers of a document (or of
 * a rank's share of one) on the device, with halos and block summaries
 * exchanged through NCCL between the GPUs that share the document.
 *
 * Per layer, all on one stream: block means -> (NCCL broadcast of every
 * rank's block rows) -> upper hierarchy levels -> summary-key selection ->
 * bf16 copies of X and the nodes -> fused block-sparse attention (tensor
 * cores) -> residual + per-head RMS normalization -> (NCCL halo exchange).
 * The salience mass is accumulated on the host in exact fixed point, as on
 * the CPU.  The CPU reference of every kernel is in attn/ (tests compare).
 */
#include "workers_internal.h"

#include <stdlib.h>
#include <string.h>

#include "../attn/attn_cuda.h"

#ifdef FOLIO_HAVE_CUDA
#include <cuda_runtime.h>
#include <nccl.h>

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
    float *mass; size_t mass_cap;    /* (nqb, H, s_max)                       */
    int32_t *h_sel, *h_seln; float *h_mass; size_t h_cap, h_ncap;
};

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

folio_status_t folio_gpu_create(int device, const folio_pattern_t *p, folio_gpu_t **out)
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
    *out = g;
    return FOLIO_OK;
}

void folio_gpu_destroy(folio_gpu_t **pg)
{
    if (!pg || !*pg) return;
    folio_gpu_t *g = *pg;
    cudaFree(g->X); cudaFree(g->Xb); cudaFree(g->out); cudaFree(g->nodes); cudaFree(g->nodesb);
    cudaFree(g->sel); cudaFree(g->seln); cudaFree(g->mass);
    free(g->h_sel); free(g->h_seln); free(g->h_mass);
    if (g->stream) cudaStreamDestroy(g->stream);
    free(g);
    *pg = NULL;
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
    return FOLIO_OK;
}

static folio_status_t nccl_halo(folio_exchange_t *x, folio_gpu_t *g, const folio_layer_span_t *sp)
{
    ncclComm_t c = (ncclComm_t)fx_nccl(x);
    const int me = folio_exchange_rank(x), P = sp->P;
    const size_t d = sp->d, len = sp->t1 - sp->t0;
    float *X = g->X;
    FOLIO_CHECK_CUDA(cudaStreamSynchronize(g->stream));
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
    return FOLIO_OK;
}

folio_status_t folio_worker_layers_cuda(folio_gpu_t *g, folio_exchange_t *x, const folio_layer_span_t *sp,
                                        float *X, float *nodes, int64_t *mass)
{
    const folio_pattern_t *p = sp->p;
    const uint32_t d = sp->d, H = p->heads;
    const uint64_t len = sp->t1 - sp->t0, nx = sp->nx, nn = sp->h->n_nodes;
    const uint64_t nqb = sp->qb1 - sp->qb0;
    const int s_max = sp->s_max, sm1 = s_max > 0 ? s_max : 1;
    const bool multi = sp->P > 1;
    FOLIO_CHECK_GENERIC(!multi || fx_nccl(x), FOLIO_ERR_INTERNAL, "GPU layers over ranks need a NCCL communicator");
    FOLIO_CHECK_CUDA(cudaSetDevice(g->device));
    FOLIO_TRY(dgrow((void **)&g->X, &g->X_cap, nx * d * 4));
    FOLIO_TRY(dgrow((void **)&g->Xb, &g->Xb_cap, nx * d * 2));
    FOLIO_TRY(dgrow((void **)&g->out, &g->out_cap, (len ? len : 1) * d * 4));
    FOLIO_TRY(dgrow((void **)&g->nodes, &g->nodes_cap, (nn + 1) * d * 4));
    FOLIO_TRY(dgrow((void **)&g->nodesb, &g->nodesb_cap, (nn + 1) * d * 2));
    FOLIO_TRY(dgrow((void **)&g->sel, &g->sel_cap, nqb * H * sm1 * 4));
    FOLIO_TRY(dgrow((void **)&g->seln, &g->seln_cap, nqb * H * 4));
    FOLIO_TRY(dgrow((void **)&g->mass, &g->mass_cap, nqb * H * sm1 * 4));
    if (g->h_cap < nqb * H * sm1) {
        free(g->h_sel); free(g->h_mass);
        g->h_sel = malloc(nqb * H * sm1 * 4);
        g->h_mass = malloc(nqb * H * sm1 * 4);
        g->h_cap = (g->h_sel && g->h_mass) ? nqb * H * sm1 : 0;
        FOLIO_CHECK_ALLOC(g->h_cap ? g->h_sel : NULL);
    }
    if (g->h_ncap < nqb * H) {
        free(g->h_seln);
        g->h_seln = malloc(nqb * H * 4);
        g->h_ncap = g->h_seln ? nqb * H : 0;
        FOLIO_CHECK_ALLOC(g->h_seln);
    }
    FOLIO_CHECK_CUDA(cudaMemcpyAsync(g->X, X, nx * d * 4, cudaMemcpyHostToDevice, g->stream));

    for (uint32_t l = 0; l < p->layers; l++) {
        float *mine = g->nodes + (size_t)sp->qb0 * d;
        FOLIO_TRY(folio_cuda_block_means(g->X + sp->hl * d, (int64_t)len, (int)d, (int)p->block, mine, g->stream));
        if (multi) FOLIO_TRY(nccl_allgather_rows(x, g, g->nodes, sp->row0, sp->P, d));
        FOLIO_TRY(folio_cuda_hier_build_upper(sp->h, (int)d, g->nodes, g->stream));
        if (s_max > 0)
            FOLIO_TRY(folio_cuda_attn_select(p, sp->h, g->nodes, g->nodes, d, sp->qb0, sp->qb1, g->sel, g->seln,
                                             s_max, g->stream));
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
        a.stream = g->stream;
        FOLIO_TRY(folio_attn_sparse_fwd_cuda(&a));
        FOLIO_TRY(folio_cuda_residual_l2norm(g->X + sp->hl * d, g->out, (int64_t)len, (int)H, (int)p->head_dim,
                                             g->stream));
        if (s_max > 0) {
            FOLIO_CHECK_CUDA(cudaMemcpyAsync(g->h_sel, g->sel, nqb * H * s_max * 4, cudaMemcpyDeviceToHost, g->stream));
            FOLIO_CHECK_CUDA(cudaMemcpyAsync(g->h_seln, g->seln, nqb * H * 4, cudaMemcpyDeviceToHost, g->stream));
            FOLIO_CHECK_CUDA(cudaMemcpyAsync(g->h_mass, g->mass, nqb * H * s_max * 4, cudaMemcpyDeviceToHost, g->stream));
            FOLIO_CHECK_CUDA(cudaStreamSynchronize(g->stream));
            folio_mass_accumulate(g->h_sel, g->h_seln, g->h_mass, (uint32_t)nqb, (int)H, s_max, mass);
        }
        if (multi && l + 1 < p->layers) FOLIO_TRY(nccl_halo(x, g, sp));
    }
    FOLIO_CHECK_CUDA(cudaMemcpyAsync(X, g->X, nx * d * 4, cudaMemcpyDeviceToHost, g->stream));
    FOLIO_CHECK_CUDA(cudaStreamSynchronize(g->stream));
    (void)nodes;
    return FOLIO_OK;
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
    /* NCCL connects peers lazily, on the first operation (hundreds of ms):
     * do it here, at set-up, so per-layer exchanges measure steady state. */
    float *probe = NULL;
    FOLIO_CHECK_CUDA(cudaMalloc((void **)&probe, 4096 * sizeof *probe));
    ncclResult_t wr = ncclAllReduce(probe, probe, 4096, ncclFloat, ncclSum, c, NULL);
    if (wr == ncclSuccess) {
        ncclGroupStart();
        int me = rank, P = size;
        if (P > 1) {
            ncclSend(probe, 1024, ncclFloat, (me + 1) % P, c, NULL);
            ncclRecv(probe + 1024, 1024, ncclFloat, (me + P - 1) % P, c, NULL);
        }
        wr = ncclGroupEnd();
    }
    cudaStreamSynchronize(NULL);
    cudaFree(probe);
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

#else /* !FOLIO_HAVE_CUDA */

struct folio_gpu { int unused; };

folio_status_t folio_gpu_create(int device, const folio_pattern_t *p, folio_gpu_t **out)
{
    (void)device; (void)p;
    *out = NULL;
    return FOLIO_ERR_NO_DEVICE;
}
void folio_gpu_destroy(folio_gpu_t **g) { if (g) *g = NULL; }
folio_status_t folio_worker_layers_cuda(folio_gpu_t *g, folio_exchange_t *x, const folio_layer_span_t *sp,
                                        float *X, float *nodes, int64_t *mass)
{
    (void)g; (void)x; (void)sp; (void)X; (void)nodes; (void)mass;
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
