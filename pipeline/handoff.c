/* pipeline/handoff.c — a thread that runs jobs handed to it, one at a time,
 * in order: rank 0 commits a round on it while computing the next one.
 *
 * One slot and a busy flag: submit waits until the thread is idle, so at
 * most one job is in flight besides what the caller is building (memory
 * stays at two rounds).  After the first failing job the thread runs no
 * more jobs (it frees them), so nothing is done out of order past an error,
 * and every later submit and the finish report that first error. */
#include "pipeline_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct folio_handoff {
    folio_handoff_fn run;
    folio_handoff_free_fn free_job;
    void *ctx;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* slot filled / thread idle / quit: one cv, broadcast */
    void *slot;        /* the job waiting for the thread                   */
    bool busy;         /* the thread is running a job                      */
    bool quit;         /* no more jobs: the thread ends once the slot is empty */
    folio_status_t err;
    double busy_seconds;
};

static void *handoff_main(void *arg)
{
    folio_thread_name("folio-commit");
    folio_handoff_t *h = arg;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (!h->slot && !h->quit) pthread_cond_wait(&h->cv, &h->mu);
        if (!h->slot) break; /* quit with nothing left */
        void *job = h->slot;
        h->slot = NULL;
        h->busy = true;
        folio_status_t err = h->err;
        pthread_mutex_unlock(&h->mu);
        folio_status_t st = FOLIO_OK;
        double t = folio_now();
        if (err == FOLIO_OK) st = h->run(h->ctx, job);
        t = folio_now() - t;
        h->free_job(job);
        pthread_mutex_lock(&h->mu);
        h->busy_seconds += t;
        if (h->err == FOLIO_OK) h->err = st;
        h->busy = false;
        pthread_cond_broadcast(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

folio_status_t folio_handoff_create(folio_handoff_fn run, folio_handoff_free_fn free_job, void *ctx,
                                    folio_handoff_t **out)
{
    *out = NULL;
    folio_handoff_t *h = calloc(1, sizeof *h);
    FOLIO_CHECK_ALLOC(h);
    h->run = run;
    h->free_job = free_job;
    h->ctx = ctx;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    int rc = pthread_create(&h->thread, NULL, handoff_main, h);
    if (rc != 0) {
        folio_log(FOLIO_LOG_ERROR, "cannot start the commit thread: %s", strerror(rc));
        folio_handoff_destroy(&h);
        return rc == EAGAIN ? FOLIO_ERR_NOMEM : FOLIO_ERR_INTERNAL;
    }
    h->started = true;
    *out = h;
    return FOLIO_OK;
}

folio_status_t folio_handoff_submit(folio_handoff_t *h, void *job)
{
    pthread_mutex_lock(&h->mu);
    while ((h->slot || h->busy) && h->err == FOLIO_OK) pthread_cond_wait(&h->cv, &h->mu);
    folio_status_t err = h->quit ? FOLIO_ERR_INTERNAL : h->err;
    if (err == FOLIO_OK) {
        h->slot = job;
        pthread_cond_broadcast(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    if (err != FOLIO_OK) h->free_job(job);
    return err;
}

folio_status_t folio_handoff_wait(folio_handoff_t *h)
{
    pthread_mutex_lock(&h->mu);
    while (h->slot || h->busy) pthread_cond_wait(&h->cv, &h->mu);
    folio_status_t err = h->err;
    pthread_mutex_unlock(&h->mu);
    return err;
}

folio_status_t folio_handoff_finish(folio_handoff_t *h)
{
    if (!h->started) return h->err;
    pthread_mutex_lock(&h->mu);
    h->quit = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    h->started = false;
    return h->err;
}

double folio_handoff_busy_seconds(folio_handoff_t *h)
{
    pthread_mutex_lock(&h->mu);
    double s = h->busy_seconds;
    pthread_mutex_unlock(&h->mu);
    return s;
}

void folio_handoff_destroy(folio_handoff_t **ph)
{
    if (!ph || !*ph) return;
    folio_handoff_t *h = *ph;
    folio_handoff_finish(h);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
    *ph = NULL;
}
