/* attn/attn_cuda_internal.h — shared by the .cu files of attn/ only (not a
 * public header): the CUDA call check and the PTX helpers of the kernels. */
#ifndef FOLIO_ATTN_CUDA_INTERNAL_H
#define FOLIO_ATTN_CUDA_INTERNAL_H

#include <cuda_runtime.h>

#include "attn_cuda.h"

/* Returns FOLIO_ERR_CUDA with the call and CUDA's message when it fails. */
#define FOLIO_CUDA_CHECK(call)                                                   \
    do {                                                                         \
        cudaError_t folio_ce_ = (call);                                          \
        FOLIO_CHECK_GENERIC(folio_ce_ == cudaSuccess, FOLIO_ERR_CUDA, "%s: %s", \
                            #call, cudaGetErrorString(folio_ce_));               \
    } while (0)

#ifdef __CUDACC__
#include <stdint.h>

/* ------------------------------------------------------------ PTX helpers
 * Shared by the attention kernel (attn_sparse.cu) and the routing kernels
 * (attn_cuda_util.cu).  Plain inline (not static): a file that includes this
 * and uses none of them gets no unused-function warning. */

__device__ __forceinline__ uint32_t smem_u32(const void *p)
{
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

/* 16-byte async copy global -> shared, zero-filled when !valid (src-size 0:
 * nothing is read, gmem must still be a valid address). */
__device__ __forceinline__ void cp_async16(void *smem, const void *gmem, bool valid)
{
    const int n = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(smem)), "l"(gmem), "r"(n));
}
/* The same with a shared-memory address already in the shared window. */
__device__ __forceinline__ void cp_async16_s(uint32_t saddr, const void *gmem, bool valid)
{
    const int n = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(saddr), "l"(gmem), "r"(n));
}
/* The same for 4 bytes (through L1: .ca, the only mode below 16 bytes). */
__device__ __forceinline__ void cp_async4(void *smem, const void *gmem, bool valid)
{
    const int n = valid ? 4 : 0;
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_u32(smem)), "l"(gmem), "r"(n));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

/* Four 8x8 b16 matrices from shared memory (lanes 8m .. 8m + 7 give matrix
 * m's row addresses), plain and transposed. */
__device__ __forceinline__ void ldmatrix_x4(uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3, uint32_t addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3,
                                                  uint32_t addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(addr));
}

/* D += A(16x16 bf16, row) * B(16x8 bf16, col), fp32 accumulators.  Not
 * volatile: a pure function of its operands, so the compiler may interleave
 * independent products. */
__device__ __forceinline__ void mma_bf16(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1)
{
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
/* Byte offset of 16-byte chunk c of row r in a swizzled [64][64] bf16 tile. */
__device__ __forceinline__ uint32_t swz(int r, int c) { return (uint32_t)(r * 128 + ((c ^ (r & 7)) << 4)); }

/* ------------------------------------------------------------ wgmma (sm_90a)
 * The tiles in shared memory are already in the canonical 128-byte swizzle
 * layout (swz below: 64 rows of 128 bytes, 16-byte chunk c of row r at
 * chunk c ^ (r & 7), 8-row atoms of 1024 bytes), so the warpgroup MMA reads
 * them through descriptors, with no ldmatrix and no B fragments in registers:
 *  - S = Q K^T: A = Q and B = K both K-major (dimension contiguous); a
 *    16-dimension k-step is 32 bytes further along the swizzled row;
 *  - O += P V: A = P from registers (the accumulator layout of S is the
 *    register layout of A), B = the same K/V tile read N-major (transposed:
 *    dimension contiguous, keys along K); a 16-key k-step is two atoms.
 * Descriptor: start >> 4 (bits 0-13), leading byte offset >> 4 (16-29),
 * stride byte offset >> 4 (32-45), swizzle mode 1 = 128 B (62-63).  The
 * stride between 8-row atoms is 1024 bytes in both uses; the leading offset
 * is unused for K-major swizzled tiles (1 by convention) and, for the
 * transposed tile, would step between 64-column atoms along N, of which a
 * 64-wide head has one, so 1024 is given for both fields there.  The warp w
 * of the warpgroup holds accumulator rows 16 w + g and 16 w + g + 8, the
 * layout of the mma.sync path with 4 warps x 16 rows (MF = 1). */
#if defined(FOLIO_WGMMA)
__device__ __forceinline__ uint64_t gmma_desc(uint32_t saddr, uint32_t lbo)
{
    return (uint64_t)((saddr & 0x3FFFFu) >> 4) | ((uint64_t)(lbo >> 4) << 16) | ((uint64_t)(1024 >> 4) << 32) |
           ((uint64_t)1 << 62);
}
/* The wgmma instructions exist in sm_90a code only; a build for several
 * architectures compiles these bodies empty elsewhere, and the host never
 * launches the warpgroup kernels on another GPU (folio_attn_sparse_fwd_cuda). */
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FOLIO_WG_ASM(x) asm volatile(x ::: "memory")
#else
#define FOLIO_WG_ASM(x) ((void)0)
#endif
__device__ __forceinline__ void wg_fence() { FOLIO_WG_ASM("wgmma.fence.sync.aligned;\n"); }
__device__ __forceinline__ void wg_commit() { FOLIO_WG_ASM("wgmma.commit_group.sync.aligned;\n"); }
__device__ __forceinline__ void wg_wait0() { FOLIO_WG_ASM("wgmma.wait_group.sync.aligned 0;\n"); }
/* Keeps the compiler from moving reads or writes of the accumulators across
 * an asynchronous MMA (the asm statements themselves stay in order). */
__device__ __forceinline__ void wg_reg_fence(float (&d)[8][4])
{
#pragma unroll
    for (int j = 0; j < 8; j++)
        asm volatile("" : "+f"(d[j][0]), "+f"(d[j][1]), "+f"(d[j][2]), "+f"(d[j][3])::"memory");
}
__device__ __forceinline__ void wg_proxy_fence() { FOLIO_WG_ASM("fence.proxy.async.shared::cta;\n"); }

#define FOLIO_WG_D32(d)                                                                                       \
    "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]), "+f"(d[1][2]),   \
        "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]), "+f"(d[3][0]), "+f"(d[3][1]), \
        "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]), "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), \
        "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]), "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), \
        "+f"(d[7][0]), "+f"(d[7][1]), "+f"(d[7][2]), "+f"(d[7][3])
#define FOLIO_WG_DREGS                                                                                       \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, " \
    "%23, %24, %25, %26, %27, %28, %29, %30, %31}"

/* d (+)= A * B, A and B from shared memory, both K-major; accumulate = 0 overwrites d. */
__device__ __forceinline__ void wgmma_ss(float (&d)[8][4], uint64_t da, uint64_t db, int accumulate)
{
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " FOLIO_WG_DREGS ", %32, %33, p, 1, 1, 0, 0;\n}\n"
                 : FOLIO_WG_D32(d)
                 : "l"(da), "l"(db), "r"(accumulate));
#else
    (void)d; (void)da; (void)db; (void)accumulate;
    __trap(); /* host code picks this path only for sm_90a builds */
#endif
}

/* S = Q K^T for the warpgroup's 64 rows (this thread's fragment), raw dot
 * products.  dq, dk: descriptors of the tiles' first k-step; a 16-dimension
 * step is 32 bytes, i.e. +2 in the descriptor's address field (shared
 * addresses stay below 2^18, so the field never carries). */
__device__ __forceinline__ void qk_tile_wg(float (&S)[8][4], uint64_t dq, uint64_t dk)
{
    wg_reg_fence(S);
    wg_fence();
#pragma unroll
    for (int kk = 0; kk < 4; kk++) wgmma_ss(S, dq + 2 * kk, dk + 2 * kk, kk > 0);
    wg_commit();
    wg_wait0();
    wg_reg_fence(S);
}
/* ---- mbarriers and bulk copies (sm_90): a copy issued by one thread
 * completes on a stage's mbarrier (expect_tx + complete_tx); waits by
 * phase parity.  sm_90a code only, like the wgmma bodies: a build for
 * several architectures compiles them empty elsewhere, where they never run. */
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count)
{
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count));
#else
    (void)bar; (void)count;
#endif
}
/* makes the initialized barriers visible to the async proxy (TMA) */
__device__ __forceinline__ void mbar_init_fence() { FOLIO_WG_ASM("fence.mbarrier_init.release.cluster;\n"); }
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes)
{
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
#else
    (void)bar; (void)bytes;
#endif
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity)
{
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    uint32_t done = 0;
    do {
        asm volatile("{\n.reg .pred P;\nmbarrier.try_wait.parity.shared::cta.b64 P, [%1], %2;\nselp.u32 %0, 1, 0, P;\n}\n"
                     : "=r"(done)
                     : "r"(bar), "r"(parity)
                     : "memory");
    } while (!done);
#else
    (void)bar; (void)parity;
#endif
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar)
{
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
#else
    (void)bar;
#endif
}
/* bytes (a multiple of 16, both addresses 16-byte aligned) from global
 * memory into shared memory, completing on bar */
__device__ __forceinline__ void bulk_load(uint32_t dst, const void *src, uint32_t bytes, uint32_t bar)
{
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n"
                 ::"r"(dst), "l"(src), "r"(bytes), "r"(bar)
                 : "memory");
#else
    (void)dst; (void)src; (void)bytes; (void)bar;
    __trap();
#endif
}
#endif /* FOLIO_WGMMA */


/* Each .cu file's part of folio_cuda_preload: loads its kernels. */
cudaError_t folio_cuda_preload_embed(void);
cudaError_t folio_cuda_preload_sparse(void);

#endif /* __CUDACC__ */

#endif
