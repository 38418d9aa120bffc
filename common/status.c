/* common/status.c — names of the status codes. */
#include "common.h"

const char *folio_status_str(folio_status_t st)
{
    static const char *const names[FOLIO_STATUS_COUNT] = {
        [FOLIO_OK] = "ok",
        [FOLIO_EOF] = "end of input",
        [FOLIO_ERR_NOMEM] = "out of memory",
        [FOLIO_ERR_IO] = "I/O error",
        [FOLIO_ERR_ARG] = "invalid argument",
        [FOLIO_ERR_USAGE] = "usage error",
        [FOLIO_ERR_UTF8] = "invalid UTF-8",
        [FOLIO_ERR_BINARY] = "binary file",
        [FOLIO_ERR_NUL] = "NUL byte in text",
        [FOLIO_ERR_EMPTY] = "empty document",
        [FOLIO_ERR_PARSE] = "parse error",
        [FOLIO_ERR_TOO_LARGE] = "too large",
        [FOLIO_ERR_NOT_FOUND] = "not found",
        [FOLIO_ERR_STORE] = "store error",
        [FOLIO_ERR_MAP_FULL] = "store map full",
        [FOLIO_ERR_NETFS] = "store on a network filesystem",
        [FOLIO_ERR_CORRUPT] = "store corrupt",
        [FOLIO_ERR_MPI] = "MPI error",
        [FOLIO_ERR_CUDA] = "CUDA error",
        [FOLIO_ERR_NCCL] = "NCCL error",
        [FOLIO_ERR_NO_DEVICE] = "no GPU device",
        [FOLIO_ERR_ZMQ] = "ZeroMQ error",
        [FOLIO_ERR_UNSUPPORTED] = "not supported",
        [FOLIO_ERR_INTERNAL] = "internal error",
    };
    if ((unsigned)st >= FOLIO_STATUS_COUNT || !names[st]) return "unknown status";
    return names[st];
}
