/* store/store_internal.h — definitions shared by the store's .c files only
 * (not a public header: other folders use store/store.h). */
#ifndef FOLIO_STORE_INTERNAL_H
#define FOLIO_STORE_INTERNAL_H

#include <stdatomic.h>

#include "store.h"

#include <pthread.h>

/* Named databases, in the order opened (see the schema in store.h). */
enum {
    DB_META, DB_DONE, DB_HASHES, DB_DOCS, DB_TEXT, DB_SENTS, DB_SECTIONS, DB_TERMS,
    DB_SENTVEC, DB_BLOCKVEC, DB_SECVEC, DB_DOCVEC, DB_SALIENCE, DB_SUMMARIES,
    DB_POSTINGS, DB_DF, DB_DUPS, DB_COUNT
};

struct folio_store {
    MDB_env *env;
    char *path;
    bool readonly;
    MDB_dbi dbi[DB_COUNT];
    atomic_int open_readers;   /* readers of this process: block map growth */
    bool map_full;             /* set by a txn body that hit MDB_MAP_FULL    */
    bool writemap;             /* writer env opened with MDB_WRITEMAP: every
                                  block of data.mdb up to the map size is
                                  allocated (store_map_resize)              */
    bool map_lost;             /* a remap failed: LMDB's map pointers are
                                  stale, no txn may start on env            */
    /* the writeback thread (folio_store_writeback): started at the first
     * call, joined at close */
    pthread_t flusher;
    pthread_mutex_t fl_mu;
    pthread_cond_t fl_cv;
    bool flusher_on, fl_want, fl_quit;
    /* seconds of this process's batch commits, by part (folio_store_info) */
    double t_prepare, t_values, t_postings, t_txn_commit;
    uint64_t map_growths;      /* this process's map growths (writer)        */
    uint64_t txn_reruns;       /* write txns run again after MDB_MAP_FULL    */
};

/* Sets the map of s to bytes (writer: reserving the file's blocks first when
 * s->writemap; 0 = adopt what the newest meta page needs, after another
 * process grew the store).  No txn of this process may be open.  Errors
 * (logged with the path and the reason): FOLIO_ERR_IO when the disk or a
 * file-size limit cannot hold the reservation (nothing changed), FOLIO_ERR_STORE
 * when LMDB could not remap (s->map_lost set). */
folio_status_t store_map_resize(folio_store_t *s, size_t bytes);

/* Reader-owned copies (misaligned values, postings): a singly linked list
 * of blocks freed at close, or back to a mark after each iteration step. */
typedef struct store_copy { struct store_copy *next; max_align_t data[]; } store_copy_t;

struct folio_store_reader {
    folio_store_t *s;
    MDB_txn *txn;
    store_copy_t *copies;
};

/* Names of the databases (for messages and the check). */
extern const char *const folio_store_db_names[DB_COUNT];

/* Value as an aligned pointer: v itself when aligned, else a reader copy.
 * NULL only on allocation failure. */
const void *store_reader_aligned(folio_store_reader_t *r, MDB_val v, size_t align);
void *store_reader_alloc(folio_store_reader_t *r, size_t n);
/* Frees the copies made after mark (the list head at the time of the mark). */
void store_reader_release(folio_store_reader_t *r, store_copy_t *mark);

/* Validates the layout arrays of a document against each other (the rules
 * folio_store_check enforces: spans inside the text and ordered, token
 * ranges ordered and inside n_tokens, sections partition the sentences).
 * On a fault writes a reason to why and returns false. */
bool store_layout_valid(size_t len, uint32_t n_tokens, const folio_sentence_t *sents,
                        uint32_t n_sents, const folio_section_t *sections, uint32_t n_sections,
                        char *why, size_t whylen);

/* Distinct values of hashes[n] in increasing order with their counts
 * (malloc'd, caller frees both; counted in a hash table, so memory grows
 * with the distinct values). */
folio_status_t store_count_terms(const uint64_t *hashes, size_t n, uint64_t **terms, uint32_t **tfs, uint32_t *m);

/* Writes x as JSON (NUL-terminated, at most 16 bytes + NUL; "null" when not
 * finite) with 9 significant digits: parses back to exactly x.  Returns
 * the length.  Used by export. */
int store_fmt_float(float x, char *out);

static inline uint64_t store_posting_pack(uint32_t docnum, uint32_t tf)
{
    return ((uint64_t)docnum << 32) | tf;
}

#endif
