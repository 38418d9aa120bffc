/* tests/unit/test_pipeline_handoff.c — the commit thread's hand-off: jobs
 * run in submission order, one at a time, at most one in flight; after a
 * failing job nothing more runs, every later submit and the finish report
 * that error, and every job is freed exactly once. */
#include <criterion/criterion.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "pipeline/pipeline_internal.h"

typedef struct {
    int ran[64], n_ran;     /* written by the thread only                */
    int fail_at;            /* job index whose run fails (-1: none)      */
    atomic_int freed;       /* jobs freed so far                         */
    atomic_int running;     /* jobs inside run() now                     */
    atomic_int max_running;
} rec_t;

typedef struct {
    int index;
    rec_t *rec;
} job_t;

static folio_status_t run_job(void *ctx, void *vjob)
{
    rec_t *r = ctx;
    job_t *j = vjob;
    int now = atomic_fetch_add(&r->running, 1) + 1;
    if (now > atomic_load(&r->max_running)) atomic_store(&r->max_running, now);
    usleep(2000); /* long enough for the submitter to run ahead if it could */
    r->ran[r->n_ran++] = j->index;
    atomic_fetch_sub(&r->running, 1);
    return j->index == r->fail_at ? FOLIO_ERR_STORE : FOLIO_OK;
}

static void free_job(void *vjob)
{
    job_t *j = vjob;
    atomic_fetch_add(&j->rec->freed, 1);
    free(j);
}

static job_t *job(rec_t *r, int i)
{
    job_t *j = malloc(sizeof *j);
    cr_assert(j);
    j->index = i;
    j->rec = r;
    return j;
}

Test(handoff, in_order_one_at_a_time)
{
    rec_t r = {.fail_at = -1};
    folio_handoff_t *h = NULL;
    cr_assert_eq(folio_handoff_create(run_job, free_job, &r, &h), FOLIO_OK);
    for (int i = 0; i < 40; i++) {
        cr_assert_eq(folio_handoff_submit(h, job(&r, i)), FOLIO_OK);
        /* submit waited for the thread to be idle: all earlier jobs are done */
        cr_assert_geq(atomic_load(&r.freed), i, "job %d submitted with %d freed", i, atomic_load(&r.freed));
    }
    cr_assert_eq(folio_handoff_wait(h), FOLIO_OK);
    cr_assert_eq(atomic_load(&r.freed), 40);
    cr_assert_eq(folio_handoff_finish(h), FOLIO_OK);
    cr_assert_eq(r.n_ran, 40);
    for (int i = 0; i < 40; i++) cr_assert_eq(r.ran[i], i);
    cr_assert_eq(atomic_load(&r.max_running), 1);
    cr_assert_gt(folio_handoff_busy_seconds(h), 0.0);
    folio_handoff_destroy(&h);
    cr_assert_null(h);
    folio_handoff_destroy(&h); /* NULL-safe */
}

Test(handoff, first_error_stops_and_is_reported)
{
    rec_t r = {.fail_at = 3};
    folio_handoff_t *h = NULL;
    cr_assert_eq(folio_handoff_create(run_job, free_job, &r, &h), FOLIO_OK);
    int submitted = 0, refused = 0;
    for (int i = 0; i < 10; i++) {
        folio_status_t st = folio_handoff_submit(h, job(&r, i));
        submitted++;
        if (st != FOLIO_OK) {
            cr_assert_eq(st, FOLIO_ERR_STORE);
            refused++;
        }
    }
    cr_assert_geq(refused, 5, "submits after the failure report it");
    cr_assert_eq(folio_handoff_finish(h), FOLIO_ERR_STORE);
    cr_assert_eq(folio_handoff_finish(h), FOLIO_ERR_STORE, "finish twice is harmless");
    cr_assert_eq(r.n_ran, 4, "nothing runs after the failing job");
    for (int i = 0; i < 4; i++) cr_assert_eq(r.ran[i], i);
    cr_assert_eq(atomic_load(&r.freed), submitted, "every job freed exactly once");
    folio_handoff_destroy(&h);
}

Test(handoff, destroy_runs_what_was_submitted)
{
    rec_t r = {.fail_at = -1};
    folio_handoff_t *h = NULL;
    cr_assert_eq(folio_handoff_create(run_job, free_job, &r, &h), FOLIO_OK);
    cr_assert_eq(folio_handoff_submit(h, job(&r, 0)), FOLIO_OK);
    cr_assert_eq(folio_handoff_submit(h, job(&r, 1)), FOLIO_OK);
    folio_handoff_destroy(&h);
    cr_assert_eq(r.n_ran, 2);
    cr_assert_eq(atomic_load(&r.freed), 2);
}
