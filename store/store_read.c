/* store/store_read.c — zero-copy reads through one LMDB read txn. */
#include "store_internal.h"

#include <stdlib.h>
#include <string.h>

folio_status_t folio_store_reader_open(folio_store_t *s, folio_store_reader_t **out)
{
    *out = NULL;
    folio_store_reader_t *r = calloc(1, sizeof *r);
    FOLIO_CHECK_ALLOC(r);
    r->s = s;
    for (int tries = 0;; tries++) {
        if (s->map_lost) {
            folio_log(FOLIO_LOG_ERROR, "store '%s' is unusable after a failed remap", s->path);
            free(r);
            return FOLIO_ERR_STORE;
        }
        int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &r->txn);
        if (rc == MDB_MAP_RESIZED && tries < 3 && atomic_load(&s->open_readers) == 0) {
            store_map_resize(s, 0); /* another process grew the map (logs a failure) */
            continue;
        }
        if (rc) {
            folio_log(FOLIO_LOG_ERROR, "store '%s': opening a reader: %s", s->path, mdb_strerror(rc));
            free(r);
            return folio_store_mdb_status(rc);
        }
        break;
    }
    atomic_fetch_add(&s->open_readers, 1);
    *out = r;
    return FOLIO_OK;
}

void store_reader_release(folio_store_reader_t *r, store_copy_t *mark)
{
    while (r->copies && r->copies != mark) {
        store_copy_t *n = r->copies->next;
        free(r->copies);
        r->copies = n;
    }
}

void folio_store_reader_close(folio_store_reader_t **rp)
{
    if (!rp || !*rp) return;
    folio_store_reader_t *r = *rp;
    store_reader_release(r, NULL);
    if (r->txn) {
        mdb_txn_abort(r->txn);
        atomic_fetch_sub(&r->s->open_readers, 1);
    }
    free(r);
    *rp = NULL;
}

void *store_reader_alloc(folio_store_reader_t *r, size_t n)
{
    store_copy_t *c = malloc(sizeof *c + (n ? n : 1));
    if (!c) return NULL;
    c->next = r->copies;
    r->copies = c;
    return c->data;
}

const void *store_reader_aligned(folio_store_reader_t *r, MDB_val v, size_t align)
{
    if (((uintptr_t)v.mv_data & (align - 1)) == 0) return v.mv_data;
    void *p = store_reader_alloc(r, v.mv_size);
    if (p) memcpy(p, v.mv_data, v.mv_size);
    return p;
}

/* Parses a docs record into out (header fields, id, title, pattern). */
static folio_status_t parse_docrec(folio_store_reader_t *r, uint32_t num, MDB_val v, folio_stored_doc_t *out)
{
    folio_store_docrec_t rec;
    const char *path = r->s->path;
    FOLIO_CHECK_GENERIC(v.mv_size >= sizeof rec, FOLIO_ERR_CORRUPT, "store '%s': record of doc %u too short",
                        path, num);
    memcpy(&rec, v.mv_data, sizeof rec);
    size_t need = sizeof rec + (size_t)rec.id_len + 1 + rec.title_len + 1 + rec.pattern_len + 1;
    const char *p = (const char *)v.mv_data + sizeof rec;
    FOLIO_CHECK_GENERIC(need == v.mv_size && p[rec.id_len] == '\0' && p[rec.id_len + 1 + rec.title_len] == '\0' &&
                        p[need - sizeof rec - 1] == '\0' && rec.docnum == num,
                        FOLIO_ERR_CORRUPT, "store '%s': record of doc %u is malformed", path, num);
    memset(out, 0, sizeof *out);
    out->docnum = num;
    out->id = p;
    out->id_len = rec.id_len;
    out->title = p + rec.id_len + 1;
    out->title_len = rec.title_len;
    out->pattern = p + rec.id_len + 1 + rec.title_len + 1;
    memcpy(out->hash, rec.hash, 16);
    out->len = rec.bytes;
    out->n_tokens = rec.n_tokens;
    out->n_sents = rec.n_sents;
    out->n_sections = rec.n_sections;
    out->n_blocks = rec.n_blocks;
    out->n_terms = rec.n_terms;
    out->d = rec.d;
    return FOLIO_OK;
}

folio_status_t folio_store_get_head_by_num(folio_store_reader_t *r, uint32_t num, folio_stored_doc_t *out)
{
    MDB_val k = {4, &num}, v;
    int rc = mdb_get(r->txn, r->s->dbi[DB_DOCS], &k, &v);
    if (rc == MDB_NOTFOUND) return FOLIO_ERR_NOT_FOUND;
    FOLIO_CHECK_MDB(rc, "store '%s': record of doc %u", r->s->path, num);
    return parse_docrec(r, num, v, out);
}

/* Fetches array db of doc num: NULL with *ok when absent and optional;
 * checks the size is exactly want bytes. */
static folio_status_t get_array(folio_store_reader_t *r, int db, uint32_t num, size_t want, size_t align,
                                bool required, const void **out)
{
    *out = NULL;
    MDB_val k = {4, &num}, v;
    int rc = mdb_get(r->txn, r->s->dbi[db], &k, &v);
    if (rc == MDB_NOTFOUND && !required) return FOLIO_OK;
    if (rc == MDB_NOTFOUND) {
        folio_log(FOLIO_LOG_ERROR, "store '%s': doc %u has no %s record", r->s->path, num,
                  folio_store_db_names[db]);
        return FOLIO_ERR_CORRUPT;
    }
    FOLIO_CHECK_MDB(rc, "store '%s': %s of doc %u", r->s->path, folio_store_db_names[db], num);
    FOLIO_CHECK_GENERIC(v.mv_size == want, FOLIO_ERR_CORRUPT,
                        "store '%s': %s of doc %u has %zu bytes, expected %zu", r->s->path,
                        folio_store_db_names[db], num, v.mv_size, want);
    if (want == 0) {
        *out = NULL;
        return FOLIO_OK;
    }
    *out = store_reader_aligned(r, v, align);
    FOLIO_CHECK_ALLOC(*out);
    return FOLIO_OK;
}

folio_status_t folio_store_get_doc_by_num(folio_store_reader_t *r, uint32_t num, folio_stored_doc_t *out)
{
    FOLIO_TRY(folio_store_get_head_by_num(r, num, out));
    const void *p;
    FOLIO_TRY(get_array(r, DB_TEXT, num, out->len + 1, 1, true, &p));
    out->text = p;
    FOLIO_CHECK_GENERIC(out->text[out->len] == '\0', FOLIO_ERR_CORRUPT, "store '%s': text of doc %u not terminated",
                        r->s->path, num);
    FOLIO_TRY(get_array(r, DB_SENTS, num, (size_t)out->n_sents * sizeof(folio_sentence_t), 4, true, &p));
    out->sents = p;
    FOLIO_TRY(get_array(r, DB_SECTIONS, num, (size_t)out->n_sections * sizeof(folio_section_t), 4, true, &p));
    out->sections = p;
    FOLIO_TRY(get_array(r, DB_TERMS, num, (size_t)out->n_terms * 12, 8, true, &p));
    out->terms = p;
    out->tfs = p ? (const uint32_t *)((const char *)p + (size_t)out->n_terms * 8) : NULL;
    size_t d = out->d;
    FOLIO_TRY(get_array(r, DB_SENTVEC, num, (size_t)out->n_sents * d * 4, 4, false, &p));
    out->sent_vecs = p;
    FOLIO_TRY(get_array(r, DB_BLOCKVEC, num, (size_t)out->n_blocks * d * 4, 4, false, &p));
    out->block_vecs = p;
    FOLIO_TRY(get_array(r, DB_SECVEC, num, (size_t)out->n_sections * d * 4, 4, false, &p));
    out->section_vecs = p;
    FOLIO_TRY(get_array(r, DB_DOCVEC, num, d * 4, 4, false, &p));
    out->doc_vec = p;
    FOLIO_TRY(get_array(r, DB_SALIENCE, num, (size_t)out->n_sents * 4, 4, false, &p));
    out->salience = p;
    MDB_val k = {4, &num}, v;
    int rc = mdb_get(r->txn, r->s->dbi[DB_SUMMARIES], &k, &v);
    if (rc == MDB_SUCCESS) {
        out->summary = v.mv_data;
        out->summary_len = v.mv_size;
    } else if (rc != MDB_NOTFOUND) {
        FOLIO_CHECK_MDB(rc, "store '%s': summary of doc %u", r->s->path, num);
    }
    return FOLIO_OK;
}

static folio_status_t lookup_id(folio_store_reader_t *r, const char *id, uint32_t *num)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > FOLIO_STORE_MAX_ID) return FOLIO_ERR_NOT_FOUND;
    MDB_val k = {n, (void *)id}, v;
    int rc = mdb_get(r->txn, r->s->dbi[DB_DONE], &k, &v);
    if (rc == MDB_NOTFOUND) return FOLIO_ERR_NOT_FOUND;
    FOLIO_CHECK_MDB(rc, "store '%s': looking up '%s'", r->s->path, id);
    FOLIO_CHECK_GENERIC(v.mv_size == 4, FOLIO_ERR_CORRUPT, "store '%s': done-marker of '%s' malformed",
                        r->s->path, id);
    memcpy(num, v.mv_data, 4);
    return FOLIO_OK;
}

folio_status_t folio_store_get_doc(folio_store_reader_t *r, const char *id, folio_stored_doc_t *out)
{
    uint32_t num = 0;
    FOLIO_TRY(lookup_id(r, id, &num));
    folio_status_t st = folio_store_get_doc_by_num(r, num, out);
    FOLIO_CHECK_GENERIC(st != FOLIO_ERR_NOT_FOUND, FOLIO_ERR_CORRUPT,
                        "store '%s': '%s' has a done-marker but no record (doc %u)", r->s->path, id, num);
    return st;
}

/* A duplicate record: header, dup_of NUL, origin NUL, sizes consistent. */
static bool duprec_valid(const MDB_val *v, folio_store_duprec_t *d)
{
    const char *p = v->mv_data;
    if (v->mv_size < sizeof *d) return false;
    memcpy(d, p, sizeof *d);
    return v->mv_size == sizeof *d + (size_t)d->dup_of_len + 1 + d->origin_len + 1 &&
           p[sizeof *d + d->dup_of_len] == '\0' && p[v->mv_size - 1] == '\0';
}

folio_status_t folio_store_resolve_id(folio_store_reader_t *r, const char *id, const char **doc_id)
{
    uint32_t num = 0;
    *doc_id = NULL;
    folio_status_t st = lookup_id(r, id, &num);
    if (st != FOLIO_ERR_NOT_FOUND) {
        if (st == FOLIO_OK) *doc_id = id;
        return st;
    }
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > FOLIO_STORE_MAX_ID) return FOLIO_ERR_NOT_FOUND;
    MDB_val k = {n, (void *)id}, v;
    int rc = mdb_get(r->txn, r->s->dbi[DB_DUPS], &k, &v);
    if (rc == MDB_NOTFOUND) return FOLIO_ERR_NOT_FOUND;
    FOLIO_CHECK_MDB(rc, "store '%s': looking up duplicate '%s'", r->s->path, id);
    folio_store_duprec_t d;
    FOLIO_CHECK_GENERIC(duprec_valid(&v, &d), FOLIO_ERR_CORRUPT, "store '%s': duplicate record of '%s' malformed",
                        r->s->path, id);
    *doc_id = (const char *)v.mv_data + sizeof d; /* NUL-terminated inside the map */
    return FOLIO_OK;
}

folio_status_t folio_store_postings(folio_store_reader_t *r, uint64_t stem_hash, const folio_posting_t **p,
                                    uint32_t *n, uint32_t *df)
{
    *p = NULL;
    *n = 0;
    *df = 0;
    MDB_cursor *cur;
    FOLIO_CHECK_MDB(mdb_cursor_open(r->txn, r->s->dbi[DB_POSTINGS], &cur), "cursor on postings");
    MDB_val k = {8, &stem_hash}, v;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
    folio_status_t st = FOLIO_OK;
    if (rc == MDB_SUCCESS) {
        size_t cnt = 0;
        rc = mdb_cursor_count(cur, &cnt);
        folio_posting_t *out = rc ? NULL : store_reader_alloc(r, (size_t)cnt * sizeof *out);
        if (!rc && !out) st = FOLIO_ERR_NOMEM;
        size_t got = 0;
        /* whole pages of fixed-size duplicates at a time */
        if (!rc && out) rc = mdb_cursor_get(cur, &k, &v, MDB_GET_MULTIPLE);
        while (!rc && out) {
            size_t m = v.mv_size / 8;
            for (size_t i = 0; i < m && got < cnt; i++) {
                uint64_t x;
                memcpy(&x, (const char *)v.mv_data + i * 8, 8);
                out[got].doc = (uint32_t)(x >> 32);
                out[got].tf = (uint32_t)x;
                got++;
            }
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_MULTIPLE);
        }
        if (rc == MDB_NOTFOUND) rc = MDB_SUCCESS;
        if (!rc && st == FOLIO_OK) {
            *p = out;
            *n = (uint32_t)got;
        }
    } else if (rc == MDB_NOTFOUND) {
        rc = MDB_SUCCESS;
    }
    mdb_cursor_close(cur);
    FOLIO_CHECK_MDB(rc, "store '%s': postings", r->s->path);
    FOLIO_TRY(st);
    MDB_val dk = {8, &stem_hash};
    rc = mdb_get(r->txn, r->s->dbi[DB_DF], &dk, &v);
    if (rc == MDB_SUCCESS && v.mv_size == 4) memcpy(df, v.mv_data, 4);
    else if (rc != MDB_NOTFOUND) FOLIO_CHECK_MDB(rc ? rc : MDB_CORRUPTED, "store '%s': df", r->s->path);
    return FOLIO_OK;
}

folio_status_t folio_store_iter_docs(folio_store_reader_t *r, bool heads_only, folio_store_doc_fn fn, void *ctx)
{
    MDB_cursor *cur;
    FOLIO_CHECK_MDB(mdb_cursor_open(r->txn, r->s->dbi[DB_DONE], &cur), "cursor on done");
    MDB_val k, v;
    folio_status_t st = FOLIO_OK;
    int rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint32_t num;
        if (v.mv_size != 4) {
            folio_log(FOLIO_LOG_ERROR, "store '%s': done-marker of '%.*s' malformed", r->s->path,
                      (int)k.mv_size, (const char *)k.mv_data);
            st = FOLIO_ERR_CORRUPT;
            break;
        }
        memcpy(&num, v.mv_data, 4);
        store_copy_t *mark = r->copies;
        folio_stored_doc_t doc;
        st = heads_only ? folio_store_get_head_by_num(r, num, &doc) : folio_store_get_doc_by_num(r, num, &doc);
        if (st == FOLIO_ERR_NOT_FOUND) {
            folio_log(FOLIO_LOG_ERROR, "store '%s': '%.*s' has a done-marker but no record", r->s->path,
                      (int)k.mv_size, (const char *)k.mv_data);
            st = FOLIO_ERR_CORRUPT;
        }
        if (st != FOLIO_OK) break;
        int stop = fn(&doc, ctx);
        store_reader_release(r, mark); /* copies made for this doc only */
        if (stop) break;
    }
    mdb_cursor_close(cur);
    if (st == FOLIO_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        FOLIO_CHECK_MDB(rc, "store '%s': iterating documents", r->s->path);
    return st;
}

folio_status_t folio_store_iter_duplicates(folio_store_reader_t *r, folio_store_dup_fn fn, void *ctx)
{
    MDB_cursor *cur;
    FOLIO_CHECK_MDB(mdb_cursor_open(r->txn, r->s->dbi[DB_DUPS], &cur), "cursor on dups");
    MDB_val k, v;
    folio_status_t st = FOLIO_OK;
    int rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        folio_store_duprec_t d;
        const char *p = v.mv_data;
        if (!duprec_valid(&v, &d) || k.mv_size > FOLIO_STORE_MAX_ID) {
            folio_log(FOLIO_LOG_ERROR, "store '%s': duplicate record of '%.*s' malformed", r->s->path,
                      (int)k.mv_size, (const char *)k.mv_data);
            st = FOLIO_ERR_CORRUPT;
            break;
        }
        store_copy_t *mark = r->copies;
        char *id = store_reader_alloc(r, k.mv_size + 1);
        if (!id) {
            st = FOLIO_ERR_NOMEM;
            break;
        }
        memcpy(id, k.mv_data, k.mv_size);
        id[k.mv_size] = '\0';
        folio_stored_dup_t sd = {id, p + sizeof d, p + sizeof d + d.dup_of_len + 1, {0}};
        memcpy(sd.hash, d.hash, 16);
        int stop = fn(&sd, ctx);
        store_reader_release(r, mark);
        if (stop) break;
    }
    mdb_cursor_close(cur);
    if (st == FOLIO_OK && rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        FOLIO_CHECK_MDB(rc, "store '%s': iterating duplicates", r->s->path);
    return st;
}

folio_status_t folio_store_iter_patterns(folio_store_reader_t *r, folio_store_pattern_fn fn, void *ctx)
{
    MDB_cursor *cur;
    FOLIO_CHECK_MDB(mdb_cursor_open(r->txn, r->s->dbi[DB_META], &cur), "cursor on meta");
    MDB_val k = {8, "pattern:"}, v;
    int rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 8 || memcmp(k.mv_data, "pattern:", 8) != 0) break;
        char spec[512];
        size_t n = k.mv_size - 8 < sizeof spec ? k.mv_size - 8 : sizeof spec - 1;
        memcpy(spec, (const char *)k.mv_data + 8, n);
        spec[n] = '\0';
        uint64_t cnt = 0;
        if (v.mv_size == 8) memcpy(&cnt, v.mv_data, 8);
        if (fn(spec, cnt, ctx)) break;
    }
    mdb_cursor_close(cur);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        FOLIO_CHECK_MDB(rc, "store '%s': iterating patterns", r->s->path);
    return FOLIO_OK;
}
