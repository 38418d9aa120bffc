/* store/store_check.c — the integrity check (every invariant of the schema
 * in store.h) and the deterministic JSONL export. */
#include "store_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ check */

typedef struct {
    char *spec;
    uint64_t n;
} pat_count_t;

typedef struct {
    folio_store_reader_t *r;
    FILE *report;
    uint64_t max_report, n_faults;
    MDB_txn *txn;
    MDB_dbi *dbi;
    folio_store_counters_t sum; /* recomputed from the records */
    pat_count_t *pats;
    size_t n_pats, cap_pats;
    uint32_t max_docnum;
    bool deep;
} chk_t;

__attribute__((format(printf, 2, 3))) static void fault(chk_t *c, const char *fmt, ...);

/* Deep check of one doc: re-tokenize its text with shard's tokenizer and
 * compare token count, sentence token ranges and the term list (stems). */
static void check_deep(chk_t *c, const char *id, const char *text, const folio_store_docrec_t *rec,
                       const folio_sentence_t *sents, const uint64_t *terms, const uint32_t *tfs)
{
    folio_span_t *toks = NULL;
    uint32_t nt = 0;
    if (folio_tokenize(text, rec->bytes, &toks, &nt) != FOLIO_OK) {
        fault(c, "doc '%s': its text cannot be tokenized", id);
        return;
    }
    if (nt != rec->n_tokens) {
        fault(c, "doc '%s': text has %u tokens, the record says %u", id, nt, rec->n_tokens);
        free(toks);
        return;
    }
    for (uint32_t i = 0; sents && i < rec->n_sents; i++) {
        const folio_sentence_t *q = &sents[i];
        if (q->tok_begin < q->tok_end && q->tok_end <= nt &&
            (toks[q->tok_begin].start < q->start || toks[q->tok_end - 1].end > q->end)) {
            fault(c, "doc '%s': sentence %u bytes [%u,%u) do not hold its tokens [%u,%u)", id, i, q->start, q->end,
                  q->tok_begin, q->tok_end);
            break;
        }
    }
    uint64_t *h = malloc((size_t)nt * 8 + 8);
    uint64_t *rt = NULL;
    uint32_t *rtf = NULL, m = 0;
    if (h) {
        for (uint32_t i = 0; i < nt; i++) h[i] = folio_stem_hash(text, toks[i]);
        if (store_count_terms(h, nt, &rt, &rtf, &m) == FOLIO_OK) {
            if (m != rec->n_terms || (m && (!terms || memcmp(rt, terms, (size_t)m * 8) != 0 ||
                                           memcmp(rtf, tfs, (size_t)m * 4) != 0)))
                fault(c, "doc '%s': stored index terms differ from the stems of its text (%u stored, %u in the text)",
                      id, rec->n_terms, m);
        } else {
            fault(c, "out of memory");
        }
    } else {
        fault(c, "out of memory");
    }
    free(h);
    free(rt);
    free(rtf);
    free(toks);
}

__attribute__((format(printf, 2, 3))) static void fault(chk_t *c, const char *fmt, ...)
{
    c->n_faults++;
    if (!c->report || c->n_faults > c->max_report) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("fault: ", c->report);
    vfprintf(c->report, fmt, ap);
    fputc('\n', c->report);
    va_end(ap);
}

static int pat_add(chk_t *c, const char *spec, size_t n)
{
    if (n == 0) return 0;
    for (size_t i = 0; i < c->n_pats; i++)
        if (strlen(c->pats[i].spec) == n && memcmp(c->pats[i].spec, spec, n) == 0) {
            c->pats[i].n++;
            return 0;
        }
    if (c->n_pats == c->cap_pats) {
        size_t cap = c->cap_pats ? 2 * c->cap_pats : 8;
        pat_count_t *p = realloc(c->pats, cap * sizeof *p);
        if (!p) return -1;
        c->pats = p;
        c->cap_pats = cap;
    }
    char *s = malloc(n + 1);
    if (!s) return -1;
    memcpy(s, spec, n);
    s[n] = '\0';
    c->pats[c->n_pats++] = (pat_count_t){s, 1};
    return 0;
}

static bool get_u32(chk_t *c, int db, const void *key, size_t klen, uint32_t *out, int *rc_out)
{
    MDB_val k = {klen, (void *)key}, v;
    int rc = mdb_get(c->txn, c->dbi[db], &k, &v);
    *rc_out = rc;
    if (rc || v.mv_size != 4) return false;
    memcpy(out, v.mv_data, 4);
    return true;
}

static bool all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return false;
    return true;
}

/* An optional float array of doc num: present iff flag, exactly want floats. */
static void check_vec(chk_t *c, const char *id, uint32_t num, int db, bool flagged, size_t want)
{
    MDB_val k = {4, &num}, v;
    int rc = mdb_get(c->txn, c->dbi[db], &k, &v);
    if (rc == MDB_NOTFOUND) {
        if (flagged) fault(c, "doc '%s': record says %s is stored but it is missing", id, folio_store_db_names[db]);
        return;
    }
    if (rc) {
        fault(c, "doc '%s': reading %s: %s", id, folio_store_db_names[db], mdb_strerror(rc));
        return;
    }
    if (!flagged) fault(c, "doc '%s': %s stored but not flagged in the record", id, folio_store_db_names[db]);
    if (v.mv_size != want * 4) {
        fault(c, "doc '%s': %s has %zu bytes, expected %zu (%zu floats)", id, folio_store_db_names[db],
              v.mv_size, want * 4, want);
        return;
    }
    const float *x = store_reader_aligned(c->r, v, 4);
    if (x && !all_finite(x, want)) fault(c, "doc '%s': %s holds a non-finite value", id, folio_store_db_names[db]);
}

static void check_doc(chk_t *c, MDB_cursor *post, uint32_t num, MDB_val v)
{
    folio_store_docrec_t rec;
    if (v.mv_size < sizeof rec) {
        fault(c, "doc %u: record has %zu bytes, less than its %zu-byte header", num, v.mv_size, sizeof rec);
        return;
    }
    memcpy(&rec, v.mv_data, sizeof rec);
    const char *p = (const char *)v.mv_data + sizeof rec;
    size_t need = sizeof rec + (size_t)rec.id_len + 1 + rec.title_len + 1 + rec.pattern_len + 1;
    if (need != v.mv_size || p[rec.id_len] || p[rec.id_len + 1 + rec.title_len] || p[need - sizeof rec - 1]) {
        fault(c, "doc %u: record malformed (%zu bytes, header says %zu)", num, v.mv_size, need);
        return;
    }
    char id[FOLIO_STORE_MAX_ID + 1];
    size_t idn = rec.id_len <= FOLIO_STORE_MAX_ID ? rec.id_len : FOLIO_STORE_MAX_ID;
    memcpy(id, p, idn);
    id[idn] = '\0';
    if (rec.id_len == 0 || rec.id_len > FOLIO_STORE_MAX_ID) fault(c, "doc %u: id length %u invalid", num, rec.id_len);
    if (rec.docnum != num) fault(c, "doc '%s': record says docnum %u but is stored under %u", id, rec.docnum, num);
    if (num > c->max_docnum) c->max_docnum = num;
    c->sum.n_docs++;
    c->sum.n_tokens += rec.n_tokens;
    c->sum.n_sents += rec.n_sents;
    c->sum.n_sections += rec.n_sections;
    c->sum.n_bytes += rec.bytes;
    c->sum.n_postings += rec.n_terms;
    if (pat_add(c, p + rec.id_len + 1 + rec.title_len + 1, rec.pattern_len)) fault(c, "out of memory");

    int rc;
    uint32_t x;
    if (!get_u32(c, DB_DONE, p, rec.id_len, &x, &rc))
        fault(c, "doc '%s' (doc %u) has no done-marker%s%s", id, num, rc && rc != MDB_NOTFOUND ? ": " : "",
              rc && rc != MDB_NOTFOUND ? mdb_strerror(rc) : "");
    else if (x != num) fault(c, "doc '%s': done-marker names doc %u, record is doc %u", id, x, num);
    if (!get_u32(c, DB_HASHES, rec.hash, 16, &x, &rc)) fault(c, "doc '%s': its content hash is not in the hash index", id);
    else if (x != num) fault(c, "doc '%s': hash index maps its content to doc %u", id, x);

    /* text */
    MDB_val k = {4, &num}, tv;
    rc = mdb_get(c->txn, c->dbi[DB_TEXT], &k, &tv);
    const char *text = NULL;
    if (rc) {
        fault(c, "doc '%s': no text%s", id, rc == MDB_NOTFOUND ? "" : mdb_strerror(rc));
    } else if (tv.mv_size != rec.bytes + 1 || ((const char *)tv.mv_data)[rec.bytes] != '\0') {
        fault(c, "doc '%s': text has %zu bytes, record says %llu (+ NUL)", id, tv.mv_size,
              (unsigned long long)rec.bytes);
    } else {
        text = tv.mv_data;
        uint8_t h[16];
        folio_hash128(text, rec.bytes, h);
        if (memcmp(h, rec.hash, 16) != 0) fault(c, "doc '%s': hash of the stored text differs from the stored hash", id);
        char why[160];
        if (folio_utf8_validate(text, rec.bytes, why, sizeof why) != FOLIO_OK)
            fault(c, "doc '%s': stored text is not valid text: %s", id, why);
    }

    /* sentences and sections */
    MDB_val sv, cv;
    const folio_sentence_t *sents = NULL;
    const folio_section_t *secs = NULL;
    bool arrays_ok = true;
    rc = mdb_get(c->txn, c->dbi[DB_SENTS], &k, &sv);
    if (rc || sv.mv_size != (size_t)rec.n_sents * sizeof(folio_sentence_t)) {
        fault(c, "doc '%s': sentence array %s (record says %u sentences)", id,
              rc ? "missing" : "has the wrong size", rec.n_sents);
        arrays_ok = false;
    } else if (rec.n_sents) {
        sents = store_reader_aligned(c->r, sv, 4);
    }
    rc = mdb_get(c->txn, c->dbi[DB_SECTIONS], &k, &cv);
    if (rc || cv.mv_size != (size_t)rec.n_sections * sizeof(folio_section_t)) {
        fault(c, "doc '%s': section array %s (record says %u sections)", id,
              rc ? "missing" : "has the wrong size", rec.n_sections);
        arrays_ok = false;
    } else if (rec.n_sections) {
        secs = store_reader_aligned(c->r, cv, 4);
    }
    char why[256];
    if (arrays_ok && !store_layout_valid(rec.bytes, rec.n_tokens, sents, rec.n_sents, secs, rec.n_sections, why,
                                         sizeof why))
        fault(c, "doc '%s': %s", id, why);

    /* terms <-> postings */
    const uint64_t *dterms = NULL;
    const uint32_t *dtfs = NULL;
    bool terms_ok = false;
    MDB_val mv;
    rc = mdb_get(c->txn, c->dbi[DB_TERMS], &k, &mv);
    if (rc || mv.mv_size != (size_t)rec.n_terms * 12) {
        fault(c, "doc '%s': term list %s (record says %u terms)", id, rc ? "missing" : "has the wrong size",
              rec.n_terms);
    } else if (rec.n_terms) {
        const uint64_t *terms = store_reader_aligned(c->r, mv, 8);
        if (!terms) {
            fault(c, "out of memory");
            return;
        }
        const uint32_t *tfs = (const uint32_t *)(terms + rec.n_terms);
        uint64_t tf_sum = 0;
        uint32_t missing = 0;
        for (uint32_t i = 0; i < rec.n_terms; i++) {
            if (i && terms[i] <= terms[i - 1]) {
                fault(c, "doc '%s': term list not strictly increasing at %u", id, i);
                break;
            }
            if (tfs[i] == 0) fault(c, "doc '%s': term %u has tf 0", id, i);
            tf_sum += tfs[i];
            uint64_t t = terms[i], pk = store_posting_pack(num, tfs[i]);
            MDB_val a = {8, &t}, b = {8, &pk};
            if (mdb_cursor_get(post, &a, &b, MDB_GET_BOTH) != MDB_SUCCESS) missing++;
        }
        dterms = terms;
        dtfs = tfs;
        terms_ok = true;
        if (missing) fault(c, "doc '%s': %u of its %u terms have no matching posting", id, missing, rec.n_terms);
        if (tf_sum != rec.n_tokens)
            fault(c, "doc '%s': term frequencies sum to %llu, the doc has %u tokens", id,
                  (unsigned long long)tf_sum, rec.n_tokens);
    } else if (rec.n_tokens) {
        fault(c, "doc '%s': %u tokens but no terms", id, rec.n_tokens);
    } else {
        terms_ok = true;
    }
    if (c->deep && text && arrays_ok && terms_ok) check_deep(c, id, text, &rec, sents, dterms, dtfs);

    /* optional results */
    size_t d = rec.d;
    bool any_vec = rec.flags & (FOLIO_STORE_HAS_SENT_VECS | FOLIO_STORE_HAS_BLOCK_VECS |
                                FOLIO_STORE_HAS_SECTION_VECS | FOLIO_STORE_HAS_DOC_VEC);
    if (any_vec && d == 0) fault(c, "doc '%s': vectors flagged with width d = 0", id);
    check_vec(c, id, num, DB_SENTVEC, rec.flags & FOLIO_STORE_HAS_SENT_VECS, (size_t)rec.n_sents * d);
    check_vec(c, id, num, DB_BLOCKVEC, rec.flags & FOLIO_STORE_HAS_BLOCK_VECS, (size_t)rec.n_blocks * d);
    check_vec(c, id, num, DB_SECVEC, rec.flags & FOLIO_STORE_HAS_SECTION_VECS, (size_t)rec.n_sections * d);
    check_vec(c, id, num, DB_DOCVEC, rec.flags & FOLIO_STORE_HAS_DOC_VEC, d);
    check_vec(c, id, num, DB_SALIENCE, rec.flags & FOLIO_STORE_HAS_SALIENCE, rec.n_sents);

    MDB_val uv;
    rc = mdb_get(c->txn, c->dbi[DB_SUMMARIES], &k, &uv);
    if (rc == MDB_SUCCESS) {
        c->sum.n_summaries++;
        folio_json_t *j = NULL;
        char err[128];
        if (folio_json_parse(uv.mv_data, uv.mv_size, &j, err, sizeof err) != FOLIO_OK)
            fault(c, "doc '%s': stored summary is not JSON: %s", id, err);
        folio_json_free(&j);
    }
}

/* Every key of a per-doc db must be a committed docnum. */
static void check_orphans(chk_t *c, int db)
{
    MDB_cursor *cur;
    if (mdb_cursor_open(c->txn, c->dbi[db], &cur)) {
        fault(c, "cannot read %s", folio_store_db_names[db]);
        return;
    }
    MDB_val k, v;
    uint64_t orphans = 0;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        MDB_val dv;
        if (k.mv_size != 4 || mdb_get(c->txn, c->dbi[DB_DOCS], &k, &dv) != MDB_SUCCESS) {
            uint32_t num = 0;
            if (k.mv_size == 4) memcpy(&num, k.mv_data, 4);
            if (++orphans <= 5) fault(c, "%s holds a record of doc %u, which has no document record",
                                      folio_store_db_names[db], num);
            else c->n_faults++;
        }
    }
    mdb_cursor_close(cur);
}

static void check_postings_df(chk_t *c)
{
    MDB_cursor *cur;
    if (mdb_cursor_open(c->txn, c->dbi[DB_POSTINGS], &cur)) {
        fault(c, "cannot read postings");
        return;
    }
    MDB_val k, v;
    uint64_t total = 0, keys = 0, bad_df = 0, orphans = 0;
    uint32_t last_ok = 0;
    int rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_NODUP)) {
        keys++;
        size_t cnt = 0;
        mdb_cursor_count(cur, &cnt);
        total += cnt;
        uint64_t term;
        memcpy(&term, k.mv_data, 8);
        uint32_t df = 0;
        int grc;
        if (!get_u32(c, DB_DF, &term, 8, &df, &grc) || df != cnt) {
            if (++bad_df <= 5) fault(c, "term %016llx: df is %u but it has %zu postings", (unsigned long long)term,
                                     df, cnt);
            else c->n_faults++;
        }
        /* every posting's doc exists */
        MDB_val pk = k, pv;
        for (int prc = mdb_cursor_get(cur, &pk, &pv, MDB_FIRST_DUP); prc == MDB_SUCCESS;
             prc = mdb_cursor_get(cur, &pk, &pv, MDB_NEXT_DUP)) {
            uint64_t x;
            memcpy(&x, pv.mv_data, 8);
            uint32_t num = (uint32_t)(x >> 32);
            if (num == last_ok) continue;
            MDB_val dk = {4, &num}, dv;
            if (mdb_get(c->txn, c->dbi[DB_DOCS], &dk, &dv) == MDB_SUCCESS) {
                last_ok = num;
            } else if (++orphans <= 5) {
                fault(c, "term %016llx has a posting for doc %u, which does not exist", (unsigned long long)term, num);
            } else {
                c->n_faults++;
            }
        }
    }
    mdb_cursor_close(cur);
    if (total != c->sum.n_postings)
        fault(c, "the index holds %llu postings, the documents' term lists %llu", (unsigned long long)total,
              (unsigned long long)c->sum.n_postings);

    /* df entries without postings */
    uint64_t df_keys = 0, stale = 0;
    if (mdb_cursor_open(c->txn, c->dbi[DB_DF], &cur) == MDB_SUCCESS) {
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            df_keys++;
            MDB_val pv;
            if (mdb_get(c->txn, c->dbi[DB_POSTINGS], &k, &pv) != MDB_SUCCESS) {
                uint64_t term;
                memcpy(&term, k.mv_data, 8);
                if (++stale <= 5) fault(c, "term %016llx has a df entry but no postings", (unsigned long long)term);
                else c->n_faults++;
            }
        }
        mdb_cursor_close(cur);
    }
    c->sum.n_terms = df_keys;
    (void)keys;
}

static void check_dups(chk_t *c)
{
    MDB_cursor *cur;
    if (mdb_cursor_open(c->txn, c->dbi[DB_DUPS], &cur)) {
        fault(c, "cannot read dups");
        return;
    }
    MDB_val k, v;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        c->sum.n_duplicates++;
        char id[FOLIO_STORE_MAX_ID + 1];
        size_t idn = k.mv_size <= FOLIO_STORE_MAX_ID ? k.mv_size : FOLIO_STORE_MAX_ID;
        memcpy(id, k.mv_data, idn);
        id[idn] = '\0';
        folio_store_duprec_t d;
        const char *p = v.mv_data;
        if (v.mv_size < sizeof d) {
            fault(c, "duplicate '%s': record too short", id);
            continue;
        }
        memcpy(&d, p, sizeof d);
        if (v.mv_size != sizeof d + (size_t)d.dup_of_len + 1 + d.origin_len + 1 || p[sizeof d + d.dup_of_len] ||
            p[v.mv_size - 1]) {
            fault(c, "duplicate '%s': record malformed", id);
            continue;
        }
        uint32_t num, tnum;
        int rc2;
        if (get_u32(c, DB_DONE, k.mv_data, k.mv_size, &num, &rc2))
            fault(c, "'%s' is both a committed document and a duplicate", id);
        const char *of = p + sizeof d;
        if (!get_u32(c, DB_DONE, of, d.dup_of_len, &tnum, &rc2)) {
            fault(c, "duplicate '%s' points at '%s', which is not stored", id, of);
            continue;
        }
        if (!get_u32(c, DB_HASHES, d.hash, 16, &num, &rc2) || num != tnum)
            fault(c, "duplicate '%s': its content hash is not the content of '%s'", id, of);
    }
    mdb_cursor_close(cur);
}

folio_status_t folio_store_check(folio_store_t *s, FILE *report, uint64_t max_report, uint64_t *n_faults)
{
    return folio_store_check_ex(s, false, report, max_report, n_faults);
}

folio_status_t folio_store_check_ex(folio_store_t *s, bool deep, FILE *report, uint64_t max_report,
                                    uint64_t *n_faults)
{
    *n_faults = 0;
    folio_store_reader_t *r;
    FOLIO_TRY(folio_store_reader_open(s, &r));
    chk_t c = {0};
    c.r = r;
    c.report = report;
    c.max_report = max_report;
    c.txn = r->txn;
    c.dbi = s->dbi;
    c.deep = deep;

    folio_store_counters_t cnt;
    MDB_val ck = {8, "counters"}, cv;
    bool have_counters = false;
    if (mdb_get(c.txn, s->dbi[DB_META], &ck, &cv) != MDB_SUCCESS || cv.mv_size != sizeof cnt) {
        fault(&c, "the global counters record is missing or malformed");
    } else {
        memcpy(&cnt, cv.mv_data, sizeof cnt);
        have_counters = true;
    }

    MDB_cursor *docs = NULL, *post = NULL;
    int rc = mdb_cursor_open(c.txn, s->dbi[DB_DOCS], &docs);
    if (rc == MDB_SUCCESS) rc = mdb_cursor_open(c.txn, s->dbi[DB_POSTINGS], &post);
    if (rc) {
        if (docs) mdb_cursor_close(docs);
        folio_store_reader_close(&r);
        FOLIO_CHECK_MDB(rc, "store '%s': check", s->path);
    }
    MDB_val k, v;
    for (rc = mdb_cursor_get(docs, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(docs, &k, &v, MDB_NEXT)) {
        store_copy_t *mark = r->copies;
        uint32_t num = 0;
        if (k.mv_size != 4) fault(&c, "docs holds a key of %zu bytes", k.mv_size);
        else memcpy(&num, k.mv_data, 4);
        if (num == 0) fault(&c, "docs holds doc number 0");
        else check_doc(&c, post, num, v);
        store_reader_release(r, mark);
    }
    if (rc != MDB_NOTFOUND) fault(&c, "reading docs: %s", mdb_strerror(rc));
    mdb_cursor_close(docs);
    mdb_cursor_close(post);

    /* done-markers <-> records */
    MDB_cursor *cur;
    uint64_t n_done = 0;
    if (mdb_cursor_open(c.txn, s->dbi[DB_DONE], &cur) == MDB_SUCCESS) {
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            n_done++;
            uint32_t num = 0;
            if (v.mv_size == 4) memcpy(&num, v.mv_data, 4);
            MDB_val dk = {4, &num}, dv;
            folio_store_docrec_t rec;
            if (mdb_get(c.txn, s->dbi[DB_DOCS], &dk, &dv) != MDB_SUCCESS || dv.mv_size < sizeof rec) {
                fault(&c, "done-marker of '%.*s' names doc %u, which has no record", (int)k.mv_size,
                      (const char *)k.mv_data, num);
                continue;
            }
            memcpy(&rec, dv.mv_data, sizeof rec);
            if (rec.id_len != k.mv_size || memcmp((const char *)dv.mv_data + sizeof rec, k.mv_data, k.mv_size))
                fault(&c, "done-marker of '%.*s' names doc %u, whose id differs", (int)k.mv_size,
                      (const char *)k.mv_data, num);
        }
        mdb_cursor_close(cur);
    }
    if (n_done != c.sum.n_docs)
        fault(&c, "%llu done-markers for %llu document records", (unsigned long long)n_done,
              (unsigned long long)c.sum.n_docs);

    /* hash index -> records */
    uint64_t n_hashes = 0;
    if (mdb_cursor_open(c.txn, s->dbi[DB_HASHES], &cur) == MDB_SUCCESS) {
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            n_hashes++;
            uint32_t num = 0;
            if (v.mv_size == 4) memcpy(&num, v.mv_data, 4);
            MDB_val dk = {4, &num}, dv;
            folio_store_docrec_t rec;
            if (k.mv_size != 16 || mdb_get(c.txn, s->dbi[DB_DOCS], &dk, &dv) != MDB_SUCCESS ||
                dv.mv_size < sizeof rec) {
                fault(&c, "hash index entry names doc %u, which has no record", num);
                continue;
            }
            memcpy(&rec, dv.mv_data, sizeof rec);
            if (memcmp(rec.hash, k.mv_data, 16) != 0)
                fault(&c, "hash index entry for doc %u does not match its record's hash", num);
        }
        mdb_cursor_close(cur);
    }
    if (n_hashes != c.sum.n_docs)
        fault(&c, "%llu hash index entries for %llu documents", (unsigned long long)n_hashes,
              (unsigned long long)c.sum.n_docs);

    static const int per_doc[] = {DB_TEXT, DB_SENTS, DB_SECTIONS, DB_TERMS, DB_SENTVEC, DB_BLOCKVEC,
                                  DB_SECVEC, DB_DOCVEC, DB_SALIENCE, DB_SUMMARIES};
    for (size_t i = 0; i < sizeof per_doc / sizeof per_doc[0]; i++) check_orphans(&c, per_doc[i]);
    check_postings_df(&c);
    check_dups(&c);

    /* pattern counts */
    if (mdb_cursor_open(c.txn, s->dbi[DB_META], &cur) == MDB_SUCCESS) {
        uint64_t seen = 0;
        k.mv_size = 8;
        k.mv_data = "pattern:";
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (k.mv_size < 8 || memcmp(k.mv_data, "pattern:", 8)) break;
            uint64_t n = 0;
            if (v.mv_size == 8) memcpy(&n, v.mv_data, 8);
            size_t sl = k.mv_size - 8;
            const char *sp = (const char *)k.mv_data + 8;
            uint64_t want = 0;
            for (size_t i = 0; i < c.n_pats; i++)
                if (strlen(c.pats[i].spec) == sl && memcmp(c.pats[i].spec, sp, sl) == 0) {
                    want = c.pats[i].n;
                    seen++;
                }
            if (n != want)
                fault(&c, "pattern '%.*s' is counted for %llu documents, %llu use it", (int)sl, sp,
                      (unsigned long long)n, (unsigned long long)want);
        }
        mdb_cursor_close(cur);
        if (seen != c.n_pats) fault(&c, "%zu pattern specs used by documents, %llu counted", c.n_pats,
                                    (unsigned long long)seen);
    }

    if (have_counters) {
#define CMPC(field, what)                                                                             \
    if (cnt.field != c.sum.field)                                                                     \
        fault(&c, "counter of " what " says %llu, the records hold %llu", (unsigned long long)cnt.field, \
              (unsigned long long)c.sum.field)
        CMPC(n_docs, "documents");
        CMPC(n_duplicates, "duplicates");
        CMPC(n_tokens, "tokens");
        CMPC(n_sents, "sentences");
        CMPC(n_sections, "sections");
        CMPC(n_bytes, "bytes");
        CMPC(n_terms, "distinct terms");
        CMPC(n_postings, "postings");
        CMPC(n_summaries, "summaries");
#undef CMPC
        if (cnt.next_docnum <= c.max_docnum)
            fault(&c, "next document number %llu is not above the largest in use (%u)",
                  (unsigned long long)cnt.next_docnum, c.max_docnum);
    }
    for (size_t i = 0; i < c.n_pats; i++) free(c.pats[i].spec);
    free(c.pats);
    folio_store_reader_close(&r);
    if (report && c.n_faults > max_report)
        fprintf(report, "fault: ... %llu more faults not shown\n", (unsigned long long)(c.n_faults - max_report));
    *n_faults = c.n_faults;
    return FOLIO_OK;
}

/* ------------------------------------------------------------ export */

/* 10^k for k = 0..60 (exact up to 1e22; beyond, within one double ulp). */
static double pow10_pos(int k)
{
    static double t[61];
    static atomic_int ready;
    if (!atomic_load_explicit(&ready, memory_order_acquire)) {
        double p = 1.0;
        for (int i = 0; i <= 60; i++, p *= 10.0) t[i] = p;
        atomic_store_explicit(&ready, 1, memory_order_release);
    }
    return t[k];
}

int store_fmt_float(float f, char *out)
{
    /* 9 significant digits always round-trip a float (its relative half-ulp,
     * >= 3e-8, exceeds the 9-digit rounding error even when the scaling
     * below in double is off by one unit in the last digit), so the digits
     * come from double arithmetic: about 20x faster than printf("%.9g"),
     * and deterministic.  Trailing zeros are dropped; %g's layout. */
    if (!isfinite(f)) return sprintf(out, "null");
    char *o = out;
    if (signbit(f)) *o++ = '-';
    double v = fabs((double)f);
    if (v == 0.0) {
        *o++ = '0';
        *o = '\0';
        return (int)(o - out);
    }
    int e10 = (int)floor(log10(v));
    uint64_t m = 0;
    for (int tries = 0; tries < 3; tries++) {
        int k = 8 - e10; /* m = v * 10^k in [1e8, 1e9) */
        double sc = k >= 0 ? v * pow10_pos(k) : v / pow10_pos(-k);
        m = (uint64_t)llround(sc);
        if (m >= 1000000000ull) e10++;
        else if (m < 100000000ull) e10--;
        else break;
    }
    if (m >= 1000000000ull) { /* rounded up to 10^9 */
        m /= 10;
        e10++;
    }
    char dig[10];
    for (int i = 8; i >= 0; i--) {
        dig[i] = (char)('0' + m % 10);
        m /= 10;
    }
    int nd = 9;
    while (nd > 1 && dig[nd - 1] == '0') nd--;
    if (e10 >= -4 && e10 < 9) {
        if (e10 >= 0) {
            for (int i = 0; i <= e10; i++) *o++ = i < nd ? dig[i] : '0';
            if (nd > e10 + 1) {
                *o++ = '.';
                for (int i = e10 + 1; i < nd; i++) *o++ = dig[i];
            }
        } else {
            *o++ = '0';
            *o++ = '.';
            for (int i = 0; i < -e10 - 1; i++) *o++ = '0';
            for (int i = 0; i < nd; i++) *o++ = dig[i];
        }
        *o = '\0';
        return (int)(o - out);
    }
    *o++ = dig[0];
    if (nd > 1) {
        *o++ = '.';
        for (int i = 1; i < nd; i++) *o++ = dig[i];
    }
    o += sprintf(o, "e%c%02d", e10 < 0 ? '-' : '+', e10 < 0 ? -e10 : e10);
    return (int)(o - out);
}

static void put_float(FILE *f, float x)
{
    char buf[32];
    int n = store_fmt_float(x, buf);
    fwrite(buf, 1, (size_t)n, f);
}

static void put_floats(FILE *f, const char *name, const float *x, size_t rows, size_t cols, bool matrix)
{
    fprintf(f, ",\"%s\":", name);
    if (!x) {
        fputs("null", f);
        return;
    }
    fputc('[', f);
    for (size_t i = 0; i < rows; i++) {
        if (i) fputc(',', f);
        if (matrix) fputc('[', f);
        for (size_t j = 0; j < cols; j++) {
            if (j) fputc(',', f);
            put_float(f, x[i * cols + j]);
        }
        if (matrix) fputc(']', f);
    }
    fputc(']', f);
}

typedef struct {
    FILE *out;
    const folio_store_export_opts_t *o;
    bool any_summary;
} exp_t;

static int export_doc(const folio_stored_doc_t *d, void *vctx)
{
    exp_t *e = vctx;
    FILE *f = e->out;
    char hex[33];
    folio_hash_hex(d->hash, hex);
    fputs("{\"id\":", f);
    folio_json_write_str(f, d->id, d->id_len);
    fputs(",\"title\":", f);
    folio_json_write_str(f, d->title, d->title_len);
    fprintf(f, ",\"hash\":\"%s\",\"bytes\":%zu,\"tokens\":%u,\"terms\":%u,\"blocks\":%u,\"d\":%u,\"pattern\":", hex,
            d->len, d->n_tokens, d->n_terms, d->n_blocks, d->d);
    folio_json_write_str(f, d->pattern, strlen(d->pattern));
    fputs(",\"sentences\":[", f);
    for (uint32_t i = 0; i < d->n_sents; i++) {
        const folio_sentence_t *q = &d->sents[i];
        fprintf(f, "%s[%u,%u,%u,%u,%u]", i ? "," : "", q->start, q->end, q->tok_begin, q->tok_end, q->section);
    }
    fputs("],\"sections\":[", f);
    for (uint32_t i = 0; i < d->n_sections; i++) {
        const folio_section_t *q = &d->sections[i];
        fprintf(f, "%s[%u,%u,%u,%u,%u,%u,%u]", i ? "," : "", q->start, q->end, q->title_start, q->title_end,
                q->sent_begin, q->sent_end, q->level);
    }
    fputc(']', f);
    put_floats(f, "salience", d->salience, 1, d->n_sents, false);
    if (e->o->vectors) {
        put_floats(f, "sent_vecs", d->sent_vecs, d->n_sents, d->d, true);
        put_floats(f, "block_vecs", d->block_vecs, d->n_blocks, d->d, true);
        put_floats(f, "section_vecs", d->section_vecs, d->n_sections, d->d, true);
        put_floats(f, "doc_vec", d->doc_vec, 1, d->d, false);
    }
    if (e->o->text) {
        fputs(",\"text\":", f);
        folio_json_write_str(f, d->text, d->len);
    }
    fputs("}\n", f);
    if (d->summary) e->any_summary = true;
    return ferror(f) ? 1 : 0;
}

static int export_dup(const folio_stored_dup_t *d, void *vctx)
{
    exp_t *e = vctx;
    char hex[33];
    folio_hash_hex(d->hash, hex);
    fputs("{\"duplicate\":", e->out);
    folio_json_write_str(e->out, d->id, strlen(d->id));
    fputs(",\"of\":", e->out);
    folio_json_write_str(e->out, d->dup_of, strlen(d->dup_of));
    fprintf(e->out, ",\"hash\":\"%s\",\"origin\":", hex);
    folio_json_write_str(e->out, d->origin, strlen(d->origin));
    fputs("}\n", e->out);
    return ferror(e->out) ? 1 : 0;
}

static int export_summary(const folio_stored_doc_t *d, void *vctx)
{
    exp_t *e = vctx;
    if (!d->summary) return 0;
    fputs("{\"summary_of\":", e->out);
    folio_json_write_str(e->out, d->id, d->id_len);
    fputs(",\"summary\":", e->out);
    /* raw newlines can only be JSON whitespace (they are invalid inside
     * strings), so turning them into spaces keeps the line one JSON value */
    for (size_t i = 0; i < d->summary_len; i++) {
        char ch = d->summary[i];
        fputc(ch == '\n' || ch == '\r' ? ' ' : ch, e->out);
    }
    fputs("}\n", e->out);
    return ferror(e->out) ? 1 : 0;
}

folio_status_t folio_store_export(folio_store_t *s, const folio_store_export_opts_t *opts, FILE *out)
{
    folio_store_export_opts_t o = {0};
    if (opts) o = *opts;
    folio_store_reader_t *r;
    FOLIO_TRY(folio_store_reader_open(s, &r));
    exp_t e = {out, &o, false};
    folio_status_t st = folio_store_iter_docs(r, false, export_doc, &e);
    if (st == FOLIO_OK) st = folio_store_iter_duplicates(r, export_dup, &e);
    if (st == FOLIO_OK && e.any_summary) st = folio_store_iter_docs(r, false, export_summary, &e);
    folio_store_reader_close(&r);
    FOLIO_TRY(st);
    FOLIO_CHECK_GENERIC(!ferror(out) && fflush(out) == 0, FOLIO_ERR_IO, "export: writing the output failed");
    return FOLIO_OK;
}
