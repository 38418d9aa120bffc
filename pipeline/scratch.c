/* pipeline/scratch.c — the planner's per-document state, kept on disk so that
 * rank 0's memory does not grow with the number of input documents.
 *
 * Two unlinked files in the store's directory (a local filesystem: the store
 * refuses network ones; an unlinked file also vanishes with a killed run):
 *  - the plan log: one entry per input document, appended in pass 1 and read
 *    back in the same order in pass 2 through stdio's buffer;
 *  - the job index: a private LMDB environment (MDB_NOLOCK, single process)
 *    mapping the id and the content hash of every document this job will
 *    encode, for exact duplicate / same-id detection within the job.  Its
 *    pages are file-backed (the kernel can drop them), and its write txn is
 *    committed every SCRATCH_BATCH puts, so the dirty pages LMDB mallocs
 *    stay bounded too.
 * This is not the store's schema (store/ owns that); it is a throw-away
 * structure of the planner that happens to be a B-tree on disk. */
#include "pipeline_internal.h"

#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../store/store.h"

/* ------------------------------------------------------------ temp files */

/* Creates and unlinks dir/.folio-<what>-XXXXXX; *path_out (malloc'd) names
 * it until the caller unlinks it (LMDB needs a path to open). */
static folio_status_t temp_create(const char *dir, const char *what, int *fd_out, char **path_out)
{
    size_t n = strlen(dir) + strlen(what) + 32;
    char *path = malloc(n);
    FOLIO_CHECK_ALLOC(path);
    snprintf(path, n, "%s/.folio-%s-XXXXXX", dir, what);
    int fd = mkstemp(path);
    if (fd < 0) {
        folio_log(FOLIO_LOG_ERROR, "cannot create a temporary file in '%s': %s", dir, strerror(errno));
        free(path);
        return FOLIO_ERR_IO;
    }
    *fd_out = fd;
    *path_out = path;
    return FOLIO_OK;
}

/* ------------------------------------------------------------ plan log */

_Static_assert(sizeof(((folio_plan_entry_t *)0)->dup_of) > FOLIO_STORE_MAX_ID, "dup_of holds any stored id");

struct folio_planlog {
    FILE *f;
    bool reading;
};

typedef struct {
    uint8_t action;
    uint8_t hash[16];
    uint8_t pad;
    uint16_t dup_len;
} planlog_rec_t; /* then dup_len bytes of dup_of */

folio_status_t folio_planlog_create(const char *dir, folio_planlog_t **out)
{
    *out = NULL;
    folio_planlog_t *p = calloc(1, sizeof *p);
    FOLIO_CHECK_ALLOC(p);
    int fd;
    char *path;
    folio_status_t st = temp_create(dir, "plan", &fd, &path);
    if (st != FOLIO_OK) { free(p); return st; }
    unlink(path);
    free(path);
    p->f = fdopen(fd, "w+b");
    if (!p->f) {
        close(fd);
        free(p);
        FOLIO_CHECK_GENERIC(false, FOLIO_ERR_IO, "plan log: fdopen: %s", strerror(errno));
    }
    *out = p;
    return FOLIO_OK;
}

void folio_planlog_destroy(folio_planlog_t **pp)
{
    if (!pp || !*pp) return;
    if ((*pp)->f) fclose((*pp)->f);
    free(*pp);
    *pp = NULL;
}

folio_status_t folio_planlog_append(folio_planlog_t *p, const folio_plan_entry_t *e)
{
    FOLIO_CHECK_GENERIC(!p->reading, FOLIO_ERR_INTERNAL, "plan log: append after rewind");
    planlog_rec_t r = {0};
    r.action = e->action;
    memcpy(r.hash, e->hash, 16);
    size_t dl = e->action == FOLIO_PLAN_DUP ? strlen(e->dup_of) : 0;
    FOLIO_CHECK_GENERIC(dl <= FOLIO_STORE_MAX_ID, FOLIO_ERR_INTERNAL, "plan log: dup_of too long");
    r.dup_len = (uint16_t)dl;
    FOLIO_CHECK_GENERIC(fwrite(&r, sizeof r, 1, p->f) == 1 && (dl == 0 || fwrite(e->dup_of, dl, 1, p->f) == 1),
                        FOLIO_ERR_IO, "plan log: write: %s", strerror(errno));
    return FOLIO_OK;
}

folio_status_t folio_planlog_rewind(folio_planlog_t *p)
{
    FOLIO_CHECK_GENERIC(fflush(p->f) == 0 && fseek(p->f, 0, SEEK_SET) == 0, FOLIO_ERR_IO,
                        "plan log: rewind: %s", strerror(errno));
    p->reading = true;
    return FOLIO_OK;
}

folio_status_t folio_planlog_next(folio_planlog_t *p, folio_plan_entry_t *e)
{
    FOLIO_CHECK_GENERIC(p->reading, FOLIO_ERR_INTERNAL, "plan log: read before rewind");
    planlog_rec_t r;
    size_t got = fread(&r, 1, sizeof r, p->f);
    if (got == 0 && feof(p->f)) return FOLIO_EOF;
    FOLIO_CHECK_GENERIC(got == sizeof r && r.dup_len <= FOLIO_STORE_MAX_ID, FOLIO_ERR_IO,
                        "plan log: short or bad record");
    e->action = r.action;
    memcpy(e->hash, r.hash, 16);
    e->dup_of[0] = 0;
    if (r.dup_len) {
        FOLIO_CHECK_GENERIC(fread(e->dup_of, r.dup_len, 1, p->f) == 1, FOLIO_ERR_IO, "plan log: short record");
        e->dup_of[r.dup_len] = 0;
    }
    return FOLIO_OK;
}

/* ------------------------------------------------------------ job index */

/* Puts per write txn: bounds LMDB's malloc'd dirty pages (a put dirties a
 * few pages of each tree: well under 1 MB per 256 puts of short ids). */
enum { SCRATCH_BATCH = 256 };
static const size_t SCRATCH_MAP0 = (size_t)64 << 20;

struct folio_jobidx {
    MDB_env *env;
    MDB_dbi ids, contents;
    MDB_txn *txn; /* the open write txn (gets see its puts)                */
    int pending;  /* puts in txn                                            */
};

#define SCRATCH_MDB(rc_expr, what)                                              \
    do {                                                                        \
        int scratch_rc_ = (rc_expr);                                            \
        FOLIO_CHECK_GENERIC(scratch_rc_ == MDB_SUCCESS, FOLIO_ERR_STORE,        \
                            "planner scratch index: %s: %s", what, mdb_strerror(scratch_rc_)); \
    } while (0)

static folio_status_t jobidx_begin(folio_jobidx_t *x)
{
    SCRATCH_MDB(mdb_txn_begin(x->env, NULL, 0, &x->txn), "begin");
    x->pending = 0;
    return FOLIO_OK;
}

/* Commits the open txn and, with no txn open (LMDB's rule for resizing),
 * doubles the map while less than a batch's worst case is left. */
static folio_status_t jobidx_flush(folio_jobidx_t *x)
{
    int rc = mdb_txn_commit(x->txn);
    x->txn = NULL;
    SCRATCH_MDB(rc, "commit");
    MDB_envinfo ei;
    MDB_stat ms;
    SCRATCH_MDB(mdb_env_info(x->env, &ei), "info");
    SCRATCH_MDB(mdb_env_stat(x->env, &ms), "stat");
    /* worst case of one batch: every put splits pages along both trees */
    size_t need = (size_t)(ei.me_last_pgno + 1) * ms.ms_psize + (size_t)SCRATCH_BATCH * 2 * 8 * ms.ms_psize;
    size_t map = ei.me_mapsize;
    while (map < need + need / 2) map *= 2;
    if (map != ei.me_mapsize) {
        SCRATCH_MDB(mdb_env_set_mapsize(x->env, map), "grow map");
        folio_log(FOLIO_LOG_DEBUG, "planner scratch index: map grown to %zu bytes", map);
    }
    return jobidx_begin(x);
}

folio_status_t folio_jobidx_create(const char *dir, folio_jobidx_t **out)
{
    *out = NULL;
    folio_jobidx_t *x = calloc(1, sizeof *x);
    FOLIO_CHECK_ALLOC(x);
    int fd = -1;
    char *path = NULL;
    folio_status_t st = temp_create(dir, "planidx", &fd, &path);
    if (st != FOLIO_OK) { free(x); return st; }
    close(fd); /* LMDB opens the (empty, so new) file itself */
    int rc = mdb_env_create(&x->env);
    if (rc == MDB_SUCCESS) rc = mdb_env_set_maxdbs(x->env, 2);
    if (rc == MDB_SUCCESS) rc = mdb_env_set_mapsize(x->env, SCRATCH_MAP0);
    if (rc == MDB_SUCCESS)
        rc = mdb_env_open(x->env, path, MDB_NOSUBDIR | MDB_NOLOCK | MDB_NOSYNC | MDB_NOMETASYNC | MDB_NOTLS, 0600);
    unlink(path); /* the map and LMDB's descriptor keep it alive until close */
    if (rc != MDB_SUCCESS) {
        folio_log(FOLIO_LOG_ERROR, "planner scratch index in '%s': %s", dir, mdb_strerror(rc));
        free(path);
        if (x->env) mdb_env_close(x->env);
        free(x);
        return FOLIO_ERR_STORE;
    }
    free(path);
    st = jobidx_begin(x);
    if (st == FOLIO_OK) {
        rc = mdb_dbi_open(x->txn, "ids", MDB_CREATE, &x->ids);
        if (rc == MDB_SUCCESS) rc = mdb_dbi_open(x->txn, "contents", MDB_CREATE, &x->contents);
        if (rc != MDB_SUCCESS) {
            folio_log(FOLIO_LOG_ERROR, "planner scratch index: open tables: %s", mdb_strerror(rc));
            st = FOLIO_ERR_STORE;
        }
    }
    if (st == FOLIO_OK) st = jobidx_flush(x); /* the dbi handles become valid for later txns */
    if (st != FOLIO_OK) {
        folio_jobidx_destroy(&x);
        return st;
    }
    *out = x;
    return FOLIO_OK;
}

void folio_jobidx_destroy(folio_jobidx_t **px)
{
    if (!px || !*px) return;
    folio_jobidx_t *x = *px;
    if (x->txn) mdb_txn_abort(x->txn);
    if (x->env) mdb_env_close(x->env);
    free(x);
    *px = NULL;
}

/* LMDB keys are 1..511 bytes; ids outside 1..FOLIO_STORE_MAX_ID are never
 * indexed (the store rejects them), so they are simply never found. */
static bool id_key(const char *id, MDB_val *k)
{
    size_t n = strlen(id);
    k->mv_size = n;
    k->mv_data = (void *)id;
    return n >= 1 && n <= FOLIO_STORE_MAX_ID;
}

folio_status_t folio_jobidx_find_id(folio_jobidx_t *x, const char *id, uint8_t hash[16], bool *found)
{
    *found = false;
    MDB_val k, v;
    if (!id_key(id, &k)) return FOLIO_OK;
    int rc = mdb_get(x->txn, x->ids, &k, &v);
    if (rc == MDB_NOTFOUND) return FOLIO_OK;
    SCRATCH_MDB(rc, "get id");
    FOLIO_CHECK_GENERIC(v.mv_size == 16, FOLIO_ERR_INTERNAL, "planner scratch index: bad id record");
    memcpy(hash, v.mv_data, 16);
    *found = true;
    return FOLIO_OK;
}

folio_status_t folio_jobidx_find_content(folio_jobidx_t *x, const uint8_t hash[16], char *id, size_t cap,
                                         bool *found)
{
    *found = false;
    MDB_val k = {16, (void *)hash}, v;
    int rc = mdb_get(x->txn, x->contents, &k, &v);
    if (rc == MDB_NOTFOUND) return FOLIO_OK;
    SCRATCH_MDB(rc, "get content");
    FOLIO_CHECK_GENERIC(v.mv_size > 0 && v.mv_size < cap, FOLIO_ERR_INTERNAL,
                        "planner scratch index: bad content record");
    memcpy(id, v.mv_data, v.mv_size);
    id[v.mv_size] = 0;
    *found = true;
    return FOLIO_OK;
}

folio_status_t folio_jobidx_put(folio_jobidx_t *x, const char *id, const uint8_t hash[16], bool content)
{
    MDB_val k, v = {16, (void *)hash};
    FOLIO_CHECK_GENERIC(id_key(id, &k), FOLIO_ERR_INTERNAL, "planner scratch index: bad id");
    SCRATCH_MDB(mdb_put(x->txn, x->ids, &k, &v, 0), "put id");
    MDB_val ck = {16, (void *)hash}, cv = k;
    if (content) SCRATCH_MDB(mdb_put(x->txn, x->contents, &ck, &cv, 0), "put content");
    if (++x->pending >= SCRATCH_BATCH) return jobidx_flush(x);
    return FOLIO_OK;
}
