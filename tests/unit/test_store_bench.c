/* tests/unit/test_store_bench.c — the whole spdx-licenses corpus committed
 * to a fresh store (classify -> commit or record duplicate), then `check`
 * must find no fault and every committed document must read back equal.
 * It also prints commit throughput (MB/s, docs/s) without and with
 * synthetic d = 256 results, for bench records; no speed is asserted here. */
#define _GNU_SOURCE /* nftw */
#include <criterion/criterion.h>

#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static int load_all(const char *file, folio_doc_t **out)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", FOLIO_DATA_DIR, file);
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot open %s", path);
    int cap = 1024, k = 0;
    folio_doc_t *docs = calloc((size_t)cap, sizeof *docs);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t n;
    while ((n = getline(&line, &lcap, f)) > 0) {
        folio_json_t *j = NULL;
        char err[128];
        if (folio_json_parse(line, (size_t)n, &j, err, sizeof err) != FOLIO_OK) continue;
        size_t len;
        const char *id = folio_json_get_str(j, "id", NULL);
        const char *title = folio_json_get_str(j, "title", NULL);
        const char *text = folio_json_get_str(j, "text", &len);
        if (id && text) {
            if (k == cap) {
                cap *= 2;
                docs = realloc(docs, (size_t)cap * sizeof *docs);
            }
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
    *out = docs;
    return k;
}

typedef struct { double seconds, cpu, mb; int committed, dups; } run_t;

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static run_t commit_all(const char *path, folio_doc_t *docs, int n, uint32_t dim, int batch)
{
    folio_store_t *s = NULL;
    cr_assert_eq(folio_store_open(path, NULL, &s), FOLIO_OK);
    /* synthetic results sized for the largest doc, reused */
    uint32_t max_s = 1, max_sec = 1, max_b = 1;
    for (int i = 0; i < n; i++) {
        if (docs[i].n_sents > max_s) max_s = docs[i].n_sents;
        if (docs[i].n_sections > max_sec) max_sec = docs[i].n_sections;
        if ((docs[i].n_tokens + 63) / 64 > max_b) max_b = (docs[i].n_tokens + 63) / 64;
    }
    size_t nf = dim ? ((size_t)max_s + max_b + max_sec + 1) * dim + max_s : 0;
    float *buf = nf ? malloc(nf * sizeof(float)) : NULL;
    uint64_t st = 42;
    for (size_t i = 0; i < nf; i++) buf[i] = (float)(folio_splitmix64(&st) % 1000) / 1000.0f;
    run_t r = {0};
    const folio_doc_t *bd[256];
    folio_doc_results_t bres[256];
    const folio_doc_results_t *br[256];
    int nb_pending = 0;
    cr_assert_leq(batch, 256);
    double t0 = folio_now(), c0 = cpu_now();
    for (int i = 0; i < n; i++) {
        folio_doc_state_t state;
        char other[600];
        cr_assert_eq(folio_store_classify(s, docs[i].id, docs[i].hash, &state, other, sizeof other), FOLIO_OK);
        if (state == FOLIO_DOC_DUPLICATE) {
            cr_assert_eq(folio_store_commit_duplicate(s, docs[i].id, docs[i].hash, other, "spdx"), FOLIO_OK);
            r.dups++;
            continue;
        }
        folio_doc_results_t res = {0};
        if (dim) {
            uint32_t nb = (docs[i].n_tokens + 63) / 64;
            res = (folio_doc_results_t){.pattern = "bench", .d = dim, .n_blocks = nb};
            res.sent_vecs = buf;
            res.block_vecs = buf + (size_t)max_s * dim;
            res.section_vecs = res.block_vecs + (size_t)max_b * dim;
            res.doc_vec = res.section_vecs + (size_t)max_sec * dim;
            res.salience = res.doc_vec + dim;
        }
        if (batch > 1) {
            /* a batch holds distinct contents (classify saw none of them) */
            bool clash = false;
            for (int k = 0; k < nb_pending; k++)
                clash |= memcmp(bd[k]->hash, docs[i].hash, 16) == 0 || strcmp(bd[k]->id, docs[i].id) == 0;
            if (clash || nb_pending == batch) {
                cr_assert_eq(folio_store_commit_docs(s, bd, br, (uint32_t)nb_pending), FOLIO_OK);
                nb_pending = 0;
                if (clash) { /* classify again now that the batch is stored */
                    i--;
                    continue;
                }
            }
            bres[nb_pending] = res;
            br[nb_pending] = dim ? &bres[nb_pending] : NULL;
            bd[nb_pending++] = &docs[i];
        } else {
            cr_assert_eq(folio_store_commit_doc(s, &docs[i], dim ? &res : NULL), FOLIO_OK, "commit %s", docs[i].id);
        }
        r.committed++;
        r.mb += (double)docs[i].len / 1e6;
    }
    if (nb_pending) cr_assert_eq(folio_store_commit_docs(s, bd, br, (uint32_t)nb_pending), FOLIO_OK);
    cr_assert_eq(folio_store_sync(s), FOLIO_OK);
    r.seconds = folio_now() - t0;
    r.cpu = cpu_now() - c0;
    uint64_t faults = 1;
    cr_assert_eq(folio_store_check(s, stderr, 20, &faults), FOLIO_OK);
    cr_assert_eq(faults, 0);
    /* every committed doc reads back equal */
    folio_store_reader_t *rd;
    cr_assert_eq(folio_store_reader_open(s, &rd), FOLIO_OK);
    int found = 0;
    for (int i = 0; i < n; i++) {
        folio_stored_doc_t d;
        if (folio_store_get_doc(rd, docs[i].id, &d) != FOLIO_OK) continue;
        if (memcmp(d.hash, docs[i].hash, 16) != 0) continue; /* a later row replaced this id */
        found++;
        cr_assert_eq(d.len, docs[i].len);
        cr_assert_eq(memcmp(d.text, docs[i].text, d.len), 0);
        cr_assert_eq(d.n_sents, docs[i].n_sents);
        cr_assert_eq(memcmp(d.sents, docs[i].sents, d.n_sents * sizeof *d.sents), 0);
        cr_assert_eq(memcmp(d.sections, docs[i].sections, d.n_sections * sizeof *d.sections), 0);
        if (dim) cr_assert_eq(memcmp(d.sent_vecs, buf, (size_t)d.n_sents * dim * 4), 0);
    }
    folio_store_reader_close(&rd);
    folio_store_info_t in;
    cr_assert_eq(folio_store_info(s, &in), FOLIO_OK);
    cr_assert_eq((int)in.n_docs, found);
    folio_store_close(&s);
    free(buf);
    return r;
}

Test(store_bench, spdx_commit_throughput, .timeout = 120)
{
    folio_doc_t *docs;
    double t0 = folio_now();
    int n = load_all("spdx-licenses.jsonl", &docs);
    double ta = folio_now() - t0;
    cr_assert_gt(n, 700);
    char tmpl[] = "/tmp/folio-store-bench-XXXXXX";
    cr_assert(mkdtemp(tmpl));
    char p[4][256];
    static const char *names[4] = {"single", "single-results", "batch64", "batch64-results"};
    run_t r[4];
    for (int k = 0; k < 4; k++) {
        snprintf(p[k], sizeof p[k], "%s/%s", tmpl, names[k]);
        r[k] = commit_all(p[k], docs, n, k & 1 ? 256 : 0, k >= 2 ? 64 : 1);
        cr_assert_eq(r[k].committed, r[0].committed);
        cr_assert_eq(r[k].dups, r[0].dups);
    }
    fprintf(stderr, "store bench: spdx %d docs (load+analyze %.2f s), %d committed, %d duplicates, %.2f MB text\n",
            n, ta, r[0].committed, r[0].dups, r[0].mb);
    for (int k = 0; k < 4; k++)
        fprintf(stderr, "store bench: %-16s (%s) wall %.3f s = %.1f MB/s of text, %.0f docs/s; "
                "cpu %.3f s = %.1f MB/s, %.0f docs/s\n", names[k],
                k & 1 ? "d=256 vectors+salience" : "no results", r[k].seconds, r[k].mb / r[k].seconds,
                r[k].committed / r[k].seconds, r[k].cpu, r[k].mb / r[k].cpu, r[k].committed / r[k].cpu);
    /* batched and single commits store the same thing */
    folio_store_t *s1, *s2;
    folio_store_opts_t ro = {.readonly = true};
    cr_assert_eq(folio_store_open(p[1], &ro, &s1), FOLIO_OK);
    cr_assert_eq(folio_store_open(p[3], &ro, &s2), FOLIO_OK);
    char *b1 = NULL, *b2 = NULL;
    size_t l1, l2;
    FILE *f1 = open_memstream(&b1, &l1), *f2 = open_memstream(&b2, &l2);
    folio_store_export_opts_t eo = {.vectors = true};
    cr_assert_eq(folio_store_export(s1, &eo, f1), FOLIO_OK);
    cr_assert_eq(folio_store_export(s2, &eo, f2), FOLIO_OK);
    fclose(f1);
    fclose(f2);
    cr_assert_eq(l1, l2);
    cr_assert_eq(memcmp(b1, b2, l1), 0);
    free(b1);
    free(b2);
    folio_store_close(&s1);
    folio_store_close(&s2);
    nftw(tmpl, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    for (int i = 0; i < n; i++) folio_doc_clear(&docs[i]);
    free(docs);
}
