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
/* Each .cu file's part of folio_cuda_preload: loads its kernels. */
cudaError_t folio_cuda_preload_embed(void);
cudaError_t folio_cuda_preload_sparse(void);

#endif /* __CUDACC__ */

#endif
