/* store/store.h — the LMDB store: schema, atomic per-document commits, map
 * growth, zero-copy reads, integrity check and export.
 *
 * ============================================================== the schema
 * A store is a directory holding LMDB's data.mdb and lock.mdb (one LMDB
 * environment, MDB_NOSUBDIR off).  All integers are stored in the HOST byte
 * order (folio runs on little-endian x86-64/aarch64); the "format" record
 * carries an endianness probe so a store moved to a host of the other byte
 * order is refused instead of misread.  A document's "docnum" is a uint32
 * assigned at its first commit (1, 2, 3, ...; never 0) and kept when the
 * document is replaced, so postings stay small and stable.
 *
 * Named databases (mdb_dbi_open names):
 *
 *  meta      key ASCII string                      -> value
 *              "format"            folio_store_format_t (magic, version, endian probe)
 *              "counters"          folio_store_counters_t (global totals, next docnum)
 *              "pattern:<SPEC>"    uint64 number of committed docs whose
 *                                  results were computed with pattern SPEC
 *  done      key document id bytes (no NUL, 1..FOLIO_STORE_MAX_ID)
 *                                               -> uint32 docnum
 *            THE DONE-MARKER: written last in the document's commit txn; a
 *            document exists iff its id is here.  Lookup by id goes here.
 *  hashes    key 16-byte content hash           -> uint32 docnum
 *            (each content is stored once: hashes are unique among docs)
 *  docs      key uint32 docnum (MDB_INTEGERKEY) -> document record:
 *              folio_store_docrec_t (fixed header, memcpy it out), then
 *              id bytes + NUL, title bytes + NUL, pattern bytes + NUL
 *  text      key uint32 docnum                  -> original text bytes + NUL
 *  sents     key uint32 docnum                  -> folio_sentence_t[n_sents]
 *  sections  key uint32 docnum                  -> folio_section_t[n_sections]
 *  terms     key uint32 docnum                  -> uint64 stem hash[n_terms]
 *              (strictly increasing) then uint32 tf[n_terms] (tf >= 1;
 *              sum tf = n_tokens): the doc's distinct index terms
 *  sentvec   key uint32 docnum                  -> float[n_sents][d]    (optional)
 *  blockvec  key uint32 docnum                  -> float[n_blocks][d]   (optional)
 *  secvec    key uint32 docnum                  -> float[n_sections][d] (optional)
 *  docvec    key uint32 docnum                  -> float[d]             (optional)
 *  salience  key uint32 docnum                  -> float[n_sents]       (optional)
 *  summaries key uint32 docnum                  -> JSON text written by jobs
 *  postings  key uint64 stem hash (MDB_INTEGERKEY), MDB_DUPSORT|MDB_DUPFIXED|
 *            MDB_INTEGERDUP: one uint64 value per (term, doc):
 *              ((uint64)docnum << 32) | tf       (so duplicates sort by docnum)
 *  df        key uint64 stem hash (MDB_INTEGERKEY) -> uint32 number of
 *            committed documents containing the term (= its posting count);
 *            absent when 0.  Duplicates never count.
 *  dups      key duplicate id bytes -> folio_store_duprec_t header, then
 *            dup_of id + NUL, origin + NUL.  A duplicate id is never also
 *            in "done"; its hash equals the hash of the doc dup_of.
 *
 * ============================================================== semantics
 * - One write transaction per document (or per batch of whole documents,
 *   folio_store_commit_docs) holds everything of it: record, text, arrays,
 *   vectors, terms, postings, df, counters, pattern count and the
 *   done-marker.  A kill -9 at any point leaves either the whole
 *   document or none of it, and df/counters always match the committed docs.
 * - Replace (same id, new content): in the same txn the old version's
 *   postings, df contributions, hash entry, arrays, vectors, summary and
 *   counter contributions are removed, and the docnum is kept.  Duplicate
 *   records that pointed at the old content (dup_of == id) are dropped too:
 *   they asserted "this content is stored as id", which is no longer true
 *   (a later ingest of those inputs finds them NEW and commits them).
 * - Duplicate whose id was a committed doc (the id now carries content that
 *   another doc holds): the old doc is removed, as for replace.
 * - Durability: the environment runs with MDB_NOSYNC: a commit is in the OS
 *   page cache when mdb_txn_commit returns, so it survives kill -9 of the
 *   process (not a power loss); folio_store_sync / folio_store_close flush
 *   to disk.  This keeps per-document commits cheap (no fsync per doc).
 * - Writers map the file writable (MDB_WRITEMAP): a transaction's pages are
 *   written in place in the map instead of in malloc'd copies, so the
 *   writer's heap does not grow with the size of a transaction (a round of
 *   512 documents dirties more index pages as the posting trees deepen:
 *   ingest's peak anonymous RSS 120 -> 68 MB at 256 MB of corpus, 166 ->
 *   71 MB at 1 GB, bench/RESULTS.md).  The pages written count as the
 *   writer's file-backed RSS instead (page cache, reclaimable once written
 *   back).
 *   A page written into a hole of a sparse file that the disk cannot fill
 *   would kill the process with SIGBUS, so the writer RESERVES data.mdb up
 *   to the map size (fallocate) at open and before every growth, before
 *   LMDB can write there: a full disk, a quota or a file-size limit
 *   (ENOSPC, EDQUOT, EFBIG) is a clean FOLIO_ERR_IO naming the store and
 *   the reason, at the open or at the commit that needed the growth
 *   (nothing of that commit is stored; data.mdb is cut back to its former
 *   length).  A filesystem without fallocate (EOPNOTSUPP) is written
 *   without MDB_WRITEMAP, as before (with a warning; no reservation, and
 *   transactions hold their dirty pages in malloc'd memory); so is a
 *   store opened with folio_store_opts_t.buffered_writes.
 * - DISK USE = MAP SIZE: data.mdb is as long as the writer's map and all
 *   of it is allocated, up to about twice the data.  A new store's map
 *   starts at 16 MiB; an existing store's writer maps max(16 MiB, 2 x its
 *   data, its current map); folio_store_opts_t.initial_map_bytes replaces
 *   the first two.  Maps never shrink (an existing store's larger size
 *   wins).
 * - Map growth: MDB_MAP_FULL (from a put or the commit) aborts the txn,
 *   doubles the map (at most +4 GiB at a time, since the growth is disk
 *   taken), reserving it first, and retries the whole document or batch.
 *   LMDB only allows this while this process has no open transaction, so a
 *   commit made while a folio_store_reader_t of the same store is open
 *   returns FOLIO_ERR_MAP_FULL instead of growing.  Read-only opens map
 *   1 TiB of address space (less under a `ulimit -v`), so a writer growing
 *   the store in another process never blocks their new readers.
 * - Reader slots left by processes killed inside a read txn are cleared at
 *   open and before growing (they would pin old pages).  A store whose lock
 *   file is not writable is read without locks (with a warning).
 * - Readers: MDB_NOTLS, so a reader may be used by any one thread at a
 *   time; any number of readers (up to LMDB's 126) and one writer coexist,
 *   also across processes.
 * - Network filesystems (NFS, CIFS/SMB, Lustre, GPFS, Ceph, BeeGFS, AFS, 9p,
 *   ...) are refused with FOLIO_ERR_NETFS: LMDB's lock file and shared mmap
 *   need a local filesystem.
 *
 * ============================================================== threads
 * folio_store_t: open/close and all write calls from one thread.  Readers
 * may be opened and used from other threads concurrently.
 */
#ifndef FOLIO_STORE_H
#define FOLIO_STORE_H

#include <lmdb.h>

#include "../common/common.h"
#include "../shard/shard.h"

#ifdef __cplusplus
extern "C" {
#endif

/* LMDB check, built on FOLIO_CHECK_GENERIC: logs file:line, rank, the
 * message and mdb_strerror(rc), then returns the matching folio status
 * (FOLIO_ERR_MAP_FULL for MDB_MAP_FULL, FOLIO_ERR_NOT_FOUND for
 * MDB_NOTFOUND, FOLIO_ERR_CORRUPT for MDB_CORRUPTED/MDB_PAGE_NOTFOUND/
 * MDB_INVALID, else FOLIO_ERR_STORE).  Use it where no txn must be aborted
 * on the way out.  Example: FOLIO_CHECK_MDB(mdb_env_sync(env, 1), "sync %s", path); */
#define FOLIO_CHECK_MDB(rc_expr, fmt, ...)                                      \
    do {                                                                        \
        int folio_mdb_rc_ = (rc_expr);                                          \
        FOLIO_CHECK_GENERIC(folio_mdb_rc_ == MDB_SUCCESS,                       \
                            folio_store_mdb_status(folio_mdb_rc_),              \
                            "LMDB: " fmt ": %s", ##__VA_ARGS__,                 \
                            mdb_strerror(folio_mdb_rc_));                       \
    } while (0)

/* Maps an LMDB return code to a folio status (see FOLIO_CHECK_MDB). */
folio_status_t folio_store_mdb_status(int mdb_rc);

enum {
    FOLIO_STORE_MAX_ID = 500,          /* LMDB keys are at most 511 bytes   */
    FOLIO_STORE_VERSION = 1,
};

/* ------------------------------------------------------------- records
 * Fixed-layout records as stored (host byte order).  Read them with memcpy:
 * LMDB only guarantees 2-byte alignment of values. */
typedef struct {
    uint32_t magic;        /* 0x464F4C49 'FOLI'                              */
    uint32_t version;      /* FOLIO_STORE_VERSION                            */
    uint64_t endian_probe; /* 0x0102030405060708 as written by the creator   */
} folio_store_format_t;

typedef struct {
    uint64_t n_docs, n_duplicates, n_tokens, n_sents, n_sections, n_bytes;
    uint64_t n_terms;      /* entries of df (distinct terms over all docs)  */
    uint64_t n_postings;   /* sum of n_terms over docs                      */
    uint64_t n_summaries;
    uint64_t next_docnum;  /* the next docnum to assign (starts at 1)       */
} folio_store_counters_t;

typedef struct {
    uint32_t docnum;
    uint32_t n_tokens, n_sents, n_sections, n_blocks, n_terms;
    uint32_t d;            /* vector width, 0 when no vectors stored         */
    uint32_t flags;        /* FOLIO_STORE_HAS_* of the optional results      */
    uint64_t bytes;        /* text length                                    */
    uint8_t hash[16];      /* folio_hash128 of the text                      */
    uint32_t id_len, title_len, pattern_len, reserved;
} folio_store_docrec_t;    /* 72 bytes, followed by id\0 title\0 pattern\0   */

enum {
    FOLIO_STORE_HAS_SENT_VECS = 1u << 0,
    FOLIO_STORE_HAS_BLOCK_VECS = 1u << 1,
    FOLIO_STORE_HAS_SECTION_VECS = 1u << 2,
    FOLIO_STORE_HAS_DOC_VEC = 1u << 3,
    FOLIO_STORE_HAS_SALIENCE = 1u << 4,
};

typedef struct {
    uint8_t hash[16];
    uint32_t dup_of_len, origin_len;
} folio_store_duprec_t;    /* 24 bytes, followed by dup_of\0 origin\0       */

/* ------------------------------------------------------------- open/close */

typedef struct folio_store folio_store_t;

typedef struct {
    bool readonly;            /* open an existing store for reading only     */
    size_t initial_map_bytes; /* 0 = default: max(16 MiB, 2 x the data);
                                 an existing store's larger map wins;
                                 rounded up to 64 KiB.  Reserved on disk.  */
    bool buffered_writes;     /* writer without MDB_WRITEMAP: a transaction's
                                 pages are built in malloc'd memory and
                                 written at commit.  Commits 40-50 % faster
                                 (2-core box, bench/RESULTS.md), at tens of
                                 MB more heap that grows with the
                                 transactions (the note on MDB_WRITEMAP
                                 above); for jobs whose single writer's
                                 commit is the limit (GPU ingest). */
} folio_store_opts_t;

/* Opens (creating when missing unless readonly) the store directory at
 * path.  opts may be NULL (defaults).  Errors: FOLIO_ERR_NOT_FOUND (readonly
 * and missing), FOLIO_ERR_NETFS, FOLIO_ERR_CORRUPT (not a folio store or
 * wrong version/byte order), FOLIO_ERR_IO (the map's disk space cannot be
 * reserved: full disk, quota, file-size limit; a store this call would
 * have created is not left behind), FOLIO_ERR_STORE; each logged with the
 * path and the reason.  *out is owned by the caller: folio_store_close it. */
folio_status_t folio_store_open(const char *path, const folio_store_opts_t *opts,
                                folio_store_t **out);
/* Flushes (unless readonly) and closes; NULL-safe, nulls *s.  All readers of
 * s must be closed first. */
void folio_store_close(folio_store_t **s);
/* Flushes committed transactions to disk (mdb_env_sync). */
folio_status_t folio_store_sync(folio_store_t *s);
/* Has a thread of the store start writing the committed pages to disk and
 * returns at once (a hint: durability still comes from folio_store_sync,
 * which then has less left to write).  Calls while it writes coalesce.  A
 * long job calls it after each commit.  No-op on a read-only store. */
void folio_store_writeback(folio_store_t *s);
/* The LMDB environment (for tests and tools; do not close it). */
MDB_env *folio_store_env(folio_store_t *s);

/* Internal, exposed for tests: true when a statfs f_type is a network or
 * cluster filesystem; *name gets its name (static string) when true. */
bool folio_store_fs_is_network(unsigned long f_type, const char **name);

/* ------------------------------------------------------------- planning */

typedef enum {
    FOLIO_DOC_NEW,        /* neither id nor content stored                   */
    FOLIO_DOC_SAME,       /* this id is stored with this hash: nothing to do */
    FOLIO_DOC_DUPLICATE,  /* this hash is stored under another id (other_id);
                             also returned for an id already recorded as a
                             duplicate of the same content (re-recording is
                             idempotent)                                     */
    FOLIO_DOC_REPLACE,    /* this id is stored with other content            */
} folio_doc_state_t;

/* Classifies a document before work.  other_id (may be NULL) receives the id
 * holding the same content for DUPLICATE (NUL-terminated, truncated to
 * other_cap).  FOLIO_ERR_ARG for an empty or too long id. */
folio_status_t folio_store_classify(folio_store_t *s, const char *id, const uint8_t hash[16],
                                    folio_doc_state_t *state, char *other_id, size_t other_cap);

/* Distinct index terms (stem hashes, increasing) and their term frequencies
 * of a stored doc.  *terms and *tfs are malloc'd, owned by the caller (free
 * both; NULL when n == 0).  FOLIO_ERR_NOT_FOUND when id is not stored. */
folio_status_t folio_store_doc_terms(folio_store_t *s, const char *id, uint64_t **terms,
                                     uint32_t **tfs, uint32_t *n);

/* df[i] = number of committed docs containing terms[i] (0 when unknown), in
 * one read txn. */
folio_status_t folio_store_df_lookup(folio_store_t *s, const uint64_t *terms, uint32_t n,
                                     uint32_t *df);

typedef struct {
    uint64_t n_docs, n_duplicates, n_tokens, n_sents, n_sections, n_bytes;
    uint64_t n_terms, n_postings, n_summaries;
    double avg_doc_tokens;      /* n_tokens / n_docs (BM25's avgdl), 0 if empty */
    uint64_t map_bytes;         /* current map size                          */
    uint64_t used_bytes;        /* pages in use * page size                  */
    uint32_t page_bytes;
    /* this process's writer so far: how often the map grew, and how many
     * write txns ran again from the start because the map filled (the
     * batch commits size the map first, so this stays near 0) */
    uint64_t map_growths, txn_reruns;
    /* this process's batch commits (folio_store_commit_docs) so far, in
     * seconds: preparing the documents (distinct terms), writing their
     * values, the postings and df (sorted, one pass), LMDB's commit */
    double commit_prepare_seconds, commit_values_seconds, commit_postings_seconds, commit_txn_seconds;
} folio_store_info_t;

folio_status_t folio_store_info(folio_store_t *s, folio_store_info_t *info);

/* ------------------------------------------------------------- commits */

typedef struct {
    const char *pattern;       /* pattern spec the vectors were computed with */
    uint32_t d;                /* vector width (> 0 when any vector is given) */
    uint32_t n_blocks;         /* blocks of the hierarchy (given by pattern)  */
    const float *sent_vecs;    /* (n_sents, d)    unit-norm sentence vectors  */
    const float *block_vecs;   /* (n_blocks, d)   block summary vectors       */
    const float *section_vecs; /* (n_sections, d)                             */
    const float *doc_vec;      /* (d)                                         */
    const float *salience;     /* (n_sents) attention-derived salience        */
} folio_doc_results_t;         /* any pointer may be NULL: not stored         */

/* Commits an analyzed document (folio_doc_analyze: id, title, text, len,
 * hash, tokens, stem_hashes, sents, sections) with its results (res may be
 * NULL) in ONE write txn with its done-marker; replaces an existing version
 * of the id atomically; removes a duplicate record of the same id.  Grows
 * the map on MDB_MAP_FULL and retries.  Nothing is kept of doc or res.
 * Errors: FOLIO_ERR_ARG (bad id, inconsistent arrays — with a message
 * naming the doc), FOLIO_ERR_CORRUPT (the content hash is stored under
 * another id: commit_duplicate it instead), FOLIO_ERR_MAP_FULL,
 * FOLIO_ERR_IO (the growth it needed cannot be reserved on disk: nothing
 * of it stored, the store stays valid), FOLIO_ERR_STORE. */
folio_status_t folio_store_commit_doc(folio_store_t *s, const folio_doc_t *doc,
                                      const folio_doc_results_t *res);

/* Commits n documents (res may be NULL, or res[i] NULL) in ONE write txn:
 * each document is still complete with its done-marker, so atomicity per
 * document holds, and the per-txn cost (page copies of the shared index
 * pages, the meta page) is paid once per batch: several times the
 * throughput of commit_doc for small documents.  All or nothing: on any
 * error (logged, naming the doc) none of the batch is stored — e.g.
 * FOLIO_ERR_CORRUPT when two docs of the batch have the same content;
 * then commit them one by one.  Later docs of a batch see earlier ones (a
 * repeated id is a replace). */
folio_status_t folio_store_commit_docs(folio_store_t *s, const folio_doc_t *const *docs,
                                       const folio_doc_results_t *const *res, uint32_t n);

/* Records id as a duplicate of the committed doc dup_of (which must hold
 * content hash), origin (may be NULL) saying where the input came from.
 * One txn; if id was a committed doc, that doc is removed in the same txn.
 * FOLIO_ERR_NOT_FOUND when dup_of is not stored with this hash. */
folio_status_t folio_store_commit_duplicate(folio_store_t *s, const char *id, const uint8_t hash[16],
                                            const char *dup_of, const char *origin);

/* Stores (replacing) the summary of committed doc id: json must parse as a
 * JSON value (FOLIO_ERR_PARSE otherwise).  FOLIO_ERR_NOT_FOUND for an
 * unknown id.  The summary is dropped when the doc is replaced. */
folio_status_t folio_store_put_summary(folio_store_t *s, const char *id, const char *json, size_t len);

/* Replaces the whole result set (pattern, d, n_blocks, vectors, salience) of
 * committed doc id, in one txn, leaving text, layout, postings and summary
 * alone: the arrays given are stored, those NULL are removed.  Array sizes
 * follow the stored n_sents / n_sections and res->n_blocks, res->d.
 * FOLIO_ERR_NOT_FOUND for an unknown id. */
folio_status_t folio_store_put_results(folio_store_t *s, const char *id, const folio_doc_results_t *res);

/* ------------------------------------------------------------- reads
 * A reader wraps one LMDB read txn (a consistent snapshot).  Every pointer
 * it hands out points into the read-only LMDB map, or into copies owned by
 * the reader, and stays valid until folio_store_reader_close; never write
 * through them.  Arrays are always correctly aligned for their type: a value
 * LMDB placed at a misaligned address is copied once into reader memory. */
typedef struct folio_store_reader folio_store_reader_t;

folio_status_t folio_store_reader_open(folio_store_t *s, folio_store_reader_t **r);
void folio_store_reader_close(folio_store_reader_t **r);  /* NULL-safe, nulls *r */

typedef struct {
    uint32_t docnum;
    const char *id;       size_t id_len;      /* NUL-terminated                */
    const char *title;    size_t title_len;   /* NUL-terminated, may be ""     */
    const char *text;     size_t len;         /* original text, NUL-terminated */
    uint8_t hash[16];
    uint32_t n_tokens, n_sents, n_sections, n_blocks, n_terms;
    const folio_sentence_t *sents;            /* (n_sents)                     */
    const folio_section_t *sections;          /* (n_sections)                  */
    const uint64_t *terms;                    /* (n_terms) increasing          */
    const uint32_t *tfs;                      /* (n_terms)                     */
    const char *pattern;                      /* "" when no results stored     */
    uint32_t d;                               /* 0 when no vectors             */
    const float *sent_vecs;                   /* (n_sents, d)    or NULL       */
    const float *block_vecs;                  /* (n_blocks, d)   or NULL       */
    const float *section_vecs;                /* (n_sections, d) or NULL       */
    const float *doc_vec;                     /* (d)             or NULL       */
    const float *salience;                    /* (n_sents)       or NULL       */
    const char *summary;  size_t summary_len; /* JSON or NULL (not NUL-term.)  */
} folio_stored_doc_t;

/* Whole document by id / by docnum.  FOLIO_ERR_NOT_FOUND when absent (not
 * logged: absence is a normal answer), FOLIO_ERR_CORRUPT when records are
 * missing or malformed (logged). */
folio_status_t folio_store_get_doc(folio_store_reader_t *r, const char *id, folio_stored_doc_t *out);
folio_status_t folio_store_get_doc_by_num(folio_store_reader_t *r, uint32_t docnum,
                                          folio_stored_doc_t *out);
/* Only the record: id, title, hash, counts, pattern, d (arrays, text and
 * summary NULL).  One lookup: use it for BM25 doc lengths. */
folio_status_t folio_store_get_head_by_num(folio_store_reader_t *r, uint32_t docnum,
                                           folio_stored_doc_t *out);

/* The id of the document that holds id's content: id itself when it is a
 * committed document, its dup_of when id was recorded as a duplicate (an
 * alias of the same content).  *doc_id valid until the reader closes.
 * FOLIO_ERR_NOT_FOUND when id is neither (not logged). */
folio_status_t folio_store_resolve_id(folio_store_reader_t *r, const char *id, const char **doc_id);

typedef struct { uint32_t doc; uint32_t tf; } folio_posting_t;

/* Postings of a term in increasing docnum order; *p owned by the reader
 * (valid until close), NULL with *n = *df = 0 for an unknown term. */
folio_status_t folio_store_postings(folio_store_reader_t *r, uint64_t stem_hash,
                                    const folio_posting_t **p, uint32_t *n, uint32_t *df);

/* Calls fn for every committed document in id order (bytewise) with the
 * full document (as get_doc); fn returns 0 to go on, nonzero to stop (the
 * iteration then returns FOLIO_OK).  heads_only: as get_head_by_num. */
typedef int (*folio_store_doc_fn)(const folio_stored_doc_t *doc, void *ctx);
folio_status_t folio_store_iter_docs(folio_store_reader_t *r, bool heads_only,
                                     folio_store_doc_fn fn, void *ctx);

typedef struct {
    const char *id;      /* NUL-terminated, all valid until reader close */
    const char *dup_of;
    const char *origin;  /* "" when unknown */
    uint8_t hash[16];
} folio_stored_dup_t;
typedef int (*folio_store_dup_fn)(const folio_stored_dup_t *dup, void *ctx);
/* Duplicate records in id order. */
folio_status_t folio_store_iter_duplicates(folio_store_reader_t *r, folio_store_dup_fn fn, void *ctx);

/* Pattern specs used by committed docs with their doc counts, in spec order. */
typedef int (*folio_store_pattern_fn)(const char *spec, uint64_t n_docs, void *ctx);
folio_status_t folio_store_iter_patterns(folio_store_reader_t *r, folio_store_pattern_fn fn, void *ctx);

/* ------------------------------------------------------------- check */

/* Verifies every invariant of the schema above in one read snapshot.  Each
 * fault is written as one line to report (may be NULL) and counted in
 * *n_faults (at most max_report lines are written; counting goes on).
 * Returns FOLIO_OK when the check ran (faults or not), an error when the
 * store could not be read at all. */
folio_status_t folio_store_check(folio_store_t *s, FILE *report, uint64_t max_report,
                                 uint64_t *n_faults);
/* deep: also re-tokenize every text with shard's tokenizer and verify the
 * token counts, the sentences' token ranges and the index terms (Porter
 * stems) against it — catches an index built by another tokenizer version;
 * costs a tokenization of the whole store. */
folio_status_t folio_store_check_ex(folio_store_t *s, bool deep, FILE *report, uint64_t max_report,
                                    uint64_t *n_faults);

/* Deterministic JSONL dump (see cli/cmd_store.c --help for the format):
 * documents in id order, then duplicates, then summaries.  The same content
 * gives byte-identical output whatever the insertion order. */
typedef struct { bool vectors; bool text; } folio_store_export_opts_t;
folio_status_t folio_store_export(folio_store_t *s, const folio_store_export_opts_t *opts, FILE *out);

#ifdef __cplusplus
}
#endif
#endif /* FOLIO_STORE_H */
