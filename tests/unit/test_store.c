/* tests/unit/test_store.c — the LMDB store: commits and read-back against a
 * brute-force reference (synthetic and real documents), duplicates and
 * replacement (postings/df follow), map growth from a 64 KiB map (with the
 * map's disk blocks reserved, and a full disk failing cleanly), the check
 * finding damaged records, export independent of insertion order, kill -9
 * atomicity, network-filesystem refusal, read-only open of a missing store. */
#define _GNU_SOURCE /* nftw */
#include <criterion/criterion.h>

#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"

/* ------------------------------------------------------------ helpers */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static char *tmp_store(void)
{
    char *t = strdup("/tmp/folio-test-store-XXXXXX");
    cr_assert(mkdtemp(t));
    /* the store directory itself is created by folio_store_open */
    size_t n = strlen(t);
    char *p = malloc(n + 8);
    snprintf(p, n + 8, "%s/db", t);
    free(t);
    return p;
}

static void rm_store(char *path)
{
    char *parent = strdup(path);
    *strrchr(parent, '/') = '\0';
    nftw(parent, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(parent);
    free(path);
}

static folio_store_t *open_store(const char *path, size_t map)
{
    folio_store_opts_t o = {.readonly = false, .initial_map_bytes = map};
    folio_store_t *s = NULL;
    cr_assert_eq(folio_store_open(path, &o, &s), FOLIO_OK);
    return s;
}

static uint64_t check_faults(folio_store_t *s)
{
    uint64_t n = 99;
    cr_assert_eq(folio_store_check(s, stderr, 20, &n), FOLIO_OK);
    return n;
}

/* A synthetic analyzed document built word by word so that every array is
 * known by construction: words from a vocabulary of vocab words, sentences
 * of 1..12 words ending in ".\n", sections of 1..6 sentences with a title
 * line.  Stem hash = term hash = folio_hash64 of the word. */
static const char *word(uint32_t i, char *buf)
{
    static const char *syl[] = {"ka", "lo", "mi", "ne", "su", "tar", "vex", "qui", "ro", "dal"};
    buf[0] = '\0';
    do {
        strcat(buf, syl[i % 10]);
        i /= 10;
    } while (i);
    return buf;
}

static void synth_doc(folio_doc_t *d, const char *id, uint64_t seed, uint32_t n_sents, uint32_t vocab)
{
    memset(d, 0, sizeof *d);
    d->id = strdup(id);
    char title[64];
    snprintf(title, sizeof title, "Title of %s", id);
    d->title = strdup(title);
    d->origin = strdup("synthetic");
    folio_buf_t b = {0};
    size_t cap_t = 16;
    d->tokens = malloc(cap_t * sizeof *d->tokens);
    d->stem_hashes = malloc(cap_t * 8);
    d->term_hashes = malloc(cap_t * 8);
    d->sents = calloc(n_sents, sizeof *d->sents);
    d->sections = calloc(n_sents, sizeof *d->sections);
    uint64_t st = seed;
    uint32_t s = 0;
    while (s < n_sents) {
        folio_section_t *sec = &d->sections[d->n_sections];
        sec->start = (uint32_t)b.len;
        sec->title_start = (uint32_t)b.len;
        folio_buf_printf(&b, "SECTION %u\n", d->n_sections + 1);
        sec->title_end = (uint32_t)b.len - 1;
        sec->sent_begin = s;
        sec->level = 1;
        uint32_t k = 1 + (uint32_t)(folio_splitmix64(&st) % 6);
        for (uint32_t j = 0; j < k && s < n_sents; j++, s++) {
            folio_sentence_t *q = &d->sents[s];
            q->start = (uint32_t)b.len;
            q->tok_begin = d->n_tokens;
            q->section = d->n_sections;
            uint32_t nw = 1 + (uint32_t)(folio_splitmix64(&st) % 12);
            for (uint32_t w = 0; w < nw; w++) {
                char buf[64];
                word((uint32_t)(folio_splitmix64(&st) % vocab), buf);
                if (w) folio_buf_append(&b, " ", 1);
                if (d->n_tokens == cap_t) {
                    cap_t *= 2;
                    d->tokens = realloc(d->tokens, cap_t * sizeof *d->tokens);
                    d->stem_hashes = realloc(d->stem_hashes, cap_t * 8);
                    d->term_hashes = realloc(d->term_hashes, cap_t * 8);
                }
                d->tokens[d->n_tokens] = (folio_span_t){(uint32_t)b.len, (uint32_t)(b.len + strlen(buf))};
                d->stem_hashes[d->n_tokens] = d->term_hashes[d->n_tokens] = folio_hash64(buf, strlen(buf), 7);
                d->n_tokens++;
                folio_buf_append(&b, buf, strlen(buf));
            }
            folio_buf_append(&b, ".", 1);
            q->end = (uint32_t)b.len;
            q->tok_end = d->n_tokens;
            folio_buf_append(&b, "\n", 1);
        }
        sec->sent_end = s;
        sec->end = (uint32_t)b.len;
        d->n_sections++;
    }
    d->n_sents = n_sents;
    d->text = b.data;
    d->len = b.len;
    folio_hash128(d->text, d->len, d->hash);
}

/* Results with values derived from the doc (so they differ per doc). */
typedef struct {
    folio_doc_results_t r;
    float *buf;
} synth_res_t;

static void synth_results(synth_res_t *x, const folio_doc_t *d, uint32_t dim, uint64_t seed)
{
    uint32_t nb = (d->n_tokens + 63) / 64;
    size_t n = (size_t)d->n_sents * dim + (size_t)nb * dim + (size_t)d->n_sections * dim + dim + d->n_sents;
    x->buf = malloc(n * sizeof(float));
    uint64_t st = seed ^ d->hash[0];
    for (size_t i = 0; i < n; i++) x->buf[i] = (float)((double)(folio_splitmix64(&st) >> 11) / 9007199254740992.0 - 0.5);
    float *p = x->buf;
    x->r = (folio_doc_results_t){.pattern = "window=256,block=64,group=64,topk=8,layers=2", .d = dim, .n_blocks = nb};
    x->r.sent_vecs = p;
    p += (size_t)d->n_sents * dim;
    x->r.block_vecs = p;
    p += (size_t)nb * dim;
    x->r.section_vecs = p;
    p += (size_t)d->n_sections * dim;
    x->r.doc_vec = p;
    p += dim;
    x->r.salience = p;
}

/* Reference distinct terms of a doc: sorted hashes with counts. */
static int cmp64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t ref_terms(const folio_doc_t *d, uint64_t **terms, uint32_t **tfs)
{
    uint64_t *h = malloc((d->n_tokens + 1) * 8);
    memcpy(h, d->stem_hashes, d->n_tokens * 8ul);
    qsort(h, d->n_tokens, 8, cmp64);
    *terms = malloc((d->n_tokens + 1) * 8);
    *tfs = calloc(d->n_tokens + 1, 4);
    uint32_t m = 0;
    for (uint32_t i = 0; i < d->n_tokens; i++) {
        if (i == 0 || h[i] != h[i - 1]) (*terms)[m++] = h[i];
        (*tfs)[m - 1]++;
    }
    free(h);
    return m;
}

static bool doc_has_term(const folio_doc_t *d, uint64_t t, uint32_t *tf)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < d->n_tokens; i++) n += d->stem_hashes[i] == t;
    *tf = n;
    return n > 0;
}

/* Compares a stored doc with its source, field by field. */
static void assert_doc_equal(const folio_stored_doc_t *s, const folio_doc_t *d, const folio_doc_results_t *r)
{
    cr_assert_str_eq(s->id, d->id);
    cr_assert_str_eq(s->title, d->title);
    cr_assert_eq(s->len, d->len);
    cr_assert_eq(memcmp(s->text, d->text, d->len), 0);
    cr_assert_eq(s->text[s->len], '\0');
    cr_assert_eq(memcmp(s->hash, d->hash, 16), 0);
    cr_assert_eq(s->n_tokens, d->n_tokens);
    cr_assert_eq(s->n_sents, d->n_sents);
    cr_assert_eq(s->n_sections, d->n_sections);
    cr_assert_eq(memcmp(s->sents, d->sents, d->n_sents * sizeof *d->sents), 0);
    cr_assert_eq(memcmp(s->sections, d->sections, d->n_sections * sizeof *d->sections), 0);
    cr_assert_eq((uintptr_t)s->sents % 4, 0);
    uint64_t *terms;
    uint32_t *tfs;
    uint32_t m = ref_terms(d, &terms, &tfs);
    cr_assert_eq(s->n_terms, m);
    cr_assert_eq((uintptr_t)s->terms % 8, 0);
    if (m) {
        cr_assert_eq(memcmp(s->terms, terms, m * 8ul), 0);
        cr_assert_eq(memcmp(s->tfs, tfs, m * 4ul), 0);
    }
    free(terms);
    free(tfs);
    if (!r) {
        cr_assert_null(s->sent_vecs);
        cr_assert_null(s->salience);
        cr_assert_str_eq(s->pattern, "");
        return;
    }
    cr_assert_str_eq(s->pattern, r->pattern);
    cr_assert_eq(s->d, r->d);
    cr_assert_eq(s->n_blocks, r->n_blocks);
    cr_assert_eq((uintptr_t)s->sent_vecs % 4, 0);
    cr_assert_eq(memcmp(s->sent_vecs, r->sent_vecs, (size_t)d->n_sents * r->d * 4), 0);
    cr_assert_eq(memcmp(s->block_vecs, r->block_vecs, (size_t)r->n_blocks * r->d * 4), 0);
    cr_assert_eq(memcmp(s->section_vecs, r->section_vecs, (size_t)d->n_sections * r->d * 4), 0);
    cr_assert_eq(memcmp(s->doc_vec, r->doc_vec, (size_t)r->d * 4), 0);
    cr_assert_eq(memcmp(s->salience, r->salience, (size_t)d->n_sents * 4), 0);
}

/* Every term of every doc: the store's postings and df equal a brute-force
 * scan over the docs (docs[i] committed with docnum nums[i]). */
static void assert_index_matches(folio_store_t *s, folio_doc_t *docs, const uint32_t *nums, int n)
{
    folio_store_reader_t *r;
    cr_assert_eq(folio_store_reader_open(s, &r), FOLIO_OK);
    for (int i = 0; i < n; i++) {
        uint64_t *terms;
        uint32_t *tfs;
        uint32_t m = ref_terms(&docs[i], &terms, &tfs);
        for (uint32_t t = 0; t < m; t += 1 + t / 4) { /* a spread of terms */
            const folio_posting_t *p;
            uint32_t np, df;
            cr_assert_eq(folio_store_postings(r, terms[t], &p, &np, &df), FOLIO_OK);
            uint32_t want = 0;
            for (int j = 0; j < n; j++) {
                uint32_t tf;
                if (!doc_has_term(&docs[j], terms[t], &tf)) continue;
                want++;
                bool found = false;
                for (uint32_t k = 0; k < np; k++)
                    if (p[k].doc == nums[j]) {
                        cr_assert_eq(p[k].tf, tf);
                        found = true;
                    }
                cr_assert(found, "doc %s missing from postings", docs[j].id);
            }
            cr_assert_eq(np, want);
            cr_assert_eq(df, want);
            for (uint32_t k = 1; k < np; k++) cr_assert_lt(p[k - 1].doc, p[k].doc);
            uint32_t df2;
            cr_assert_eq(folio_store_df_lookup(s, &terms[t], 1, &df2), FOLIO_OK);
            cr_assert_eq(df2, want);
        }
        free(terms);
        free(tfs);
    }
    folio_store_reader_close(&r);
}

static uint32_t docnum_of(folio_store_t *s, const char *id)
{
    folio_store_reader_t *r;
    cr_assert_eq(folio_store_reader_open(s, &r), FOLIO_OK);
    folio_stored_doc_t d;
    cr_assert_eq(folio_store_get_doc(r, id, &d), FOLIO_OK, "get %s", id);
    uint32_t n = d.docnum;
    folio_store_reader_close(&r);
    return n;
}

/* ------------------------------------------------------------ tests */

Test(store, commit_and_read_back, .timeout = 60)
{
    char *path = tmp_store();
    folio_store_t *s = open_store(path, 0);
    enum { N = 40 };
    folio_doc_t docs[N];
    synth_res_t res[N];
    uint32_t nums[N];
    uint64_t tokens = 0, sents = 0, bytes = 0;
    for (int i = 0; i < N; i++) {
        char id[32];
        snprintf(id, sizeof id, "doc-%03d", (i * 17) % N); /* not in id order */
        synth_doc(&docs[i], id, 1000 + i, 1 + (uint32_t)(i * 7 % 50), 40 + i);
        synth_results(&res[i], &docs[i], 1 + (uint32_t)(i % 9) * 8, i);
        folio_doc_state_t stt;
        cr_assert_eq(folio_store_classify(s, id, docs[i].hash, &stt, NULL, 0), FOLIO_OK);
        cr_assert_eq(stt, FOLIO_DOC_NEW);
        /* every third doc without results: room for later */
        cr_assert_eq(folio_store_commit_doc(s, &docs[i], i % 3 ? &res[i].r : NULL), FOLIO_OK);
        cr_assert_eq(folio_store_classify(s, id, docs[i].hash, &stt, NULL, 0), FOLIO_OK);
        cr_assert_eq(stt, FOLIO_DOC_SAME);
        tokens += docs[i].n_tokens;
        sents += docs[i].n_sents;
        bytes += docs[i].len;
    }
    folio_store_reader_t *r;
    cr_assert_eq(folio_store_reader_open(s, &r), FOLIO_OK);
    for (int i = 0; i < N; i++) {
        folio_stored_doc_t d;
        cr_assert_eq(folio_store_get_doc(r, docs[i].id, &d), FOLIO_OK);
        assert_doc_equal(&d, &docs[i], i % 3 ? &res[i].r : NULL);
        nums[i] = d.docnum;
        folio_stored_doc_t h;
        cr_assert_eq(folio_store_get_head_by_num(r, d.docnum, &h), FOLIO_OK);
        cr_assert_str_eq(h.id, docs[i].id);
        cr_assert_eq(h.n_tokens, docs[i].n_tokens);
    }
    folio_stored_doc_t none;
    cr_assert_eq(folio_store_get_doc(r, "no-such-doc", &none), FOLIO_ERR_NOT_FOUND);
    folio_store_reader_close(&r);

    folio_store_info_t in;
    cr_assert_eq(folio_store_info(s, &in), FOLIO_OK);
    cr_assert_eq(in.n_docs, N);
    cr_assert_eq(in.n_tokens, tokens);
    cr_assert_eq(in.n_sents, sents);
    cr_assert_eq(in.n_bytes, bytes);
    cr_assert_float_eq(in.avg_doc_tokens, (double)tokens / N, 1e-9);
    assert_index_matches(s, docs, nums, N);
    cr_assert_eq(check_faults(s), 0);

    /* doc_terms of a stored doc = reference */
    uint64_t *t, *rt;
    uint32_t *tf, *rtf, m;
    cr_assert_eq(folio_store_doc_terms(s, docs[5].id, &t, &tf, &m), FOLIO_OK);
    uint32_t rm = ref_terms(&docs[5], &rt, &rtf);
    cr_assert_eq(m, rm);
    cr_assert_eq(memcmp(t, rt, m * 8ul), 0);
    cr_assert_eq(memcmp(tf, rtf, m * 4ul), 0);
    free(t); free(tf); free(rt); free(rtf);
    cr_assert_eq(folio_store_doc_terms(s, "nope", &t, &tf, &m), FOLIO_ERR_NOT_FOUND);

    /* reopen: everything persists */
    folio_store_close(&s);
    cr_assert_null(s);
    folio_store_opts_t ro = {.readonly = true};
    cr_assert_eq(folio_store_open(path, &ro, &s), FOLIO_OK);
    cr_assert_eq(folio_store_reader_open(s, &r), FOLIO_OK);
    for (int i = 0; i < N; i += 7) {
        folio_stored_doc_t d;
        cr_assert_eq(folio_store_get_doc(r, docs[i].id, &d), FOLIO_OK);
        assert_doc_equal(&d, &docs[i], i % 3 ? &res[i].r : NULL);
    }
    folio_store_reader_close(&r);
    /* writes on a read-only store are refused */
    cr_assert_neq(folio_store_commit_doc(s, &docs[0], NULL), FOLIO_OK);
    folio_store_close(&s);
    for (int i = 0; i < N; i++) {
        folio_doc_clear(&docs[i]);
        free(res[i].buf);
    }
    rm_store(path);
}

/* Real documents through shard's analyzer: dev data, first lines. */
static int load_jsonl(const char *file, folio_doc_t *docs, int max)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", FOLIO_DATA_DIR, file);
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot open %s", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int k = 0;
    while (k < max && (n = getline(&line, &cap, f)) > 0) {
        folio_json_t *j = NULL;
        char err[128];
        if (folio_json_parse(line, (size_t)n, &j, err, sizeof err) != FOLIO_OK) continue;
        size_t len;
        const char *id = folio_json_get_str(j, "id", NULL);
        const char *title = folio_json_get_str(j, "title", NULL);
        const char *text = folio_json_get_str(j, "text", &len);
        if (!text) text = folio_json_get_str(j, "contents", &len);
        if (id && text) {
            folio_doc_t *d = &docs[k];
            memset(d, 0, sizeof *d);
            d->id = strdup(id);
            d->title = strdup(title ? title : "");
            d->text = malloc(len + 1);
            memcpy(d->text, text, len + 1);
            d->len = len;
            if (folio_doc_analyze(d) == FOLIO_OK) k++;
            else folio_doc_clear(d);
        }
        folio_json_free(&j);
    }
    free(line);
    fclose(f);
    return k;
}

Test(store, real_documents, .timeout = 60)
{
    char *path = tmp_store();
    folio_store_t *s = open_store(path, 0);
    enum { M = 60 };
    folio_doc_t docs[2 * M];
    int n = load_jsonl("spdx-licenses.jsonl", docs, M);
    n += load_jsonl("pubmed-dev.jsonl", docs + n, 20);
    cr_assert_gt(n, 40);
    uint32_t nums[2 * M];
    int committed = 0;
    for (int i = 0; i < n; i++) {
        folio_doc_state_t st;
        char other[600];
        cr_assert_eq(folio_store_classify(s, docs[i].id, docs[i].hash, &st, other, sizeof other), FOLIO_OK);
        if (st == FOLIO_DOC_DUPLICATE) {
            cr_assert_eq(folio_store_commit_duplicate(s, docs[i].id, docs[i].hash, other, "spdx"), FOLIO_OK);
            continue;
        }
        synth_res_t res;
        synth_results(&res, &docs[i], 16, i);
        cr_assert_eq(folio_store_commit_doc(s, &docs[i], &res.r), FOLIO_OK, "commit %s", docs[i].id);
        free(res.buf);
        committed++;
    }
    folio_store_reader_t *r;
    cr_assert_eq(folio_store_reader_open(s, &r), FOLIO_OK);
    int k = 0;
    for (int i = 0; i < n; i++) {
        folio_stored_doc_t d;
        if (folio_store_get_doc(r, docs[i].id, &d) != FOLIO_OK) { /* a duplicate */
            folio_doc_clear(&docs[i]);
            continue;
        }
        cr_assert_eq(d.len, docs[i].len);
        cr_assert_eq(memcmp(d.text, docs[i].text, d.len), 0);
        cr_assert_eq(memcmp(d.sents, docs[i].sents, docs[i].n_sents * sizeof *d.sents), 0);
        nums[i] = d.docnum;
        docs[k] = docs[i]; /* compact the committed ones for the index check */
        nums[k] = nums[i];
        k++;
    }
    folio_store_reader_close(&r);
    cr_assert_eq(k, committed);
    assert_index_matches(s, docs, nums, k);
    cr_assert_eq(check_faults(s), 0);
    uint64_t deep = 99;
    cr_assert_eq(folio_store_check_ex(s, true, stderr, 20, &deep), FOLIO_OK);
    cr_assert_eq(deep, 0);
    for (int i = 0; i < k; i++) folio_doc_clear(&docs[i]);
    folio_store_close(&s);
    rm_store(path);
}

Test(store, duplicate_and_replace, .timeout = 60)
{
    char *path = tmp_store();
    folio_store_t *s = open_store(path, 0);
    folio_doc_t a, b, a2, c;
    synth_doc(&a, "a", 1, 20, 30);
    synth_doc(&b, "b", 2, 25, 300); /* a big vocabulary: terms that a lacks */
    synth_doc(&a2, "a", 3, 15, 300);
    synth_doc(&c, "c", 1, 20, 30); /* same content as a */
    cr_assert_eq(memcmp(a.hash, c.hash, 16), 0);
    cr_assert_eq(folio_store_commit_doc(s, &a, NULL), FOLIO_OK);
    cr_assert_eq(folio_store_commit_doc(s, &b, NULL), FOLIO_OK);

    folio_doc_state_t st;
    char other[64];
    cr_assert_eq(folio_store_classify(s, "c", c.hash, &st, other, sizeof other), FOLIO_OK);
    cr_assert_eq(st, FOLIO_DOC_DUPLICATE);
    cr_assert_str_eq(other, "a");
    /* committing duplicate content as a doc is refused, recording works */
    cr_assert_eq(folio_store_commit_doc(s, &c, NULL), FOLIO_ERR_CORRUPT);
    cr_assert_eq(folio_store_commit_duplicate(s, "c", c.hash, "b", "x"), FOLIO_ERR_NOT_FOUND);
    cr_assert_eq(folio_store_commit_duplicate(s, "c", c.hash, "a", "in.jsonl:3"), FOLIO_OK);
    cr_assert_eq(folio_store_commit_duplicate(s, "c", c.hash, "a", "in.jsonl:3"), FOLIO_OK); /* idempotent */
    cr_assert_eq(folio_store_classify(s, "c", c.hash, &st, other, sizeof other), FOLIO_OK);
    cr_assert_eq(st, FOLIO_DOC_DUPLICATE);
    folio_store_info_t in;
    cr_assert_eq(folio_store_info(s, &in), FOLIO_OK);
    cr_assert_eq(in.n_docs, 2);
    cr_assert_eq(in.n_duplicates, 1);
    cr_assert_eq(check_faults(s), 0);

    /* df counts committed docs only */
    uint64_t t0 = a.stem_hashes[0];
    uint32_t df, tf;
    cr_assert_eq(folio_store_df_lookup(s, &t0, 1, &df), FOLIO_OK);
    cr_assert_eq(df, 1u + doc_has_term(&b, t0, &tf));

    /* replace a with new content */
    cr_assert_eq(folio_store_put_summary(s, "a", "{\"s\":1}", 7), FOLIO_OK);
    uint32_t num_a = docnum_of(s, "a");
    cr_assert_eq(folio_store_classify(s, "a", a2.hash, &st, NULL, 0), FOLIO_OK);
    cr_assert_eq(st, FOLIO_DOC_REPLACE);
    cr_assert_eq(folio_store_commit_doc(s, &a2, NULL), FOLIO_OK);
    cr_assert_eq(docnum_of(s, "a"), num_a); /* docnum is stable */
    cr_assert_eq(folio_store_classify(s, "a", a2.hash, &st, NULL, 0), FOLIO_OK);
    cr_assert_eq(st, FOLIO_DOC_SAME);
    /* the old content is gone: c (its duplicate) is dropped and now NEW */
    cr_assert_eq(folio_store_classify(s, "c", c.hash, &st, NULL, 0), FOLIO_OK);
    cr_assert_eq(st, FOLIO_DOC_NEW);
    cr_assert_eq(folio_store_info(s, &in), FOLIO_OK);
    cr_assert_eq(in.n_docs, 2);
    cr_assert_eq(in.n_duplicates, 0);
    cr_assert_eq(in.n_summaries, 0);
    cr_assert_eq(in.n_tokens, (uint64_t)a2.n_tokens + b.n_tokens);
    folio_doc_t both[2] = {a2, b};
    uint32_t nums[2] = {num_a, docnum_of(s, "b")};
    assert_index_matches(s, both, nums, 2);
    /* a term only the old a had has no postings and no df any more */
    for (uint32_t i = 0; i < a.n_tokens; i++) {
        uint64_t t = a.stem_hashes[i];
        if (doc_has_term(&a2, t, &tf) || doc_has_term(&b, t, &tf)) continue;
        cr_assert_eq(folio_store_df_lookup(s, &t, 1, &df), FOLIO_OK);
        cr_assert_eq(df, 0);
        folio_store_reader_t *r;
        const folio_posting_t *p;
        uint32_t np;
        cr_assert_eq(folio_store_reader_open(s, &r), FOLIO_OK);
        cr_assert_eq(folio_store_postings(r, t, &p, &np, &df), FOLIO_OK);
        cr_assert_eq(np, 0);
        folio_store_reader_close(&r);
    }
    cr_assert_eq(check_faults(s), 0);

    /* c is committed as a doc now; then b gets c's content: b becomes a
     * duplicate of c and b's old doc is removed */
    cr_assert_eq(folio_store_commit_doc(s, &c, NULL), FOLIO_OK);
    folio_doc_t b2;
    synth_doc(&b2, "b", 1, 20, 30);
    cr_assert_eq(folio_store_classify(s, "b", b2.hash, &st, other, sizeof other), FOLIO_OK);
    cr_assert_eq(st, FOLIO_DOC_DUPLICATE);
    cr_assert_str_eq(other, "c");
    cr_assert_eq(folio_store_commit_duplicate(s, "b", b2.hash, "c", NULL), FOLIO_OK);
    cr_assert_eq(folio_store_info(s, &in), FOLIO_OK);
    cr_assert_eq(in.n_docs, 2);
    cr_assert_eq(in.n_duplicates, 1);
    cr_assert_eq(in.n_tokens, (uint64_t)a2.n_tokens + c.n_tokens);
    cr_assert_eq(check_faults(s), 0);

    /* summaries: bad JSON, unknown id, replace */
    cr_assert_eq(folio_store_put_summary(s, "a", "{oops", 5), FOLIO_ERR_PARSE);
    cr_assert_eq(folio_store_put_summary(s, "zz", "[1]", 3), FOLIO_ERR_NOT_FOUND);
    cr_assert_eq(folio_store_put_summary(s, "a", "[1]", 3), FOLIO_OK);
    cr_assert_eq(folio_store_put_summary(s, "a", "[1,2]", 5), FOLIO_OK);
    folio_store_reader_t *r;
    folio_stored_doc_t d;
    cr_assert_eq(folio_store_reader_open(s, &r), FOLIO_OK);
    cr_assert_eq(folio_store_get_doc(r, "a", &d), FOLIO_OK);
    cr_assert_eq(d.summary_len, 5);
    cr_assert_eq(memcmp(d.summary, "[1,2]", 5), 0);
    folio_store_reader_close(&r);
    cr_assert_eq(folio_store_info(s, &in), FOLIO_OK);
    cr_assert_eq(in.n_summaries, 1);
    cr_assert_eq(check_faults(s), 0);

    /* bad ids */
    char longid[600];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    cr_assert_eq(folio_store_classify(s, longid, a.hash, &st, NULL, 0), FOLIO_ERR_ARG);
    cr_assert_eq(folio_store_classify(s, "", a.hash, &st, NULL, 0), FOLIO_ERR_ARG);

    folio_store_close(&s);
    folio_doc_clear(&a); folio_doc_clear(&b); folio_doc_clear(&a2); folio_doc_clear(&c); folio_doc_clear(&b2);
    rm_store(path);
}

Test(store, map_grows_from_64k, .timeout = 60)
{
    char *path = tmp_store();
    folio_store_t *s = open_store(path, 64 << 10);
    folio_store_info_t in;
    cr_assert_eq(folio_store_info(s, &in), FOLIO_OK);
    cr_assert_eq(in.map_bytes, 64u << 10);
    enum { N = 150 };
    folio_doc_t docs[N];
    uint32_t nums[N];
    for (int i = 0; i < N; i++) {
        char id[32];
        snprintf(id, sizeof id, "g%04d", i);
        /* a few big ones (overflow pages) among small ones */
        synth_doc(&docs[i], id, 77 + i, i % 25 == 0 ? 600 : 5 + i % 30, 500);
        synth_res_t res;
        synth_results(&res, &docs[i], 32, i);
        cr_assert_eq(folio_store_commit_doc(s, &docs[i], &res.r), FOLIO_OK, "commit %d", i);
        free(res.buf);
    }
    cr_assert_eq(folio_store_info(s, &in), FOLIO_OK);
    cr_assert_gt(in.map_bytes, 64u << 10);
    cr_assert_eq(in.n_docs, N);
    { /* a read-only open reports the map size the writer recorded */
        folio_store_close(&s);
        folio_store_opts_t ro = {.readonly = true};
        cr_assert_eq(folio_store_open(path, &ro, &s), FOLIO_OK);
        folio_store_info_t rin;
        cr_assert_eq(folio_store_info(s, &rin), FOLIO_OK);
        cr_assert_eq(rin.map_bytes, in.map_bytes);
        cr_assert_eq(rin.used_bytes, in.used_bytes);
        folio_store_close(&s);
        s = open_store(path, 64 << 10);
    }
    for (int i = 0; i < N; i++) nums[i] = docnum_of(s, docs[i].id);
    assert_index_matches(s, docs, nums, N);
    cr_assert_eq(check_faults(s), 0);

    /* with a reader open the map cannot grow: a clear MAP_FULL, nothing lost */
    folio_store_close(&s);
    s = open_store(path, 64 << 10); /* an existing store keeps its larger size */
    folio_store_info_t in2;
    cr_assert_eq(folio_store_info(s, &in2), FOLIO_OK);
    cr_assert_eq(in2.map_bytes, in.map_bytes);
    folio_store_reader_t *r;
    cr_assert_eq(folio_store_reader_open(s, &r), FOLIO_OK);
    folio_status_t st = FOLIO_OK;
    int k;
    for (k = 0; k < 2000 && st == FOLIO_OK; k++) {
        folio_doc_t d;
        char id[32];
        snprintf(id, sizeof id, "h%04d", k);
        synth_doc(&d, id, 9000 + k, 200, 5000);
        st = folio_store_commit_doc(s, &d, NULL);
        folio_doc_clear(&d);
    }
    cr_assert_eq(st, FOLIO_ERR_MAP_FULL);
    folio_store_reader_close(&r);
    cr_assert_eq(folio_store_info(s, &in), FOLIO_OK);
    cr_assert_eq(in.n_docs, (uint64_t)N + k - 1);
    cr_assert_eq(check_faults(s), 0);
    folio_store_close(&s);
    /* the default first map, max(16 MiB, 2 x the data), wins when larger */
    s = open_store(path, 0);
    cr_assert_eq(folio_store_info(s, &in2), FOLIO_OK);
    size_t want = 2 * in2.used_bytes > (16u << 20) ? (2 * in2.used_bytes + 65535) / 65536 * 65536 : 16u << 20;
    if (want < in.map_bytes) want = in.map_bytes;
    cr_assert_eq(in2.map_bytes, want);
    folio_store_close(&s);
    for (int i = 0; i < N; i++) folio_doc_clear(&docs[i]);
    rm_store(path);
}

/* ------------------------------------------------------------ reservation */

static void data_file_sizes(const char *path, size_t *len, size_t *alloc)
{
    char f[4200];
    snprintf(f, sizeof f, "%s/data.mdb", path);
    struct stat sb;
    cr_assert_eq(stat(f, &sb), 0, "stat %s", f);
    *len = (size_t)sb.st_size;
    *alloc = (size_t)sb.st_blocks * 512;
}

/* The writer maps data.mdb writable (MDB_WRITEMAP) and reserves its blocks
 * up to the map size at open and before every growth: from a 64 KiB first
 * map through many doublings the file is exactly as long as the map and
 * has no hole (a page written into a hole the disk cannot fill would be a
 * SIGBUS); an open fills holes left by anything else. */
Test(store, writemap_growth_reserves_the_map, .timeout = 60)
{
    char *path = tmp_store();
    folio_store_t *s = open_store(path, 64 << 10);
    unsigned flags = 0;
    cr_assert_eq(mdb_env_get_flags(folio_store_env(s), &flags), MDB_SUCCESS);
    cr_assert(flags & MDB_WRITEMAP, "writer not opened with MDB_WRITEMAP (does /tmp support fallocate?)");
    folio_store_info_t in;
    size_t len, alloc, prev = 0;
    int growths = 0;
    enum { N = 240 };
    for (int i = 0; i < N; i++) {
        folio_doc_t d;
        char id[32];
        snprintf(id, sizeof id, "w%03d", i);
        synth_doc(&d, id, 700 + i, 30 + i % 20, 3000);
        cr_assert_eq(folio_store_commit_doc(s, &d, NULL), FOLIO_OK, "commit %d", i);
        folio_doc_clear(&d);
        cr_assert_eq(folio_store_info(s, &in), FOLIO_OK);
        data_file_sizes(path, &len, &alloc);
        cr_assert_eq(len, in.map_bytes, "doc %d: data.mdb %zu bytes, map %zu", i, len, (size_t)in.map_bytes);
        cr_assert_geq(alloc, len, "doc %d: data.mdb has holes (%zu of %zu bytes allocated)", i, alloc, len);
        if (in.map_bytes != prev) growths += prev != 0;
        prev = in.map_bytes;
    }
    cr_assert_geq(growths, 4, "the map grew %d times only", growths);
    cr_assert_eq(in.n_docs, N);
    cr_assert_eq(check_faults(s), 0);
    folio_store_close(&s);

    /* a hole past the data (as LMDB's own sparse ftruncate leaves): the next
     * open keeps the longer file as its map and allocates all of it */
    char f[4200];
    snprintf(f, sizeof f, "%s/data.mdb", path);
    cr_assert_eq(truncate(f, (off_t)(len + (1u << 20))), 0);
    s = open_store(path, 64 << 10);
    cr_assert_eq(folio_store_info(s, &in), FOLIO_OK);
    data_file_sizes(path, &len, &alloc);
    cr_assert_eq(in.map_bytes, len);
    cr_assert_eq(len, prev + (1u << 20));
    cr_assert_geq(alloc, len, "hole not filled at open (%zu of %zu bytes allocated)", alloc, len);
    folio_stored_doc_t sd;
    folio_store_reader_t *r;
    cr_assert_eq(folio_store_reader_open(s, &r), FOLIO_OK);
    cr_assert_eq(folio_store_get_doc(r, "w123", &sd), FOLIO_OK);
    cr_assert_eq(sd.n_sents, 30 + 123 % 20);
    folio_store_reader_close(&r);
    cr_assert_eq(check_faults(s), 0);
    folio_store_close(&s);
    rm_store(path);
}

/* Commits in a child process under a file-size limit (SIGXFSZ ignored, as
 * `ulimit -f` in a shell that traps it) until one fails; writes the number
 * committed and the failing status to fd.  Exit 0 unless it crashed. */
static void commit_under_limit(const char *path, size_t limit, int fd)
{
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {limit, limit};
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(2);
    folio_store_opts_t o = {.initial_map_bytes = 64 << 10};
    folio_store_t *c = NULL;
    int res[3] = {0, FOLIO_OK, FOLIO_OK};
    res[1] = folio_store_open(path, &o, &c);
    for (int k = 0; res[1] == FOLIO_OK && k < 5000; k++) {
        folio_doc_t d;
        char id[32];
        snprintf(id, sizeof id, "u%04d", k);
        synth_doc(&d, id, 4000 + k, 40, 3000);
        res[1] = folio_store_commit_doc(c, &d, NULL);
        if (res[1] == FOLIO_OK) res[0]++;
        else res[2] = folio_store_commit_doc(c, &d, NULL); /* again: the same clean failure */
        folio_doc_clear(&d);
    }
    folio_store_close(&c);
    if (write(fd, res, sizeof res) != sizeof res) _exit(3);
    _exit(0);
}

/* A full disk or file-size limit when the map must grow: the commit fails
 * with FOLIO_ERR_IO (not SIGBUS), keeps nothing of itself, data.mdb is cut
 * back to the map it had, every earlier commit stays and the store is
 * valid; without the limit it grows and goes on.  At the open of a new
 * store: FOLIO_ERR_IO and nothing left behind. */
Test(store, reservation_failure_is_clean, .timeout = 60)
{
    char *path = tmp_store();
    folio_store_t *s = open_store(path, 64 << 10);
    for (int i = 0; i < 20; i++) {
        folio_doc_t d;
        char id[32];
        snprintf(id, sizeof id, "a%02d", i);
        synth_doc(&d, id, 100 + i, 40, 3000);
        cr_assert_eq(folio_store_commit_doc(s, &d, NULL), FOLIO_OK);
        folio_doc_clear(&d);
    }
    folio_store_close(&s);
    size_t len0, alloc0;
    data_file_sizes(path, &len0, &alloc0);
    size_t limit = len0 * 3; /* room for one or two doublings, not more */

    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) commit_under_limit(path, limit, fds[1]);
    int ws, res[3] = {0};
    waitpid(pid, &ws, 0);
    cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "child died (signal %d) or failed (%d)",
              WIFSIGNALED(ws) ? WTERMSIG(ws) : 0, WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
    cr_assert_eq(read(fds[0], res, sizeof res), (ssize_t)sizeof res);
    close(fds[0]);
    close(fds[1]);
    cr_assert_eq(res[1], FOLIO_ERR_IO, "commit under the limit: %s", folio_status_str(res[1]));
    cr_assert_eq(res[2], FOLIO_ERR_IO, "commit after the failure: %s", folio_status_str(res[2]));
    cr_assert_gt(res[0], 0, "nothing committed before the limit");

    s = open_store(path, 64 << 10);
    folio_store_info_t in;
    cr_assert_eq(folio_store_info(s, &in), FOLIO_OK);
    size_t len, alloc;
    data_file_sizes(path, &len, &alloc);
    cr_assert_leq(len, limit);
    cr_assert_eq(len, in.map_bytes, "data.mdb not cut back to the map after the failed reservation");
    cr_assert_eq(in.n_docs, 20u + (unsigned)res[0]);
    cr_assert_eq(check_faults(s), 0);
    folio_doc_t d; /* the failed document, now without the limit */
    char id[32];
    snprintf(id, sizeof id, "u%04d", res[0]);
    synth_doc(&d, id, 4000 + (uint64_t)res[0], 40, 3000);
    for (int i = 0; i < 40; i++) {
        if (i) {
            folio_doc_clear(&d);
            snprintf(id, sizeof id, "b%02d", i);
            synth_doc(&d, id, 9100 + i, 40, 3000);
        }
        cr_assert_eq(folio_store_commit_doc(s, &d, NULL), FOLIO_OK);
    }
    folio_doc_clear(&d);
    cr_assert_eq(folio_store_info(s, &in), FOLIO_OK);
    cr_assert_gt(in.map_bytes, len);
    cr_assert_eq(in.n_docs, 20u + (unsigned)res[0] + 40);
    cr_assert_eq(check_faults(s), 0);
    folio_store_close(&s);
    rm_store(path);

    /* a new store whose first map does not fit: no store left behind */
    path = tmp_store();
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {1u << 20, 1u << 20};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(2);
        folio_store_t *c = NULL;
        folio_status_t st = folio_store_open(path, NULL, &c); /* default: 16 MiB */
        _exit(st == FOLIO_ERR_IO && !c ? 0 : 1);
    }
    waitpid(pid, &ws, 0);
    cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "open of a new store under a 1 MiB limit did not fail cleanly");
    struct stat sb;
    cr_assert_neq(stat(path, &sb), 0, "a half-made store was left at %s", path);
    rm_store(path);
}

/* Builds a small store, then damages it through the raw LMDB API with fn. */
typedef void (*damage_fn)(MDB_txn *txn, MDB_env *env);

static MDB_dbi dbi_of(MDB_txn *txn, const char *name)
{
    MDB_dbi d;
    cr_assert_eq(mdb_dbi_open(txn, name, 0, &d), MDB_SUCCESS, "open %s", name);
    return d;
}

static uint64_t faults_after(damage_fn fn)
{
    char *path = tmp_store();
    folio_store_t *s = open_store(path, 0);
    for (int i = 0; i < 6; i++) {
        folio_doc_t d;
        char id[16];
        snprintf(id, sizeof id, "d%d", i);
        synth_doc(&d, id, 50 + i, 10 + i, 40);
        synth_res_t res;
        synth_results(&res, &d, 8, i);
        cr_assert_eq(folio_store_commit_doc(s, &d, &res.r), FOLIO_OK);
        free(res.buf);
        folio_doc_clear(&d);
    }
    folio_doc_t d;
    synth_doc(&d, "dupe", 50, 10, 40); /* content of d0 */
    cr_assert_eq(folio_store_commit_duplicate(s, "dupe", d.hash, "d0", "here"), FOLIO_OK);
    folio_doc_clear(&d);
    cr_assert_eq(check_faults(s), 0);
    MDB_env *env = folio_store_env(s);
    MDB_txn *txn;
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), MDB_SUCCESS);
    fn(txn, env);
    cr_assert_eq(mdb_txn_commit(txn), MDB_SUCCESS);
    uint64_t n = check_faults(s);
    folio_store_close(&s);
    rm_store(path);
    return n;
}

static void dmg_text_byte(MDB_txn *txn, MDB_env *env)
{
    (void)env;
    MDB_dbi db = dbi_of(txn, "text");
    uint32_t num = 3;
    MDB_val k = {4, &num}, v;
    cr_assert_eq(mdb_get(txn, db, &k, &v), MDB_SUCCESS);
    char *copy = malloc(v.mv_size);
    memcpy(copy, v.mv_data, v.mv_size);
    copy[5] ^= 0x20; /* one flipped bit */
    MDB_val nv = {v.mv_size, copy};
    cr_assert_eq(mdb_put(txn, db, &k, &nv, 0), MDB_SUCCESS);
    free(copy);
}
static void dmg_done_marker(MDB_txn *txn, MDB_env *env)
{
    (void)env;
    MDB_val k = {2, "d2"};
    cr_assert_eq(mdb_del(txn, dbi_of(txn, "done"), &k, NULL), MDB_SUCCESS);
}
static void dmg_df(MDB_txn *txn, MDB_env *env)
{
    (void)env;
    MDB_dbi db = dbi_of(txn, "df");
    MDB_cursor *c;
    MDB_val k, v;
    cr_assert_eq(mdb_cursor_open(txn, db, &c), MDB_SUCCESS);
    cr_assert_eq(mdb_cursor_get(c, &k, &v, MDB_FIRST), MDB_SUCCESS);
    uint32_t df;
    memcpy(&df, v.mv_data, 4);
    df++;
    MDB_val nv = {4, &df};
    cr_assert_eq(mdb_cursor_put(c, &k, &nv, MDB_CURRENT), MDB_SUCCESS);
    mdb_cursor_close(c);
}
static void dmg_sents_truncated(MDB_txn *txn, MDB_env *env)
{
    (void)env;
    MDB_dbi db = dbi_of(txn, "sents");
    uint32_t num = 1;
    MDB_val k = {4, &num}, v;
    cr_assert_eq(mdb_get(txn, db, &k, &v), MDB_SUCCESS);
    MDB_val nv = {v.mv_size - 20, v.mv_data};
    char *copy = malloc(nv.mv_size);
    memcpy(copy, v.mv_data, nv.mv_size);
    nv.mv_data = copy;
    cr_assert_eq(mdb_put(txn, db, &k, &nv, 0), MDB_SUCCESS);
    free(copy);
}
static void dmg_sentence_order(MDB_txn *txn, MDB_env *env)
{
    (void)env;
    MDB_dbi db = dbi_of(txn, "sents");
    uint32_t num = 4;
    MDB_val k = {4, &num}, v;
    cr_assert_eq(mdb_get(txn, db, &k, &v), MDB_SUCCESS);
    folio_sentence_t *q = malloc(v.mv_size);
    memcpy(q, v.mv_data, v.mv_size);
    folio_sentence_t t = q[0];
    q[0] = q[1];
    q[1] = t;
    MDB_val nv = {v.mv_size, q};
    cr_assert_eq(mdb_put(txn, db, &k, &nv, 0), MDB_SUCCESS);
    free(q);
}
static void dmg_posting(MDB_txn *txn, MDB_env *env)
{
    (void)env;
    MDB_dbi db = dbi_of(txn, "postings");
    MDB_cursor *c;
    MDB_val k, v;
    cr_assert_eq(mdb_cursor_open(txn, db, &c), MDB_SUCCESS);
    cr_assert_eq(mdb_cursor_get(c, &k, &v, MDB_LAST), MDB_SUCCESS);
    cr_assert_eq(mdb_cursor_del(c, 0), MDB_SUCCESS);
    mdb_cursor_close(c);
}
static void dmg_vector_size(MDB_txn *txn, MDB_env *env)
{
    (void)env;
    MDB_dbi db = dbi_of(txn, "docvec");
    uint32_t num = 2;
    float x[3] = {1, 2, 3};
    MDB_val k = {4, &num}, v = {sizeof x, x};
    cr_assert_eq(mdb_put(txn, db, &k, &v, 0), MDB_SUCCESS);
}
static void dmg_dup_target(MDB_txn *txn, MDB_env *env)
{
    (void)env;
    MDB_dbi db = dbi_of(txn, "dups");
    MDB_val k = {4, "dupe"}, v;
    cr_assert_eq(mdb_get(txn, db, &k, &v), MDB_SUCCESS);
    char *copy = malloc(v.mv_size);
    memcpy(copy, v.mv_data, v.mv_size);
    copy[sizeof(folio_store_duprec_t) + 1] = '9'; /* "d0" -> "d9" */
    MDB_val nv = {v.mv_size, copy};
    cr_assert_eq(mdb_put(txn, db, &k, &nv, 0), MDB_SUCCESS);
    free(copy);
}
static void dmg_counters(MDB_txn *txn, MDB_env *env)
{
    (void)env;
    MDB_dbi db = dbi_of(txn, "meta");
    MDB_val k = {8, "counters"}, v;
    cr_assert_eq(mdb_get(txn, db, &k, &v), MDB_SUCCESS);
    folio_store_counters_t c;
    memcpy(&c, v.mv_data, sizeof c);
    c.n_tokens += 1;
    MDB_val nv = {sizeof c, &c};
    cr_assert_eq(mdb_put(txn, db, &k, &nv, 0), MDB_SUCCESS);
}
static void dmg_orphan_text(MDB_txn *txn, MDB_env *env)
{
    (void)env;
    uint32_t num = 999;
    MDB_val k = {4, &num}, v = {3, "ab"};
    cr_assert_eq(mdb_put(txn, dbi_of(txn, "text"), &k, &v, 0), MDB_SUCCESS);
}
static void dmg_nothing(MDB_txn *txn, MDB_env *env) { (void)txn; (void)env; }

Test(store, check_detects_damage, .timeout = 60)
{
    cr_assert_eq(faults_after(dmg_nothing), 0);
    cr_assert_gt(faults_after(dmg_text_byte), 0);
    cr_assert_gt(faults_after(dmg_done_marker), 0);
    cr_assert_gt(faults_after(dmg_df), 0);
    cr_assert_gt(faults_after(dmg_sents_truncated), 0);
    cr_assert_gt(faults_after(dmg_sentence_order), 0);
    cr_assert_gt(faults_after(dmg_posting), 0);
    cr_assert_gt(faults_after(dmg_vector_size), 0);
    cr_assert_gt(faults_after(dmg_dup_target), 0);
    cr_assert_gt(faults_after(dmg_counters), 0);
    cr_assert_gt(faults_after(dmg_orphan_text), 0);
}

/* Commits docs in the given order (plus a duplicate and a replaced doc) and
 * returns the export. */
static char *export_in_order(const int *order, int n, bool vectors, size_t *len)
{
    char *path = tmp_store();
    folio_store_t *s = open_store(path, 0);
    for (int i = 0; i < n; i++) {
        int j = order[i];
        folio_doc_t d;
        char id[32];
        snprintf(id, sizeof id, "e%02d", j);
        if (j == 3) { /* first an older version of e03, replaced below */
            synth_doc(&d, id, 999, 9, 50);
            cr_assert_eq(folio_store_commit_doc(s, &d, NULL), FOLIO_OK);
            folio_doc_clear(&d);
        }
        synth_doc(&d, id, 300 + j, 3 + j, 60);
        synth_res_t res;
        synth_results(&res, &d, 4, j);
        cr_assert_eq(folio_store_commit_doc(s, &d, &res.r), FOLIO_OK);
        free(res.buf);
        folio_doc_clear(&d);
        if (j % 4 == 1) {
            char sid[64];
            snprintf(sid, sizeof sid, "{\"of\":\"%s\"}", id);
            cr_assert_eq(folio_store_put_summary(s, id, sid, strlen(sid)), FOLIO_OK);
        }
    }
    folio_doc_t d;
    synth_doc(&d, "zdup", 305, 8, 60); /* content of e05 */
    cr_assert_eq(folio_store_commit_duplicate(s, "zdup", d.hash, "e05", "x.jsonl:9"), FOLIO_OK);
    folio_doc_clear(&d);
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    folio_store_export_opts_t o = {.vectors = vectors, .text = true};
    cr_assert_eq(folio_store_export(s, &o, f), FOLIO_OK);
    fclose(f);
    cr_assert_eq(check_faults(s), 0);
    folio_store_close(&s);
    rm_store(path);
    return buf;
}

Test(store, export_independent_of_order, .timeout = 60)
{
    enum { N = 12 };
    int fwd[N], rev[N], mix[N];
    for (int i = 0; i < N; i++) {
        fwd[i] = i;
        rev[i] = N - 1 - i;
        mix[i] = (i * 5) % N;
    }
    for (int v = 0; v < 2; v++) {
        size_t la, lb, lc;
        char *a = export_in_order(fwd, N, v, &la);
        char *b = export_in_order(rev, N, v, &lb);
        char *c = export_in_order(mix, N, v, &lc);
        cr_assert_eq(la, lb);
        cr_assert_eq(la, lc);
        cr_assert_eq(memcmp(a, b, la), 0);
        cr_assert_eq(memcmp(a, c, la), 0);
        /* one line per doc + dup + summaries, each a JSON object */
        int lines = 0;
        for (char *p = a, *e; (e = memchr(p, '\n', la - (size_t)(p - a))); p = e + 1) {
            folio_json_t *j = NULL;
            char err[128];
            cr_assert_eq(folio_json_parse(p, (size_t)(e - p), &j, err, sizeof err), FOLIO_OK, "%s", err);
            folio_json_free(&j);
            lines++;
        }
        cr_assert_eq(lines, N + 1 + 3);
        cr_assert(strstr(a, "\"duplicate\":\"zdup\",\"of\":\"e05\""));
        if (v) cr_assert(strstr(a, "\"sent_vecs\":[["));
        /* vectors round-trip exactly through %.9g */
        if (v) {
            folio_json_t *j = NULL;
            char err[128];
            char *e = memchr(a, '\n', la);
            cr_assert_eq(folio_json_parse(a, (size_t)(e - a), &j, err, sizeof err), FOLIO_OK);
            const folio_json_t *dv = folio_json_get(j, "doc_vec");
            cr_assert(dv && dv->type == FOLIO_JSON_ARR && dv->n == 4);
            folio_doc_t d;
            synth_doc(&d, "e00", 300, 3, 60);
            synth_res_t res;
            synth_results(&res, &d, 4, 0);
            for (size_t i = 0; i < 4; i++) cr_assert_eq((float)dv->items[i]->num, res.r.doc_vec[i]);
            free(res.buf);
            folio_doc_clear(&d);
            folio_json_free(&j);
        }
        free(a);
        free(b);
        free(c);
    }
}

Test(store, kill9_leaves_store_valid, .timeout = 60)
{
    char *path = tmp_store();
    for (int round = 0; round < 3; round++) {
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            folio_store_t *s = NULL;
            folio_store_opts_t o = {.initial_map_bytes = 64 << 10};
            if (folio_store_open(path, &o, &s) != FOLIO_OK) _exit(3);
            for (int i = 0;; i++) { /* replaces, new docs and duplicates until killed */
                folio_doc_t d;
                char id[32];
                snprintf(id, sizeof id, "k%03d", i % 300);
                synth_doc(&d, id, (uint64_t)i * 31 + (uint64_t)round, 20 + i % 40, 400);
                folio_doc_state_t st;
                char other[64];
                folio_store_classify(s, id, d.hash, &st, other, sizeof other);
                if (st == FOLIO_DOC_DUPLICATE) folio_store_commit_duplicate(s, id, d.hash, other, "k");
                else if (st != FOLIO_DOC_SAME) folio_store_commit_doc(s, &d, NULL);
                folio_doc_clear(&d);
            }
        }
        usleep(150000 + 100000 * round);
        kill(pid, SIGKILL);
        int ws;
        waitpid(pid, &ws, 0);
        cr_assert(WIFSIGNALED(ws), "child exited by itself (status %d)", WEXITSTATUS(ws));
        folio_store_t *s = open_store(path, 0);
        folio_store_info_t in;
        cr_assert_eq(folio_store_info(s, &in), FOLIO_OK);
        cr_assert_gt(in.n_docs, 0);
        cr_assert_eq(check_faults(s), 0);
        folio_store_close(&s);
    }
    rm_store(path);
}

Test(store, network_fs_refused)
{
    const char *name = NULL;
    cr_assert(folio_store_fs_is_network(0x6969, &name));
    cr_assert_str_eq(name, "NFS");
    cr_assert(folio_store_fs_is_network(0xFF534D42UL, &name));
    cr_assert_str_eq(name, "CIFS");
    cr_assert(folio_store_fs_is_network(0x0BD00BD0UL, &name));
    cr_assert_str_eq(name, "Lustre");
    cr_assert(folio_store_fs_is_network(0x47504653UL, &name));
    cr_assert(folio_store_fs_is_network(0x517B, &name));
    cr_assert(folio_store_fs_is_network(0xFE534D42UL, &name));
    cr_assert_not(folio_store_fs_is_network(0xEF53, &name));     /* ext2/3/4 */
    cr_assert_not(folio_store_fs_is_network(0x58465342, &name)); /* xfs */
    cr_assert_not(folio_store_fs_is_network(0x01021994, &name)); /* tmpfs */
    cr_assert_not(folio_store_fs_is_network(0x9123683E, &name)); /* btrfs */
    cr_assert_not(folio_store_fs_is_network(0x794C7630, &name)); /* overlayfs */
}

Test(store, readonly_missing_and_bad_paths)
{
    folio_store_opts_t ro = {.readonly = true};
    folio_store_t *s = NULL;
    cr_assert_eq(folio_store_open("/tmp/folio-no-such-store-xyz", &ro, &s), FOLIO_ERR_NOT_FOUND);
    cr_assert_null(s);
    char *path = tmp_store();
    /* an empty directory is not a store either */
    char *parent = strdup(path);
    *strrchr(parent, '/') = '\0';
    cr_assert_eq(folio_store_open(parent, &ro, &s), FOLIO_ERR_NOT_FOUND);
    /* a regular file is not a directory */
    char file[512];
    snprintf(file, sizeof file, "%s/plain", parent);
    FILE *f = fopen(file, "w");
    fputs("x", f);
    fclose(f);
    cr_assert_eq(folio_store_open(file, NULL, &s), FOLIO_ERR_ARG);
    /* a directory holding some other LMDB env is not a folio store */
    char other[512];
    snprintf(other, sizeof other, "%s/other", parent);
    cr_assert_eq(mkdir(other, 0775), 0);
    MDB_env *env;
    mdb_env_create(&env);
    cr_assert_eq(mdb_env_open(env, other, 0, 0664), MDB_SUCCESS);
    MDB_txn *txn;
    MDB_dbi dbi;
    mdb_txn_begin(env, NULL, 0, &txn);
    mdb_dbi_open(txn, NULL, 0, &dbi);
    MDB_val k = {1, "k"}, v = {1, "v"};
    mdb_put(txn, dbi, &k, &v, 0);
    mdb_txn_commit(txn);
    mdb_env_close(env);
    cr_assert_eq(folio_store_open(other, &ro, &s), FOLIO_ERR_CORRUPT);
    /* read-only open of a created store works; close is NULL-safe */
    cr_assert_eq(folio_store_open(path, NULL, &s), FOLIO_OK);
    folio_store_close(&s);
    folio_store_close(&s);
    cr_assert_eq(folio_store_open(path, &ro, &s), FOLIO_OK);
    folio_store_close(&s);
    free(parent);
    rm_store(path);
}

/* export's float printer: every float parses back bit-exactly, and the
 * text is a JSON number. */
#include "store/store_internal.h"

static void roundtrip(float x)
{
    char buf[32];
    int n = store_fmt_float(x, buf);
    cr_assert_eq((size_t)n, strlen(buf));
    cr_assert_leq(n, 16, "%s", buf);
    float y = strtof(buf, NULL);
    uint32_t bx, by;
    memcpy(&bx, &x, 4);
    memcpy(&by, &y, 4);
    cr_assert_eq(bx, by, "%.9g printed as %s, read back as %.9g", (double)x, buf, (double)y);
    folio_json_t *j = NULL;
    char err[64];
    cr_assert_eq(folio_json_parse(buf, (size_t)n, &j, err, sizeof err), FOLIO_OK, "%s: %s", buf, err);
    cr_assert_eq(j->type, FOLIO_JSON_NUM);
    folio_json_free(&j);
}

Test(store, float_format_round_trips, .timeout = 60)
{
    static const float special[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.1f, 1e-5f, 1e-6f, 123456789.0f, 1e9f, 16777216.0f,
                                    3.4028235e38f, 1.17549435e-38f, 1.4e-45f, 9.99999944e-1f, 0.5f, 100.0f};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) roundtrip(special[i]);
    uint64_t st = 12345;
    for (int i = 0; i < 2000000; i++) {
        uint32_t bits = (uint32_t)folio_splitmix64(&st);
        float x;
        memcpy(&x, &bits, 4);
        if (!isfinite(x)) continue;
        roundtrip(x);
    }
    for (int i = 0; i < 200000; i++) { /* the range of unit vectors */
        float x = (float)((double)(folio_splitmix64(&st) >> 11) / 9007199254740992.0 - 0.5);
        roundtrip(x);
    }
    char buf[32];
    store_fmt_float(NAN, buf);
    cr_assert_str_eq(buf, "null");
    store_fmt_float(1.5f, buf);
    cr_assert_str_eq(buf, "1.5");
    store_fmt_float(-0.25f, buf);
    cr_assert_str_eq(buf, "-0.25");
    store_fmt_float(3.0517578125e-05f, buf); /* 2^-15 needs 11 digits: rounded to 9 */
    cr_assert_str_eq(buf, "3.05175781e-05");
    store_fmt_float(1e10f, buf);
    cr_assert_str_eq(buf, "1e+10");
}

Test(store, float_format_matches_printf_layout, .timeout = 60)
{
    /* where %.9g needs all 9 digits, the layout is exactly printf's */
    uint64_t st = 777;
    int same = 0, total = 0;
    for (int i = 0; i < 100000; i++) {
        uint32_t bits = (uint32_t)folio_splitmix64(&st);
        float x;
        memcpy(&x, &bits, 4);
        if (!isfinite(x)) continue;
        char a[32], b[32];
        store_fmt_float(x, a);
        snprintf(b, sizeof b, "%.9g", (double)x);
        total++;
        same += strcmp(a, b) == 0;
        cr_assert_eq(strtof(a, NULL), strtof(b, NULL), "%s vs %s", a, b);
    }
    cr_assert_gt(same, total * 9 / 10, "only %d of %d identical to %%.9g", same, total);
}

/* commit_docs (one txn, postings/df applied sorted at the end) stores
 * exactly what commit_doc one by one stores: same export, same postings;
 * with replaces inside a batch and of earlier batches, from a 64 KiB map
 * (growing under the writeback thread, which each batch wakes). */
static char *export_store(folio_store_t *s, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    folio_store_export_opts_t o = {.vectors = true, .text = true};
    cr_assert_eq(folio_store_export(s, &o, f), FOLIO_OK);
    fclose(f);
    return buf;
}

Test(store, batch_commit_equals_single, .timeout = 60)
{
    enum { N = 90 };
    folio_doc_t docs[N];
    synth_res_t res[N];
    for (int i = 0; i < N; i++) {
        char id[32];
        /* ids repeat: i and i + 30 share an id (a replace), sometimes inside one batch */
        snprintf(id, sizeof id, "b%02d", i % 60);
        synth_doc(&docs[i], id, 4000 + i, 2 + i % 37, 200);
        synth_results(&res[i], &docs[i], 8, i);
    }
    char *p1 = tmp_store(), *p2 = tmp_store();
    folio_store_t *s1 = open_store(p1, 0), *s2 = open_store(p2, 64 << 10);
    for (int i = 0; i < N; i++) cr_assert_eq(folio_store_commit_doc(s1, &docs[i], &res[i].r), FOLIO_OK);
    int i = 0, sizes[] = {1, 7, 33, 2, 64};
    for (int b = 0; i < N; b++) {
        const folio_doc_t *bd[64];
        const folio_doc_results_t *br[64];
        int k = 0;
        for (; k < sizes[b % 5] && i < N; k++, i++) {
            bd[k] = &docs[i];
            br[k] = &res[i].r;
        }
        cr_assert_eq(folio_store_commit_docs(s2, bd, br, (uint32_t)k), FOLIO_OK);
        folio_store_writeback(s2); /* the writeback thread runs beside the next commits */
    }
    cr_assert_eq(check_faults(s1), 0);
    cr_assert_eq(check_faults(s2), 0);
    size_t l1, l2;
    char *e1 = export_store(s1, &l1), *e2 = export_store(s2, &l2);
    cr_assert_eq(l1, l2);
    cr_assert_eq(memcmp(e1, e2, l1), 0);
    free(e1);
    free(e2);
    folio_store_info_t a, b;
    cr_assert_eq(folio_store_info(s1, &a), FOLIO_OK);
    cr_assert_eq(folio_store_info(s2, &b), FOLIO_OK);
    cr_assert_eq(a.n_docs, 60);
    cr_assert_eq(a.n_terms, b.n_terms);
    cr_assert_eq(a.n_postings, b.n_postings);
    /* the final versions are docs[30..89] */
    uint32_t nums[60];
    for (int j = 0; j < 60; j++) nums[j] = docnum_of(s2, docs[30 + j].id);
    assert_index_matches(s2, docs + 30, nums, 60);

    /* a batch with two docs of the same content fails whole: nothing stored */
    folio_doc_t x, y;
    synth_doc(&x, "same-1", 31337, 5, 20);
    synth_doc(&y, "same-2", 31337, 5, 20);
    const folio_doc_t *bd[2] = {&x, &y};
    cr_assert_eq(folio_store_commit_docs(s2, bd, NULL, 2), FOLIO_ERR_CORRUPT);
    folio_doc_state_t st;
    cr_assert_eq(folio_store_classify(s2, "same-1", x.hash, &st, NULL, 0), FOLIO_OK);
    cr_assert_eq(st, FOLIO_DOC_NEW);
    cr_assert_eq(check_faults(s2), 0);
    folio_doc_clear(&x);
    folio_doc_clear(&y);

    folio_store_close(&s1);
    folio_store_close(&s2);
    rm_store(p1);
    rm_store(p2);
    for (int j = 0; j < N; j++) {
        folio_doc_clear(&docs[j]);
        free(res[j].buf);
    }
}

/* A batch far larger than the map sizes the map first and runs once (each
 * doubling used to abort the txn and run it again whole), and stores what
 * the same batch stores in a map large enough from the start. */
Test(store, large_batch_grows_the_map_once, .timeout = 60)
{
    enum { N = 96 };
    folio_doc_t docs[N];
    synth_res_t res[N];
    const folio_doc_t *bd[N];
    const folio_doc_results_t *br[N];
    for (int i = 0; i < N; i++) {
        char id[32];
        snprintf(id, sizeof id, "big%02d", i);
        synth_doc(&docs[i], id, 7100 + i, 60 + i % 50, 3000);
        synth_results(&res[i], &docs[i], 1024, i); /* ~50 MB of vectors in all */
        bd[i] = &docs[i];
        br[i] = &res[i].r;
    }
    char *p[2] = {tmp_store(), tmp_store()};
    size_t len[2];
    char *ex[2];
    for (int k = 0; k < 2; k++) {
        folio_store_t *s = open_store(p[k], k ? (size_t)256 << 20 : 0); /* 0: the default 16 MiB */
        folio_store_info_t a, b;
        cr_assert_eq(folio_store_info(s, &a), FOLIO_OK);
        cr_assert_eq(folio_store_commit_docs(s, bd, br, N), FOLIO_OK);
        cr_assert_eq(folio_store_info(s, &b), FOLIO_OK);
        if (k == 0)
            cr_assert_gt(b.used_bytes, 2 * a.map_bytes, "the batch (%llu bytes) is not larger than the map",
                         (unsigned long long)b.used_bytes);
        cr_assert_eq(b.txn_reruns, 0, "the batch ran %llu extra times", (unsigned long long)b.txn_reruns);
        cr_assert_eq(b.map_growths, k == 0);
        cr_assert_geq(b.map_bytes, b.used_bytes);
        /* the estimate is an upper bound, not a wild one */
        if (k == 0)
            cr_assert_leq(b.map_bytes, 4 * b.used_bytes, "map %llu for %llu bytes used",
                          (unsigned long long)b.map_bytes, (unsigned long long)b.used_bytes);
        cr_assert_eq(check_faults(s), 0);
        uint32_t nums[N];
        for (int j = 0; j < N; j++) nums[j] = docnum_of(s, docs[j].id);
        assert_index_matches(s, docs, nums, N);
        ex[k] = export_store(s, &len[k]);
        folio_store_close(&s);
    }
    cr_assert_eq(len[0], len[1]);
    cr_assert_eq(memcmp(ex[0], ex[1], len[0]), 0);
    for (int k = 0; k < 2; k++) {
        free(ex[k]);
        rm_store(p[k]);
    }
    for (int j = 0; j < N; j++) {
        folio_doc_clear(&docs[j]);
        free(res[j].buf);
    }
}

/* A read-only process keeps reading (old readers stay valid, new readers
 * see the new data) while another process commits and grows the map. */
Test(store, reader_process_survives_writer_growth, .timeout = 60)
{
    char *path = tmp_store();
    folio_store_t *w = open_store(path, 64 << 10);
    folio_doc_t d;
    synth_doc(&d, "first", 1, 5, 50);
    cr_assert_eq(folio_store_commit_doc(w, &d, NULL), FOLIO_OK);
    folio_doc_clear(&d);
    folio_store_close(&w);

    folio_store_opts_t ro = {.readonly = true};
    folio_store_t *s = NULL;
    cr_assert_eq(folio_store_open(path, &ro, &s), FOLIO_OK);
    folio_store_reader_t *old;
    cr_assert_eq(folio_store_reader_open(s, &old), FOLIO_OK);
    folio_store_info_t in0;
    cr_assert_eq(folio_store_info(s, &in0), FOLIO_OK);
    cr_assert_leq(in0.map_bytes, 256u << 10);

    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) { /* the writer: grows the map many times over */
        folio_store_t *c = NULL;
        if (folio_store_open(path, NULL, &c) != FOLIO_OK) _exit(3);
        for (int i = 0; i < 200; i++) {
            folio_doc_t x;
            char id[32];
            snprintf(id, sizeof id, "w%03d", i);
            synth_doc(&x, id, 500 + i, 40, 3000);
            if (folio_store_commit_doc(c, &x, NULL) != FOLIO_OK) _exit(4);
            folio_doc_clear(&x);
        }
        folio_store_close(&c);
        _exit(0);
    }
    int ws;
    waitpid(pid, &ws, 0);
    cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "writer failed");

    /* the old snapshot still reads, and does not see the new docs */
    folio_stored_doc_t sd;
    cr_assert_eq(folio_store_get_doc(old, "first", &sd), FOLIO_OK);
    cr_assert_eq(folio_store_get_doc(old, "w100", &sd), FOLIO_ERR_NOT_FOUND);
    /* a new reader (the old one still open) sees everything */
    folio_store_reader_t *r;
    cr_assert_eq(folio_store_reader_open(s, &r), FOLIO_OK);
    cr_assert_eq(folio_store_get_doc(r, "w199", &sd), FOLIO_OK);
    cr_assert_eq(sd.n_sents, 40);
    folio_store_reader_close(&r);
    folio_store_reader_close(&old);
    folio_store_info_t in;
    cr_assert_eq(folio_store_info(s, &in), FOLIO_OK);
    cr_assert_eq(in.n_docs, 201);
    cr_assert_gt(in.map_bytes, in0.map_bytes);
    cr_assert_eq(check_faults(s), 0);
    folio_store_close(&s);
    rm_store(path);
}

/* Results added after the commit (put_results) store exactly what a commit
 * with results stores; replacing them with fewer arrays drops the rest. */
Test(store, put_results_later, .timeout = 60)
{
    enum { N = 15 };
    folio_doc_t docs[N];
    synth_res_t res[N];
    char *p1 = tmp_store(), *p2 = tmp_store();
    folio_store_t *s1 = open_store(p1, 0), *s2 = open_store(p2, 64 << 10);
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, "r%02d", i);
        synth_doc(&docs[i], id, 600 + i, 1 + i * 3, 80);
        synth_results(&res[i], &docs[i], 12, i);
        cr_assert_eq(folio_store_commit_doc(s1, &docs[i], &res[i].r), FOLIO_OK);
        cr_assert_eq(folio_store_commit_doc(s2, &docs[i], NULL), FOLIO_OK);
    }
    for (int i = N - 1; i >= 0; i--) cr_assert_eq(folio_store_put_results(s2, docs[i].id, &res[i].r), FOLIO_OK);
    size_t l1, l2;
    char *e1 = export_store(s1, &l1), *e2 = export_store(s2, &l2);
    cr_assert_eq(l1, l2);
    cr_assert_eq(memcmp(e1, e2, l1), 0);
    free(e1);
    free(e2);
    cr_assert_eq(check_faults(s2), 0);

    /* only salience, another pattern: vectors gone, pattern counts follow */
    folio_doc_results_t only = {.pattern = "local", .n_blocks = 0, .salience = res[4].r.salience};
    cr_assert_eq(folio_store_put_results(s2, docs[4].id, &only), FOLIO_OK);
    folio_store_reader_t *r;
    folio_stored_doc_t d;
    cr_assert_eq(folio_store_reader_open(s2, &r), FOLIO_OK);
    cr_assert_eq(folio_store_get_doc(r, docs[4].id, &d), FOLIO_OK);
    cr_assert_null(d.sent_vecs);
    cr_assert_null(d.doc_vec);
    cr_assert_eq(d.d, 0);
    cr_assert_str_eq(d.pattern, "local");
    cr_assert_str_eq(d.title, docs[4].title);
    cr_assert_eq(memcmp(d.salience, res[4].r.salience, d.n_sents * 4ul), 0);
    folio_store_reader_close(&r);
    cr_assert_eq(check_faults(s2), 0);
    folio_doc_results_t bad = {.d = 0, .doc_vec = res[0].r.doc_vec};
    cr_assert_eq(folio_store_put_results(s2, docs[0].id, &bad), FOLIO_ERR_ARG);
    cr_assert_eq(folio_store_put_results(s2, "nope", &only), FOLIO_ERR_NOT_FOUND);

    folio_store_close(&s1);
    folio_store_close(&s2);
    rm_store(p1);
    rm_store(p2);
    for (int i = 0; i < N; i++) {
        folio_doc_clear(&docs[i]);
        free(res[i].buf);
    }
}

/* A reader process killed while holding a read txn leaves a reader slot;
 * opening the store clears it (otherwise old pages could never be reused). */
static int find_pid(const char *msg, void *ctx)
{
    char pid[32];
    snprintf(pid, sizeof pid, " %d ", *(int *)ctx);
    if (strstr(msg, pid)) ((int *)ctx)[1]++;
    return 0;
}

static pid_t spawn_reader(const char *path, int fd_ready, bool with_txn)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        folio_store_opts_t ro = {.readonly = true};
        folio_store_t *c = NULL;
        folio_store_reader_t *r = NULL;
        if (folio_store_open(path, &ro, &c) != FOLIO_OK) _exit(3);
        if (with_txn && folio_store_reader_open(c, &r) != FOLIO_OK) _exit(3);
        if (write(fd_ready, "x", 1) != 1) _exit(4);
        pause();
        _exit(0);
    }
    char b;
    cr_assert_eq(read(fd_ready - 1, &b, 1), 1);
    return pid;
}

Test(store, stale_reader_slots_cleared, .timeout = 60)
{
    char *path = tmp_store();
    folio_store_t *s = open_store(path, 0);
    folio_store_close(&s);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    cr_assert_eq(fds[1], fds[0] + 1);
    /* a holder keeps the lock file in use, so LMDB does not reset the
     * reader table at the next open; then a reader dies mid-txn */
    pid_t holder = spawn_reader(path, fds[1], false);
    pid_t pid = spawn_reader(path, fds[1], true);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    s = open_store(path, 0);
    int ctx[2] = {(int)pid, 0};
    mdb_reader_list(folio_store_env(s), find_pid, ctx);
    folio_store_close(&s);
    kill(holder, SIGKILL); /* before any assert: a paused child would outlive the test */
    waitpid(holder, NULL, 0);
    cr_assert_eq(ctx[1], 0, "reader slot of dead pid %d still listed", (int)pid);
    close(fds[0]);
    close(fds[1]);
    rm_store(path);
}

/* Term counting: hash value 0 (the table's empty mark), heavy repeats and a
 * large doc with few distinct stems count like a brute-force sort. */
Test(store, term_counting_edge_cases, .timeout = 60)
{
    char *path = tmp_store();
    folio_store_t *s = open_store(path, 0);
    folio_doc_t d;
    synth_doc(&d, "zero", 99, 3000, 7); /* ~19k tokens over 7 words */
    for (uint32_t i = 0; i < d.n_tokens; i += 3) d.stem_hashes[i] = 0;
    for (uint32_t i = 1; i < d.n_tokens; i += 97) d.stem_hashes[i] = (uint64_t)i; /* many singletons */
    cr_assert_eq(folio_store_commit_doc(s, &d, NULL), FOLIO_OK);
    uint64_t *t, *rt;
    uint32_t *tf, *rtf, m;
    cr_assert_eq(folio_store_doc_terms(s, "zero", &t, &tf, &m), FOLIO_OK);
    uint32_t rm = ref_terms(&d, &rt, &rtf);
    cr_assert_eq(m, rm);
    cr_assert_eq(t[0], 0);
    cr_assert_eq(memcmp(t, rt, m * 8ul), 0);
    cr_assert_eq(memcmp(tf, rtf, m * 4ul), 0);
    uint32_t nums[1] = {docnum_of(s, "zero")};
    assert_index_matches(s, &d, nums, 1);
    cr_assert_eq(check_faults(s), 0);
    free(t); free(tf); free(rt); free(rtf);
    folio_doc_clear(&d);
    folio_store_close(&s);
    rm_store(path);
}

/* The deep check re-tokenizes: an index whose stems do not come from the
 * text (here: synthetic hashes) passes the plain check but not the deep one;
 * a doc analyzed by shard passes both. */
Test(store, deep_check_compares_index_with_text, .timeout = 60)
{
    char *path = tmp_store();
    folio_store_t *s = open_store(path, 0);
    folio_doc_t d;
    synth_doc(&d, "fake-stems", 5, 12, 30);
    cr_assert_eq(folio_store_commit_doc(s, &d, NULL), FOLIO_OK);
    uint64_t n = 0;
    cr_assert_eq(check_faults(s), 0);
    cr_assert_eq(folio_store_check_ex(s, true, NULL, 0, &n), FOLIO_OK);
    cr_assert_gt(n, 0);
    /* the same text analyzed for real replaces it: now both checks pass */
    folio_doc_t e = {0};
    e.id = strdup("fake-stems");
    e.title = strdup("");
    e.text = strdup(d.text);
    e.len = d.len;
    cr_assert_eq(folio_doc_analyze(&e), FOLIO_OK);
    cr_assert_eq(folio_store_commit_doc(s, &e, NULL), FOLIO_OK);
    cr_assert_eq(folio_store_check_ex(s, true, stderr, 20, &n), FOLIO_OK);
    cr_assert_eq(n, 0);
    folio_doc_clear(&d);
    folio_doc_clear(&e);
    folio_store_close(&s);
    rm_store(path);
}
