/* store/prefault.c — helper threads that fault in, ahead of a large write
 * txn, the pages of data.mdb the txn is about to write (a writer with
 * MDB_WRITEMAP only).
 *
 * Why: with MDB_WRITEMAP each page a txn adds past the used end of the file
 * is a page-cache page that the txn's first write faults in: allocated,
 * zeroed, mapped, marked dirty.  On memory the machine touches for the
 * first time (a fresh VM, as the GPU hosts are) that costs ~1.5 ms per MB
 * (400 MB written through a map: 0.63 s cold, 0.09 s warm; populated
 * first, 0.03 s), as much as the rest of a commit, all of it on the single
 * writer.  The helpers populate the range through mappings of their own
 * (MADV_POPULATE_WRITE): the page cache is shared with LMDB's map, so the
 * txn then takes only minor faults.  Populating writes nothing, so racing
 * the txn's own writes to the same pages is harmless, and the helpers'
 * mappings are theirs: LMDB may remap its own meanwhile.
 *
 * A request replaces the one before it (the commit thread's next txn starts
 * where the last one ended).  Kernels before 5.14 lack MADV_POPULATE_WRITE:
 * the first EINVAL turns the helpers off for good. */
#define _GNU_SOURCE
#include "store_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

#define PREFAULT_CHUNK ((size_t)2 << 20) /* one mmap + populate per helper step */

struct store_prefault {
    int fd;                  /* dup of data.mdb's descriptor                */
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t next, end;        /* the request: chunks [next, end) not taken   */
    int in_hand;             /* chunks being populated                      */
    bool quit, unsupported;
};

static void *prefault_main(void *arg)
{
    store_prefault_t *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && !p->unsupported && p->next >= p->end) pthread_cond_wait(&p->cv, &p->mu);
        if (p->quit || p->unsupported) break;
        size_t off = p->next, len = p->end - off < PREFAULT_CHUNK ? p->end - off : PREFAULT_CHUNK;
        p->next = off + len;
        p->in_hand++;
        pthread_mutex_unlock(&p->mu);
        int e = 0;
        void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, p->fd, (off_t)off);
        if (m != MAP_FAILED) {
            /* EFAULT past the end of the file, ENOMEM when memory is short:
             * the txn then faults those pages itself, as without helpers */
            if (madvise(m, len, MADV_POPULATE_WRITE) != 0) e = errno;
            munmap(m, len);
        }
        pthread_mutex_lock(&p->mu);
        if (e == EINVAL) p->unsupported = true;
        if (--p->in_hand == 0) pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

folio_status_t store_prefault_create(int fd, int n_threads, store_prefault_t **out)
{
    *out = NULL;
    store_prefault_t *p = calloc(1, sizeof *p);
    FOLIO_CHECK_ALLOC(p);
    p->fd = dup(fd);
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    if (p->fd < 0 || !p->threads || pthread_mutex_init(&p->mu, NULL) != 0) {
        if (p->fd >= 0) close(p->fd);
        free(p->threads);
        free(p);
        return FOLIO_ERR_NOMEM;
    }
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        close(p->fd);
        free(p->threads);
        free(p);
        return FOLIO_ERR_NOMEM;
    }
    for (; p->n_threads < n_threads; p->n_threads++)
        if (pthread_create(&p->threads[p->n_threads], NULL, prefault_main, p) != 0) break;
    *out = p;
    if (p->n_threads == 0) {
        store_prefault_destroy(out);
        return FOLIO_ERR_NOMEM;
    }
    return FOLIO_OK;
}

void store_prefault_range(store_prefault_t *p, size_t off, size_t len)
{
    if (!p) return;
    long ps = sysconf(_SC_PAGESIZE);
    size_t page = ps > 0 ? (size_t)ps : 4096;
    pthread_mutex_lock(&p->mu);
    p->next = off / page * page;
    p->end = off + len;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

bool store_prefault_wait(store_prefault_t *p)
{
    if (!p) return false;
    pthread_mutex_lock(&p->mu);
    while ((p->next < p->end && !p->unsupported) || p->in_hand > 0) pthread_cond_wait(&p->cv, &p->mu);
    bool ok = !p->unsupported;
    pthread_mutex_unlock(&p->mu);
    return ok;
}

void store_prefault_destroy(store_prefault_t **pp)
{
    store_prefault_t *p = *pp;
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int t = 0; t < p->n_threads; t++) pthread_join(p->threads[t], NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    close(p->fd);
    free(p->threads);
    free(p);
    *pp = NULL;
}
