/* common/util.c — clocks, peak RSS and the growable buffer. */
#include "common.h"

#include <omp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>

double folio_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void folio_thread_name(const char *name) { (void)prctl(PR_SET_NAME, name, 0, 0, 0); }

long folio_peak_rss_kb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return ru.ru_maxrss; /* Linux reports kilobytes */
}

long folio_rss_anon_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "RssAnon:", 8)) { kb = strtol(line + 8, NULL, 10); break; }
    fclose(f);
    return kb;
}

folio_status_t folio_buf_reserve(folio_buf_t *b, size_t cap)
{
    if (cap + 1 <= b->cap) return FOLIO_OK;
    size_t nc = b->cap ? b->cap : 64;
    while (nc < cap + 1) nc *= 2;
    char *p = realloc(b->data, nc);
    FOLIO_CHECK_ALLOC(p);
    b->data = p;
    b->cap = nc;
    return FOLIO_OK;
}

folio_status_t folio_buf_append(folio_buf_t *b, const void *p, size_t n)
{
    FOLIO_TRY(folio_buf_reserve(b, b->len + n));
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return FOLIO_OK;
}

folio_status_t folio_buf_printf(folio_buf_t *b, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) { va_end(ap2); return FOLIO_ERR_INTERNAL; }
    folio_status_t st = folio_buf_reserve(b, b->len + (size_t)n);
    if (st != FOLIO_OK) { va_end(ap2); return st; }
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
    return FOLIO_OK;
}

void folio_buf_free(folio_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void folio_memcpy_par(void *dst, const void *src, size_t n, int threads)
{
    enum { PIECE = 1 << 20 };
    if (threads == 0) threads = omp_get_max_threads() < 8 ? omp_get_max_threads() : 8;
    if (threads <= 1 || n < 4 * (size_t)PIECE || omp_in_parallel()) {
        if (n) memcpy(dst, src, n);
        return;
    }
    const long np = (long)((n + PIECE - 1) / PIECE);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (long k = 0; k < np; k++) {
        const size_t o = (size_t)k * PIECE, c = n - o < (size_t)PIECE ? n - o : (size_t)PIECE;
        memcpy((char *)dst + o, (const char *)src + o, c);
    }
}

struct folio_prefault {
    pthread_t thread;
    char *p[FOLIO_PREFAULT_MAX];
    size_t n[FOLIO_PREFAULT_MAX];
    int count;
};

static void *prefault_run(void *arg)
{
    folio_thread_name("folio-prefault");
    const struct folio_prefault *f = arg;
    for (int r = 0; r < f->count; r++) {
        volatile char *p = f->p[r];
        for (size_t o = 0; o < f->n[r]; o += 4096) p[o] = 0;
    }
    return NULL;
}

void folio_prefault_start(void *const *regions, const size_t *bytes, int n, folio_prefault_t **out)
{
    *out = NULL;
    struct folio_prefault f = {0};
    for (int r = 0; r < n && r < FOLIO_PREFAULT_MAX; r++)
        if (regions[r] && bytes[r] >= ((size_t)8 << 20)) {
            f.p[f.count] = regions[r];
            f.n[f.count++] = bytes[r];
        }
    if (f.count == 0) return;
    folio_prefault_t *h = malloc(sizeof *h);
    if (!h) return;
    *h = f;
    if (pthread_create(&h->thread, NULL, prefault_run, h) != 0) {
        free(h);
        return;
    }
    *out = h;
}

void folio_prefault_join(folio_prefault_t **h)
{
    if (!h || !*h) return;
    pthread_join((*h)->thread, NULL);
    free(*h);
    *h = NULL;
}
