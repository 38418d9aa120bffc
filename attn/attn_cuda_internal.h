/* attn/attn_cuda_internal.h — shared by the .cu files of attn/ only (not a
 * public header): the CUDA call check. */
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

#endif
