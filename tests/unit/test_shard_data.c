/* tests/unit/test_shard_data.c — every document of the four dev data sets
 * goes through the reader and folio_doc_analyze with all invariants holding,
 * plus quality floors that catch regressions of the splitter:
 *  - billsum: bills open with "SECTION 1." / "SEC. 1." headings, which must
 *    be found as sections;
 *  - sciqa: papers open with an "Introduction" heading line;
 *  - pubmed: one sentence per line in most documents, so sentences >= lines;
 *  - spdx: most licences are split into several sentences. */
#include <pthread.h>

#include "test_shard_common.h"

typedef struct {
    int docs, ok;
    long tokens, sents, sections;
    int with_sections;   /* documents with >= 2 sections */
    int first_titled;    /* documents whose first section is titled */
    int intro_first;     /* first section titled "Introduction" */
    int sents_ge_lines;  /* sentences >= non-empty lines */
    int multi_sent;      /* >= 3 sentences */
} stats_t;

static void run_file(const char *name, stats_t *s)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", FOLIO_DATA_DIR, name);
    const char *in[] = { path };
    folio_reader_t *r;
    cr_assert_eq(folio_reader_create(in, 1, &r), FOLIO_OK);
    memset(s, 0, sizeof *s);
    char why[256];
    for (;;) {
        folio_doc_t d = { 0 };
        folio_status_t st = folio_reader_next(r, &d, why, sizeof why);
        if (st == FOLIO_EOF) break;
        s->docs++;
        cr_assert_eq(st, FOLIO_OK, "%s: %s: %s", name, d.origin, why);
        cr_assert_eq(folio_doc_analyze(&d), FOLIO_OK, "%s: %s", name, d.id);
        tsh_check_doc(&d, d.id);
        s->ok++;
        s->tokens += d.n_tokens;
        s->sents += d.n_sents;
        s->sections += d.n_sections;
        s->with_sections += d.n_sections >= 2;
        s->first_titled += d.sections[0].level > 0;
        s->intro_first += d.sections[0].level > 0 && d.sections[0].title_end - d.sections[0].title_start == 12 &&
                          !memcmp(d.text + d.sections[0].title_start, "Introduction", 12);
        long lines = 0;
        for (size_t i = 0, start = 0; i <= d.len; i++) {
            if (i == d.len || d.text[i] == '\n') {
                bool blank = true;
                for (size_t j = start; j < i && blank; j++) blank = tsh_is_space((unsigned char)d.text[j]);
                lines += !blank;
                start = i + 1;
            }
        }
        s->sents_ge_lines += d.n_sents >= lines;
        s->multi_sent += d.n_sents >= 3;
        folio_doc_clear(&d);
    }
    folio_reader_destroy(&r);
    cr_log_info("%s: %d docs, %ld tokens, %ld sentences, %ld sections; >=2 sections %d, titled first %d, "
                "Introduction first %d, sentences>=lines %d, >=3 sentences %d",
                name, s->docs, s->tokens, s->sents, s->sections, s->with_sections, s->first_titled, s->intro_first,
                s->sents_ge_lines, s->multi_sent);
}

Test(shard_data, billsum)
{
    stats_t s;
    run_file("billsum-dev.jsonl", &s);
    cr_assert_eq(s.docs, 100);
    cr_assert_geq(s.first_titled, 95, "bills open with a SECTION/SEC heading: %d", s.first_titled);
    cr_assert_geq(s.with_sections, 90, "%d", s.with_sections);
}

Test(shard_data, sciqa)
{
    stats_t s;
    run_file("sciqa-dev.jsonl", &s);
    cr_assert_eq(s.docs, 22);
    cr_assert_geq(s.intro_first, 20, "papers open with Introduction: %d", s.intro_first);
    cr_assert_geq(s.with_sections, 21, "%d", s.with_sections);
}

Test(shard_data, pubmed)
{
    stats_t s;
    run_file("pubmed-dev.jsonl", &s);
    cr_assert_eq(s.docs, 100);
    cr_assert_geq(s.sents_ge_lines, 90, "one sentence per line: %d", s.sents_ge_lines);
}

Test(shard_data, spdx)
{
    stats_t s;
    run_file("spdx-licenses.jsonl", &s);
    cr_assert_eq(s.docs, 727);
    cr_assert_geq(s.multi_sent, 600, "%d", s.multi_sent);
}

/* folio_doc_analyze from several threads at once (the stem memo is per
 * thread; nothing else is shared) gives exactly the sequential results. */
typedef struct { folio_doc_t *docs; size_t n, first, step; } job_t;

static void *analyze_job(void *arg)
{
    job_t *j = arg;
    for (size_t i = j->first; i < j->n; i += j->step) folio_doc_analyze(&j->docs[i]);
    return NULL;
}

Test(shard_data, threads_agree_with_sequential)
{
    char path[512];
    snprintf(path, sizeof path, "%s/spdx-licenses.jsonl", FOLIO_DATA_DIR);
    const char *in[] = { path };
    folio_reader_t *r;
    cr_assert_eq(folio_reader_create(in, 1, &r), FOLIO_OK);
    size_t n = 0;
    folio_doc_t *docs = calloc(1024, sizeof *docs);
    char why[256];
    while (n < 1024 && folio_reader_next(r, &docs[n], why, sizeof why) == FOLIO_OK) n++;
    folio_reader_destroy(&r);
    /* sequential reference: a digest of every doc's hashes and boundaries */
    uint64_t *ref = calloc(n, sizeof *ref);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(folio_doc_analyze(&docs[i]), FOLIO_OK);
        uint64_t h = folio_hash64(docs[i].stem_hashes, docs[i].n_tokens * 8, 1) ^
                     folio_hash64(docs[i].term_hashes, docs[i].n_tokens * 8, 2) ^
                     folio_hash64(docs[i].sents, docs[i].n_sents * sizeof *docs[i].sents, 3);
        ref[i] = h;
    }
    enum { T = 4 };
    pthread_t th[T];
    job_t jobs[T];
    for (int k = 0; k < T; k++) {
        jobs[k] = (job_t){ docs, n, (size_t)k, T };
        cr_assert_eq(pthread_create(&th[k], NULL, analyze_job, &jobs[k]), 0);
    }
    for (int k = 0; k < T; k++) pthread_join(th[k], NULL);
    for (size_t i = 0; i < n; i++) {
        uint64_t h = folio_hash64(docs[i].stem_hashes, docs[i].n_tokens * 8, 1) ^
                     folio_hash64(docs[i].term_hashes, docs[i].n_tokens * 8, 2) ^
                     folio_hash64(docs[i].sents, docs[i].n_sents * sizeof *docs[i].sents, 3);
        cr_assert_eq(h, ref[i], "%s differs when analyzed in a thread", docs[i].id);
        folio_doc_clear(&docs[i]);
    }
    free(ref);
    free(docs);
}
