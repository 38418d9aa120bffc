/* tests/unit/test_pipeline_scratch.c — the planner's on-disk state: the plan
 * log reads back what was written, in order; the job index finds exactly
 * what was put (ids and contents), across its batch commits and map growth,
 * and leaves no file behind. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipeline/pipeline_internal.h"

static char *tmp_dir(void)
{
    char *t = strdup("/tmp/folio-test-scratch-XXXXXX");
    cr_assert(mkdtemp(t));
    return t;
}

/* Entries in dir other than . and .. */
static int dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void hash_of(uint64_t i, uint8_t h[16])
{
    uint64_t s = i * 7919 + 1, a = folio_splitmix64(&s), b = folio_splitmix64(&s);
    memcpy(h, &a, 8);
    memcpy(h + 8, &b, 8);
}

Test(planlog, round_trip_in_order)
{
    char *dir = tmp_dir();
    folio_planlog_t *p = NULL;
    cr_assert_eq(folio_planlog_create(dir, &p), FOLIO_OK);
    cr_assert_eq(dir_entries(dir), 0, "the plan log is unlinked at once");
    enum { N = 50000 };
    folio_plan_entry_t e;
    for (int i = 0; i < N; i++) {
        e.action = (uint8_t)(i % 3);
        hash_of((uint64_t)i, e.hash);
        if (e.action == FOLIO_PLAN_DUP) {
            int len = 1 + i % 500; /* up to FOLIO_STORE_MAX_ID */
            memset(e.dup_of, 'a' + i % 26, (size_t)len);
            e.dup_of[len] = 0;
        } else {
            strcpy(e.dup_of, "ignored unless DUP");
        }
        cr_assert_eq(folio_planlog_append(p, &e), FOLIO_OK);
    }
    cr_assert_eq(folio_planlog_rewind(p), FOLIO_OK);
    cr_assert_neq(folio_planlog_append(p, &e), FOLIO_OK, "no appends once reading");
    for (int i = 0; i < N; i++) {
        cr_assert_eq(folio_planlog_next(p, &e), FOLIO_OK);
        cr_assert_eq(e.action, i % 3);
        uint8_t h[16];
        hash_of((uint64_t)i, h);
        cr_assert_eq(memcmp(e.hash, h, 16), 0);
        if (e.action == FOLIO_PLAN_DUP) {
            size_t len = (size_t)(1 + i % 500);
            cr_assert_eq(strlen(e.dup_of), len);
            cr_assert_eq(e.dup_of[0], 'a' + i % 26);
        } else {
            cr_assert_str_empty(e.dup_of);
        }
    }
    cr_assert_eq(folio_planlog_next(p, &e), FOLIO_EOF);
    folio_planlog_destroy(&p);
    cr_assert_null(p);
    folio_planlog_destroy(&p); /* NULL-safe */
    rmdir(dir);
    free(dir);
}

static void long_id(char *buf, int i)
{
    /* 450-byte ids: the index outgrows its first 64 MB map */
    memset(buf, 'x', 440);
    snprintf(buf + 440, 20, "-%d", i);
}

Test(jobidx, finds_exactly_what_was_put, .timeout = 120)
{
    char *dir = tmp_dir();
    folio_jobidx_t *x = NULL;
    cr_assert_eq(folio_jobidx_create(dir, &x), FOLIO_OK);
    cr_assert_eq(dir_entries(dir), 0, "the index file is unlinked once open");
    enum { N = 120000 };
    char id[512], got[512];
    uint8_t h[16], gh[16];
    bool found;
    for (int i = 0; i < N; i++) {
        long_id(id, i);
        hash_of((uint64_t)i, h);
        if (i % 1000 == 0) { /* not there before its put */
            cr_assert_eq(folio_jobidx_find_id(x, id, gh, &found), FOLIO_OK);
            cr_assert(!found);
        }
        /* odd ones are ids only (stored as is / duplicate records) */
        cr_assert_eq(folio_jobidx_put(x, id, h, i % 2 == 0), FOLIO_OK);
        if (i % 997 == 0) { /* seen at once, inside the open batch */
            cr_assert_eq(folio_jobidx_find_id(x, id, gh, &found), FOLIO_OK);
            cr_assert(found);
            cr_assert_eq(memcmp(gh, h, 16), 0);
        }
    }
    for (int i = 0; i < N; i += 7) {
        long_id(id, i);
        hash_of((uint64_t)i, h);
        cr_assert_eq(folio_jobidx_find_id(x, id, gh, &found), FOLIO_OK);
        cr_assert(found, "id %d", i);
        cr_assert_eq(memcmp(gh, h, 16), 0);
        cr_assert_eq(folio_jobidx_find_content(x, h, got, sizeof got, &found), FOLIO_OK);
        cr_assert_eq(found, i % 2 == 0, "content of %d", i);
        if (found) cr_assert_str_eq(got, id);
    }
    /* absent keys, and ids the store would reject, are simply not found */
    hash_of((uint64_t)N + 5, h);
    cr_assert_eq(folio_jobidx_find_content(x, h, got, sizeof got, &found), FOLIO_OK);
    cr_assert(!found);
    cr_assert_eq(folio_jobidx_find_id(x, "", gh, &found), FOLIO_OK);
    cr_assert(!found);
    char huge[700];
    memset(huge, 'y', sizeof huge - 1);
    huge[sizeof huge - 1] = 0;
    cr_assert_eq(folio_jobidx_find_id(x, huge, gh, &found), FOLIO_OK);
    cr_assert(!found);
    cr_assert_neq(folio_jobidx_put(x, huge, h, true), FOLIO_OK);
    folio_jobidx_destroy(&x);
    cr_assert_null(x);
    folio_jobidx_destroy(&x);
    cr_assert_eq(dir_entries(dir), 0);
    rmdir(dir);
    free(dir);
}

Test(jobidx, missing_directory_is_an_error)
{
    folio_jobidx_t *x = NULL;
    folio_planlog_t *p = NULL;
    cr_assert_eq(folio_jobidx_create("/nonexistent/folio-dir", &x), FOLIO_ERR_IO);
    cr_assert_null(x);
    cr_assert_eq(folio_planlog_create("/nonexistent/folio-dir", &p), FOLIO_ERR_IO);
    cr_assert_null(p);
}
