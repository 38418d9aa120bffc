/* common/common.h — the one status enum, logging, check macros, hashing and
 * JSON helpers shared by every folder of folio.
 *
 * Library code returns folio_status_t; only main() and tests exit.  Logging
 * carries the MPI rank (set once per process by main: the rank is the
 * process's identity, not state that travels), so every message from a
 * multi-rank job says where it came from.
 */
#ifndef FOLIO_COMMON_H
#define FOLIO_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ status */

typedef enum {
    FOLIO_OK = 0,
    FOLIO_EOF,            /* end of a stream: not an error                    */
    FOLIO_ERR_NOMEM,      /* allocation failed                                */
    FOLIO_ERR_IO,         /* read/write/open failed (errno has the detail)    */
    FOLIO_ERR_ARG,        /* bad argument or option value                     */
    FOLIO_ERR_USAGE,      /* command-line usage error (exit status 2)         */
    FOLIO_ERR_UTF8,       /* invalid UTF-8 sequence                           */
    FOLIO_ERR_BINARY,     /* input looks binary                               */
    FOLIO_ERR_NUL,        /* NUL byte in text                                 */
    FOLIO_ERR_EMPTY,      /* empty or whitespace-only document                */
    FOLIO_ERR_PARSE,      /* malformed JSON / spec string                     */
    FOLIO_ERR_TOO_LARGE,  /* input exceeds a hard limit                       */
    FOLIO_ERR_NOT_FOUND,  /* key / document / file not found                  */
    FOLIO_ERR_STORE,      /* LMDB call failed                                 */
    FOLIO_ERR_MAP_FULL,   /* LMDB map full even after growth                  */
    FOLIO_ERR_NETFS,      /* store on a network filesystem                    */
    FOLIO_ERR_CORRUPT,    /* store invariant violated                         */
    FOLIO_ERR_MPI,        /* MPI call failed                                  */
    FOLIO_ERR_CUDA,       /* CUDA call failed                                 */
    FOLIO_ERR_NCCL,       /* NCCL call failed                                 */
    FOLIO_ERR_NO_DEVICE,  /* no usable GPU                                    */
    FOLIO_ERR_ZMQ,        /* ZeroMQ call failed                               */
    FOLIO_ERR_UNSUPPORTED,/* feature not built in / not available             */
    FOLIO_ERR_INTERNAL,   /* a bug: an invariant of folio itself failed       */
    FOLIO_STATUS_COUNT
} folio_status_t;

/* Static string naming the status ("ok", "invalid UTF-8", ...). */
const char *folio_status_str(folio_status_t st);

/* ------------------------------------------------------------------ logging */

typedef enum { FOLIO_LOG_DEBUG, FOLIO_LOG_INFO, FOLIO_LOG_WARN, FOLIO_LOG_ERROR } folio_log_level_t;

/* Process identity used as message prefix: "folio[rank 3]: ".  rank < 0 means
 * a single process (prefix "folio: ").  Set once by main after MPI_Init. */
void folio_log_set_rank(int rank);
int folio_log_rank(void);
void folio_log_set_level(folio_log_level_t min_level);
void folio_log(folio_log_level_t lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void folio_logv(folio_log_level_t lvl, const char *fmt, va_list ap);
/* Like folio_log(ERROR) but with file:line — used by the CHECK macros. */
void folio_log_at(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------ checks
 * One macro family for every foreign call (NCCL's checks.h style): on failure
 * log file, line, rank and the library's own message, then return a status
 * from the enclosing function.  Library-specific variants live beside the
 * library (store/ for LMDB, workers/ for MPI/CUDA/NCCL, jobs/ for ZeroMQ) and
 * are built on FOLIO_CHECK_GENERIC so they all read alike. */
#define FOLIO_CHECK_GENERIC(cond, status, ...)                                 \
    do {                                                                       \
        if (!(cond)) {                                                         \
            folio_log_at(__FILE__, __LINE__, __VA_ARGS__);                     \
            return (status);                                                   \
        }                                                                      \
    } while (0)

/* Propagate a folio_status_t. */
#define FOLIO_TRY(expr)                                                        \
    do {                                                                       \
        folio_status_t folio_try_st_ = (expr);                                 \
        if (folio_try_st_ != FOLIO_OK) return folio_try_st_;                   \
    } while (0)

/* Allocation check: returns FOLIO_ERR_NOMEM. */
#define FOLIO_CHECK_ALLOC(ptr)                                                 \
    FOLIO_CHECK_GENERIC((ptr) != NULL, FOLIO_ERR_NOMEM, "out of memory")

/* ------------------------------------------------------------------ hashing
 * Fast seeded 64-bit hash (deterministic across platforms and runs). */
uint64_t folio_hash64(const void *data, size_t len, uint64_t seed);
/* 128-bit content hash (two independent 64-bit lanes), used for duplicate
 * detection.  out[16], little-endian lanes. */
void folio_hash128(const void *data, size_t len, uint8_t out[16]);
/* Hex of a 16-byte hash into buf[33]. */
void folio_hash_hex(const uint8_t h[16], char buf[33]);
/* splitmix64 step: a cheap deterministic PRNG for tests and the embedding. */
static inline uint64_t folio_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* ------------------------------------------------------------------ memory */
/* memcpy by up to `threads` OpenMP threads (0: up to 8 of the OpenMP
 * default; a copy saturates memory well before) in 1 MB pieces when n is
 * large (>= 4 MB) and the caller is not inside a parallel region; else memcpy.
 * One core copies a few GB/s into fresh pages (it faults each one in);
 * several copy and fault in parallel. */
void folio_memcpy_par(void *dst, const void *src, size_t n, int threads);

/* Faults in the pages of up to FOLIO_PREFAULT_MAX regions (writing a zero
 * byte to each page) on a thread of its own, so that a buffer about to be
 * filled -- results coming back from a GPU -- costs no page faults when it
 * is: the host sits idle while the device computes.  The regions' contents
 * are undefined until folio_prefault_join, which must come before anything
 * else writes them.  Regions under 8 MB are skipped; *out is NULL when
 * there is nothing to do or no thread could start (the faults then happen
 * where the data lands: slower, never wrong). */
enum { FOLIO_PREFAULT_MAX = 4 };
typedef struct folio_prefault folio_prefault_t;
void folio_prefault_start(void *const *regions, const size_t *bytes, int n, folio_prefault_t **out);
void folio_prefault_join(folio_prefault_t **h);

/* ------------------------------------------------------------------ time */
double folio_now(void);          /* monotonic seconds */
long folio_peak_rss_kb(void);    /* peak resident set size of this process */
/* Current anonymous resident memory (heap, stacks; not file-backed pages
 * such as an LMDB map, which the kernel can drop at will), -1 if unknown. */
long folio_rss_anon_kb(void);
/* Names the calling thread (as `top -H`, `ps -L`, perf and gdb show it; at
 * most 15 bytes are kept): folio-commit, folio-feeder, ... */
void folio_thread_name(const char *name);

/* ------------------------------------------------------------------ JSON
 * A small DOM parser for JSONL inputs and evaluation data.  Strings are
 * decoded (escapes, \uXXXX with surrogate pairs, to UTF-8) and NUL-terminated;
 * `len` gives the byte length (a decoded string may contain "\u0000", which
 * callers must reject for text).  All memory of one parse lives in the value
 * tree; folio_json_free releases it. */
typedef enum { FOLIO_JSON_NULL, FOLIO_JSON_BOOL, FOLIO_JSON_NUM, FOLIO_JSON_STR,
               FOLIO_JSON_ARR, FOLIO_JSON_OBJ } folio_json_type_t;

typedef struct folio_json folio_json_t;
struct folio_json {
    folio_json_type_t type;
    bool b;
    double num;
    char *str; size_t len;           /* STR */
    folio_json_t **items; size_t n;  /* ARR items or OBJ values */
    char **keys;                     /* OBJ keys (NUL-terminated), n of them */
};

/* Parse exactly one JSON value (surrounding whitespace allowed).  On error
 * returns FOLIO_ERR_PARSE and writes a reason with the byte offset to err. */
folio_status_t folio_json_parse(const char *s, size_t len, folio_json_t **out,
                                char *err, size_t errlen);
void folio_json_free(folio_json_t **v);
/* Object member by key, or NULL. */
const folio_json_t *folio_json_get(const folio_json_t *obj, const char *key);
/* Member string or NULL if absent / not a string. */
const char *folio_json_get_str(const folio_json_t *obj, const char *key, size_t *len);

/* JSON string escaping for writers: writes "..." with escapes to f. */
void folio_json_write_str(FILE *f, const char *s, size_t len);

/* ------------------------------------------------------------------ buffers
 * Growable byte buffer (owned; NUL-terminated after every append). */
typedef struct { char *data; size_t len, cap; } folio_buf_t;
folio_status_t folio_buf_reserve(folio_buf_t *b, size_t cap);
folio_status_t folio_buf_append(folio_buf_t *b, const void *p, size_t n);
folio_status_t folio_buf_printf(folio_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void folio_buf_free(folio_buf_t *b);

#ifdef __cplusplus
}
#endif
#endif /* FOLIO_COMMON_H */
