/* store/store.c — opening the LMDB environment, planning lookups, and the
 * one-transaction-per-document commits (with map growth). */
#define _GNU_SOURCE /* fallocate(2) */
#include "store_internal.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#define STORE_MAGIC 0x464F4C49u
#define STORE_ENDIAN_PROBE 0x0102030405060708ull
/* The writer's map is reserved on disk (see store.h), so it starts small: a
 * batch commit grows it first to what the batch needs (ensure_room). */
#define STORE_DEFAULT_MAP ((size_t)16 << 20)
#define STORE_MIN_MAP ((size_t)64 << 10)
#define STORE_GROW_STEP_MAX ((size_t)4 << 30) /* doubling, at most +4 GiB at a time */
#define STORE_MAX_MAP ((size_t)1 << 44) /* 16 TiB: beyond this growth is a bug */
/* Threads that prepare a batch's documents (commit_docs): the writer's
 * helpers while the ranks compute the next round. */
#define STORE_PREPARE_THREADS 4

/* The stored layouts: a change here changes the on-disk format (bump
 * FOLIO_STORE_VERSION). */
_Static_assert(sizeof(folio_store_format_t) == 16, "format record layout");
_Static_assert(sizeof(folio_store_counters_t) == 80, "counters record layout");
_Static_assert(sizeof(folio_store_docrec_t) == 72, "document record layout");
_Static_assert(sizeof(folio_store_duprec_t) == 24, "duplicate record layout");
_Static_assert(sizeof(folio_sentence_t) == 20, "sentence array layout");
_Static_assert(sizeof(folio_section_t) == 28, "section array layout");

const char *const folio_store_db_names[DB_COUNT] = {
    "meta", "done", "hashes", "docs", "text", "sents", "sections", "terms",
    "sentvec", "blockvec", "secvec", "docvec", "salience", "summaries",
    "postings", "df", "dups",
};

static unsigned db_flags(int i)
{
    switch (i) {
    case DB_DOCS: case DB_TEXT: case DB_SENTS: case DB_SECTIONS: case DB_TERMS:
    case DB_SENTVEC: case DB_BLOCKVEC: case DB_SECVEC: case DB_DOCVEC:
    case DB_SALIENCE: case DB_SUMMARIES: case DB_DF:
        return MDB_INTEGERKEY;
    case DB_POSTINGS:
        return MDB_INTEGERKEY | MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP;
    default:
        return 0;
    }
}

folio_status_t folio_store_mdb_status(int rc)
{
    switch (rc) {
    case MDB_SUCCESS: return FOLIO_OK;
    case MDB_MAP_FULL: return FOLIO_ERR_MAP_FULL;
    case MDB_NOTFOUND: return FOLIO_ERR_NOT_FOUND;
    case MDB_CORRUPTED: case MDB_PAGE_NOTFOUND: case MDB_INVALID: case MDB_VERSION_MISMATCH:
        return FOLIO_ERR_CORRUPT;
    case ENOMEM: return FOLIO_ERR_NOMEM;
    default: return FOLIO_ERR_STORE;
    }
}

/* ------------------------------------------------------------ network fs */

bool folio_store_fs_is_network(unsigned long f_type, const char **name)
{
    /* Magic numbers from statfs(2) / linux/magic.h and the filesystems' own
     * sources (Lustre, GPFS, BeeGFS, Panasas are out of tree). */
    static const struct { unsigned long magic; const char *name; } nets[] = {
        {0x6969UL, "NFS"},
        {0x517BUL, "SMB"},
        {0xFF534D42UL, "CIFS"},
        {0xFE534D42UL, "SMB2"},
        {0x0BD00BD0UL, "Lustre"},
        {0x47504653UL, "GPFS"},
        {0x00C36400UL, "Ceph"},
        {0x19830326UL, "BeeGFS"},
        {0x5346414FUL, "AFS"},
        {0x6B414653UL, "kAFS"},
        {0x73757245UL, "Coda"},
        {0x564CUL, "NCP"},
        {0x01021997UL, "9p"},
        {0xAAD7AAEAUL, "PanFS"},
        {0x7461636FUL, "OCFS2"},
        {0x01161970UL, "GFS2"},
    };
    for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++)
        if ((f_type & 0xFFFFFFFFUL) == nets[i].magic) {
            if (name) *name = nets[i].name;
            return true;
        }
    return false;
}

/* ------------------------------------------------------------ reservation */

static size_t round_map(size_t n) { return (n + STORE_MIN_MAP - 1) / STORE_MIN_MAP * STORE_MIN_MAP; }

/* Allocates every block of [0, bytes) of fd (holes included: a store LMDB
 * extended sparsely has them), extending the file to bytes.  Returns 0 or
 * the errno; on failure the file is cut back to its former length (the
 * blocks a failed fallocate got past it would stay taken otherwise). */
static int reserve_file(int fd, size_t bytes)
{
    struct stat before, after;
    if (fstat(fd, &before) != 0) return errno;
    int rc;
    do {
        rc = fallocate(fd, 0, 0, (off_t)bytes);
    } while (rc != 0 && errno == EINTR);
    if (rc == 0) return 0;
    int e = errno;
    if (fstat(fd, &after) == 0 && after.st_size > before.st_size && ftruncate(fd, before.st_size) != 0)
        folio_log(FOLIO_LOG_WARN, "could not cut data.mdb back to %lld bytes: %s", (long long)before.st_size,
                  strerror(errno));
    return e;
}

/* fallocate not implemented by this filesystem (or kernel) */
static bool reserve_unsupported(int e) { return e == EOPNOTSUPP || e == ENOSYS || e == EINVAL; }

static void log_reserve_failure(const char *path, size_t bytes, size_t now, int e)
{
    const char *hint = e == EFBIG    ? ": over the file-size limit (ulimit -f) or the filesystem's largest file"
                       : e == ENOSPC ? ": the disk is full"
                       : e == EDQUOT ? ": the disk quota is used up"
                                     : "";
    folio_log(FOLIO_LOG_ERROR, "store '%s': cannot reserve %zu bytes of disk for its LMDB map (data.mdb, %zu "
              "bytes now): %s%s; nothing was written", path, bytes, now, strerror(e), hint);
}

folio_status_t store_map_resize(folio_store_t *s, size_t bytes)
{
    FOLIO_CHECK_GENERIC(!s->map_lost, FOLIO_ERR_STORE, "store '%s' is unusable after a failed remap: close it and "
                        "open it again", s->path);
    if (s->writemap) {
        /* LMDB's remap ftruncates data.mdb to the map size: it must find
         * every block there already (no hole to SIGBUS on), and must never
         * cut a file that another writer reserved further */
        MDB_envinfo ei;
        MDB_stat es;
        struct stat sb;
        int fd = -1;
        mdb_env_info(s->env, &ei);
        mdb_env_stat(s->env, &es);
        mdb_env_get_fd(s->env, &fd);
        FOLIO_CHECK_GENERIC(fstat(fd, &sb) == 0, FOLIO_ERR_IO, "store '%s': fstat of data.mdb: %s", s->path,
                            strerror(errno));
        size_t need = (size_t)(ei.me_last_pgno + 1) * es.ms_psize, fsize = (size_t)sb.st_size;
        if (bytes == 0) bytes = ei.me_mapsize; /* adopt: what the newest meta page needs, below */
        if (bytes < need) bytes = need;
        if (bytes < fsize) bytes = fsize;
        int e = reserve_file(fd, bytes);
        if (e) {
            log_reserve_failure(s->path, bytes, ei.me_mapsize, e);
            return FOLIO_ERR_IO;
        }
    }
    int rc = mdb_env_set_mapsize(s->env, bytes);
    if (rc) {
        /* LMDB unmapped the old map before failing: its pointers are stale */
        s->map_lost = true;
        folio_log(FOLIO_LOG_ERROR, "store '%s': remapping the LMDB map to %zu bytes failed: %s", s->path, bytes,
                  mdb_strerror(rc));
        return FOLIO_ERR_MAP_FULL;
    }
    return FOLIO_OK;
}

/* ------------------------------------------------------------ open/close */

static folio_status_t store_open_dbis(folio_store_t *s)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(s->env, NULL, s->readonly ? MDB_RDONLY : 0, &txn);
    FOLIO_CHECK_MDB(rc, "begin txn on store '%s'", s->path);
    folio_status_t st = FOLIO_OK;
    for (int i = 0; i < DB_COUNT; i++) {
        rc = mdb_dbi_open(txn, folio_store_db_names[i], db_flags(i) | (s->readonly ? 0 : MDB_CREATE),
                          &s->dbi[i]);
        if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE) {
            folio_log(FOLIO_LOG_ERROR, "store '%s' is not a folio store (database '%s' %s)",
                      s->path, folio_store_db_names[i], rc == MDB_NOTFOUND ? "missing" : "has other flags");
            mdb_txn_abort(txn);
            return FOLIO_ERR_CORRUPT;
        }
        if (rc) {
            folio_log(FOLIO_LOG_ERROR, "store '%s': opening database '%s': %s", s->path,
                      folio_store_db_names[i], mdb_strerror(rc));
            mdb_txn_abort(txn);
            return folio_store_mdb_status(rc);
        }
    }
    MDB_val k = {6, "format"}, v;
    rc = mdb_get(txn, s->dbi[DB_META], &k, &v);
    if (rc == MDB_NOTFOUND && !s->readonly) {
        folio_store_format_t f = {STORE_MAGIC, FOLIO_STORE_VERSION, STORE_ENDIAN_PROBE};
        v.mv_size = sizeof f;
        v.mv_data = &f;
        rc = mdb_put(txn, s->dbi[DB_META], &k, &v, 0);
        if (rc == MDB_SUCCESS) {
            folio_store_counters_t c = {0};
            c.next_docnum = 1;
            MDB_val ck = {8, "counters"}, cv = {sizeof c, &c};
            rc = mdb_put(txn, s->dbi[DB_META], &ck, &cv, 0);
        }
        if (rc) {
            folio_log(FOLIO_LOG_ERROR, "store '%s': writing format record: %s", s->path, mdb_strerror(rc));
            st = folio_store_mdb_status(rc);
        }
    } else if (rc) {
        folio_log(FOLIO_LOG_ERROR, "store '%s' is not a folio store (no format record%s%s)", s->path,
                  rc == MDB_NOTFOUND ? "" : ": ", rc == MDB_NOTFOUND ? "" : mdb_strerror(rc));
        st = FOLIO_ERR_CORRUPT;
    } else {
        folio_store_format_t f;
        if (v.mv_size != sizeof f) {
            folio_log(FOLIO_LOG_ERROR, "store '%s': format record has %zu bytes, expected %zu",
                      s->path, v.mv_size, sizeof f);
            st = FOLIO_ERR_CORRUPT;
        } else {
            memcpy(&f, v.mv_data, sizeof f);
            if (f.magic != STORE_MAGIC) {
                folio_log(FOLIO_LOG_ERROR, "store '%s' is not a folio store (bad magic)", s->path);
                st = FOLIO_ERR_CORRUPT;
            } else if (f.endian_probe != STORE_ENDIAN_PROBE) {
                folio_log(FOLIO_LOG_ERROR, "store '%s' was written on a host of the other byte order; "
                          "export it there and re-ingest", s->path);
                st = FOLIO_ERR_CORRUPT;
            } else if (f.version != FOLIO_STORE_VERSION) {
                folio_log(FOLIO_LOG_ERROR, "store '%s' has format version %u, this folio reads version %u",
                          s->path, f.version, (unsigned)FOLIO_STORE_VERSION);
                st = FOLIO_ERR_CORRUPT;
            }
        }
    }
    if (st != FOLIO_OK) {
        mdb_txn_abort(txn);
        return st;
    }
    /* also for a read txn: committing (not aborting) keeps the dbi handles
     * in the environment */
    rc = mdb_txn_commit(txn);
    FOLIO_CHECK_MDB(rc, "committing the schema of store '%s'", s->path);
    return FOLIO_OK;
}

folio_status_t folio_store_open(const char *path, const folio_store_opts_t *opts, folio_store_t **out)
{
    FOLIO_CHECK_GENERIC(path && *path && out, FOLIO_ERR_ARG, "folio_store_open: no store path given");
    *out = NULL;
    folio_store_opts_t o = {0};
    if (opts) o = *opts;

    struct stat sb;
    bool made_dir = false;
    if (stat(path, &sb) != 0) {
        if (errno != ENOENT) {
            folio_log(FOLIO_LOG_ERROR, "store '%s': %s", path, strerror(errno));
            return FOLIO_ERR_IO;
        }
        if (o.readonly) {
            folio_log(FOLIO_LOG_ERROR, "store '%s' does not exist (run 'folio ingest --db %s ...' first)",
                      path, path);
            return FOLIO_ERR_NOT_FOUND;
        }
        if (mkdir(path, 0775) == 0) made_dir = true;
        else if (errno != EEXIST) {
            folio_log(FOLIO_LOG_ERROR, "cannot create store directory '%s': %s", path, strerror(errno));
            return FOLIO_ERR_IO;
        }
    } else if (!S_ISDIR(sb.st_mode)) {
        folio_log(FOLIO_LOG_ERROR, "store '%s' is not a directory (a store is a directory holding "
                  "data.mdb and lock.mdb)", path);
        return FOLIO_ERR_ARG;
    }
    if (o.readonly) {
        char p[4096];
        snprintf(p, sizeof p, "%s/data.mdb", path);
        if (stat(p, &sb) != 0) {
            folio_log(FOLIO_LOG_ERROR, "store '%s' does not exist (no data.mdb in the directory)", path);
            return FOLIO_ERR_NOT_FOUND;
        }
    }

    struct statfs fs;
    if (statfs(path, &fs) == 0) {
        const char *fsname = NULL;
        if (folio_store_fs_is_network((unsigned long)fs.f_type, &fsname)) {
            folio_log(FOLIO_LOG_ERROR, "store '%s' is on a network filesystem (%s): LMDB needs a local "
                      "disk, because its lock file and shared memory map are unsafe over the network; "
                      "put the store on node-local storage (e.g. $TMPDIR or /scratch on the node) and "
                      "copy it afterwards", path, fsname);
            return FOLIO_ERR_NETFS;
        }
    }

    folio_store_t *s = calloc(1, sizeof *s);
    FOLIO_CHECK_ALLOC(s);
    s->path = strdup(path);
    s->readonly = o.readonly;
    atomic_init(&s->open_readers, 0);
    if (!s->path) {
        free(s);
        return FOLIO_ERR_NOMEM;
    }
    folio_status_t st = FOLIO_OK;
    size_t map = o.initial_map_bytes ? o.initial_map_bytes : STORE_DEFAULT_MAP;
    if (map < STORE_MIN_MAP) map = STORE_MIN_MAP;
    map = (map + STORE_MIN_MAP - 1) / STORE_MIN_MAP * STORE_MIN_MAP;
    char datafile[4096];
    snprintf(datafile, sizeof datafile, "%s/data.mdb", path);
    bool exists = stat(datafile, &sb) == 0;
    int rc = MDB_SUCCESS;
    if (o.readonly) {
        /* Readers map far more than the file (address space only, pages
         * are never touched past the data): a writer in another process
         * may grow the store, and a reader whose map is too small could
         * only adopt the new size with no read txn open in this process
         * (serve has many).  Smaller tries for a limited `ulimit -v`. */
        static const size_t tries[] = {(size_t)1 << 40, (size_t)1 << 36, 0};
        for (size_t t = 0; t < sizeof tries / sizeof tries[0]; t++) {
            rc = mdb_env_create(&s->env);
            if (rc == MDB_SUCCESS) rc = mdb_env_set_maxdbs(s->env, DB_COUNT + 4);
            if (rc == MDB_SUCCESS && tries[t]) rc = mdb_env_set_mapsize(s->env, tries[t]);
            if (rc == MDB_SUCCESS) rc = mdb_env_open(s->env, path, MDB_NOTLS | MDB_RDONLY, 0664);
            if (rc == EACCES) {
                /* a store we may read but not lock (a shared read-only
                 * archive): read without LMDB's reader table */
                mdb_env_close(s->env);
                s->env = NULL;
                rc = mdb_env_create(&s->env);
                if (rc == MDB_SUCCESS) rc = mdb_env_set_maxdbs(s->env, DB_COUNT + 4);
                if (rc == MDB_SUCCESS && tries[t]) rc = mdb_env_set_mapsize(s->env, tries[t]);
                if (rc == MDB_SUCCESS)
                    rc = mdb_env_open(s->env, path, MDB_NOTLS | MDB_RDONLY | MDB_NOLOCK, 0664);
                if (rc == MDB_SUCCESS)
                    folio_log(FOLIO_LOG_WARN, "store '%s': its lock file is not writable, reading without "
                              "locks: nothing may write this store meanwhile", path);
            }
            if (rc == MDB_SUCCESS || (rc != ENOMEM && rc != EINVAL)) break;
            mdb_env_close(s->env);
            s->env = NULL;
        }
    } else {
        /* The map is written through (MDB_WRITEMAP: a round's dirty pages
         * are the file's pages, not malloc'd copies), so every block of it
         * is allocated before LMDB may write there.  LMDB ftruncates
         * data.mdb to the map size whenever it maps it: the first map is
         * the file's own size (a new store: the minimum), so nothing is
         * extended sparsely; then the target size is reserved and mapped.
         * Target: map bytes (default: max(16 MiB, 2 x the data)), never
         * below the current map (an existing store's larger size wins). */
        size_t fsize0 = exists ? (size_t)sb.st_size : 0;
        s->writemap = !o.buffered_writes;
        for (;;) {
            rc = mdb_env_create(&s->env);
            if (rc == MDB_SUCCESS) rc = mdb_env_set_maxdbs(s->env, DB_COUNT + 4);
            if (rc == MDB_SUCCESS && s->writemap) rc = mdb_env_set_mapsize(s->env, fsize0 ? fsize0 : STORE_MIN_MAP);
            else if (rc == MDB_SUCCESS && !exists) rc = mdb_env_set_mapsize(s->env, map);
            if (rc == MDB_SUCCESS)
                rc = mdb_env_open(s->env, path, MDB_NOTLS | MDB_NOSYNC | (s->writemap ? MDB_WRITEMAP : 0), 0664);
            if (rc) break;
            MDB_envinfo ei;
            MDB_stat es;
            mdb_env_info(s->env, &ei);
            mdb_env_stat(s->env, &es);
            size_t used = (size_t)(ei.me_last_pgno + 1) * es.ms_psize, target = map;
            if (!o.initial_map_bytes && 2 * used > target) target = round_map(2 * used);
            if (ei.me_mapsize > target) target = ei.me_mapsize;
            if (!s->writemap) {
                if (target != ei.me_mapsize) rc = mdb_env_set_mapsize(s->env, target);
                break;
            }
            int fd = -1;
            mdb_env_get_fd(s->env, &fd);
            int e = reserve_file(fd, target);
            if (e == 0) {
                rc = mdb_env_set_mapsize(s->env, target);
                if (rc) s->map_lost = true;
                break;
            }
            mdb_env_close(s->env); /* nothing was written through the map */
            s->env = NULL;
            if (reserve_unsupported(e)) {
                folio_log(FOLIO_LOG_WARN, "store '%s': the filesystem cannot preallocate data.mdb (fallocate: %s); "
                          "writing without MDB_WRITEMAP (commits then hold their pages in memory)", path,
                          strerror(e));
                s->writemap = false;
                continue;
            }
            log_reserve_failure(path, target, fsize0, e);
            st = FOLIO_ERR_IO;
            if (!exists) { /* leave no half-made store behind */
                char lockfile[4096];
                snprintf(lockfile, sizeof lockfile, "%s/lock.mdb", path);
                unlink(datafile);
                unlink(lockfile);
                if (made_dir) rmdir(path);
            }
            break;
        }
    }
    if (st != FOLIO_OK) {
        /* logged above */
    } else if (rc) {
        folio_log(FOLIO_LOG_ERROR, "cannot open store '%s': %s", path, mdb_strerror(rc));
        st = rc == EACCES ? FOLIO_ERR_IO : folio_store_mdb_status(rc);
    } else {
        /* free the reader slots of processes that died holding a read txn
         * (kill -9 of a serve or export): they would keep old pages from
         * reuse and grow the file */
        int dead = 0;
        if (mdb_reader_check(s->env, &dead) == MDB_SUCCESS && dead > 0)
            folio_log(FOLIO_LOG_INFO, "store '%s': cleared %d stale reader slot%s", path, dead, dead == 1 ? "" : "s");
        st = store_open_dbis(s);
    }
    if (st != FOLIO_OK) {
        folio_store_close(&s);
        return st;
    }
    *out = s;
    return FOLIO_OK;
}

static void flusher_stop(folio_store_t *s);

void folio_store_close(folio_store_t **sp)
{
    if (!sp || !*sp) return;
    folio_store_t *s = *sp;
    int open_readers = atomic_load(&s->open_readers);
    if (open_readers > 0) {
        /* closing the env under a live txn is undefined in LMDB, and the
         * readers still point at s: leave both alive (a leak, not a crash) */
        folio_log(FOLIO_LOG_ERROR, "store '%s' closed with %d reader%s still open: a bug in the caller; "
                  "the store is left open", s->path, open_readers, open_readers == 1 ? "" : "s");
        *sp = NULL;
        return;
    }
    flusher_stop(s); /* it uses the environment's descriptor */
    if (s->env && s->map_lost) {
        /* LMDB would munmap its stale map pointer (maybe memory in use
         * since): leak the environment instead */
        folio_log(FOLIO_LOG_WARN, "store '%s': LMDB environment left open after a failed remap", s->path);
    } else if (s->env) {
        if (!s->readonly) mdb_env_sync(s->env, 1);
        mdb_env_close(s->env);
    }
    free(s->path);
    free(s);
    *sp = NULL;
}

folio_status_t folio_store_sync(folio_store_t *s)
{
    if (s->readonly) return FOLIO_OK;
    FOLIO_CHECK_GENERIC(!s->map_lost, FOLIO_ERR_STORE, "store '%s' is unusable after a failed remap", s->path);
    FOLIO_CHECK_MDB(mdb_env_sync(s->env, 1), "sync store '%s'", s->path);
    return FOLIO_OK;
}

/* The writeback thread: each wake-up queues every dirty page of data.mdb
 * (those written through the map included) for writing and goes back to
 * sleep; the kernel writes them while the next commits are built.  Without
 * it the job's final sync wrote a whole run's pages at the end (0.06 s of a
 * 0.42 s GPU ingest of 1M tokens). */
static void *flusher_main(void *arg)
{
    folio_thread_name("folio-writeback");
    folio_store_t *s = arg;
    int fd = -1;
    if (mdb_env_get_fd(s->env, &fd) != MDB_SUCCESS) fd = -1;
    pthread_mutex_lock(&s->fl_mu);
    for (;;) {
        while (!s->fl_want && !s->fl_quit) pthread_cond_wait(&s->fl_cv, &s->fl_mu);
        if (s->fl_quit) break;
        s->fl_want = false;
        pthread_mutex_unlock(&s->fl_mu);
        /* errors (EIO, ...) surface at the real sync */
        if (fd >= 0) (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
        pthread_mutex_lock(&s->fl_mu);
    }
    pthread_mutex_unlock(&s->fl_mu);
    return NULL;
}

void folio_store_writeback(folio_store_t *s)
{
    if (!s || s->readonly || s->map_lost || !s->env) return;
    if (!s->flusher_on) {
        if (pthread_mutex_init(&s->fl_mu, NULL) != 0) return;
        if (pthread_cond_init(&s->fl_cv, NULL) != 0) {
            pthread_mutex_destroy(&s->fl_mu);
            return;
        }
        s->fl_want = s->fl_quit = false;
        if (pthread_create(&s->flusher, NULL, flusher_main, s) != 0) {
            pthread_cond_destroy(&s->fl_cv);
            pthread_mutex_destroy(&s->fl_mu);
            return;
        }
        s->flusher_on = true;
    }
    pthread_mutex_lock(&s->fl_mu);
    s->fl_want = true;
    pthread_cond_signal(&s->fl_cv);
    pthread_mutex_unlock(&s->fl_mu);
}

static void flusher_stop(folio_store_t *s)
{
    if (!s->flusher_on) return;
    pthread_mutex_lock(&s->fl_mu);
    s->fl_quit = true;
    pthread_cond_signal(&s->fl_cv);
    pthread_mutex_unlock(&s->fl_mu);
    pthread_join(s->flusher, NULL);
    pthread_cond_destroy(&s->fl_cv);
    pthread_mutex_destroy(&s->fl_mu);
    s->flusher_on = false;
}

MDB_env *folio_store_env(folio_store_t *s) { return s->env; }

/* ------------------------------------------------------------ helpers */

static folio_status_t check_id(const char *id, const char *what)
{
    size_t n = id ? strlen(id) : 0;
    FOLIO_CHECK_GENERIC(n > 0, FOLIO_ERR_ARG, "%s: empty document id", what);
    FOLIO_CHECK_GENERIC(n <= FOLIO_STORE_MAX_ID, FOLIO_ERR_ARG,
                        "%s: document id '%.60s...' has %zu bytes, the store allows at most %d",
                        what, id, n, (int)FOLIO_STORE_MAX_ID);
    return FOLIO_OK;
}

static folio_status_t begin_read(folio_store_t *s, MDB_txn **txn)
{
    FOLIO_CHECK_GENERIC(!s->map_lost, FOLIO_ERR_STORE, "store '%s' is unusable after a failed remap", s->path);
    for (int tries = 0;; tries++) {
        int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
        if (rc == MDB_MAP_RESIZED && tries < 3 && atomic_load(&s->open_readers) == 0) {
            /* another process grew the map: adopt its size */
            FOLIO_TRY(store_map_resize(s, 0));
            continue;
        }
        FOLIO_CHECK_MDB(rc, "begin read txn on store '%s'", s->path);
        return FOLIO_OK;
    }
}

static folio_status_t get_counters(folio_store_t *s, MDB_txn *txn, folio_store_counters_t *c)
{
    MDB_val k = {8, "counters"}, v;
    int rc = mdb_get(txn, s->dbi[DB_META], &k, &v);
    FOLIO_CHECK_MDB(rc, "store '%s': reading counters", s->path);
    FOLIO_CHECK_GENERIC(v.mv_size == sizeof *c, FOLIO_ERR_CORRUPT,
                        "store '%s': counters record has %zu bytes", s->path, v.mv_size);
    memcpy(c, v.mv_data, sizeof *c);
    return FOLIO_OK;
}

/* Inside a write-txn body: on an LMDB error remember MAP_FULL (so the
 * driver grows and retries, without logging) or log, and return. */
#define BODY_MDB(s, rc_expr, fmt, ...)                                          \
    do {                                                                        \
        int body_rc_ = (rc_expr);                                               \
        if (body_rc_ == MDB_MAP_FULL) { (s)->map_full = true; return FOLIO_ERR_MAP_FULL; } \
        FOLIO_CHECK_GENERIC(body_rc_ == MDB_SUCCESS, folio_store_mdb_status(body_rc_), \
                            "LMDB: " fmt ": %s", ##__VA_ARGS__, mdb_strerror(body_rc_)); \
    } while (0)

typedef folio_status_t (*txn_body_fn)(folio_store_t *s, MDB_txn *txn, void *ctx);

/* The map size after growing cur by doubling (at most STORE_GROW_STEP_MAX
 * at a time) until it holds at least want bytes; 0 past STORE_MAX_MAP. */
static size_t grown_size(size_t cur, size_t want)
{
    size_t next = cur;
    do {
        size_t step = next < STORE_GROW_STEP_MAX ? next : STORE_GROW_STEP_MAX;
        if (next + step > STORE_MAX_MAP || next + step < next) return 0;
        next += step;
    } while (next < want);
    return next;
}

static folio_status_t grow_map(folio_store_t *s)
{
    /* readers of dead processes pin old pages: free them while we are here */
    int dead = 0;
    mdb_reader_check(s->env, &dead);
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    size_t cur = info.me_mapsize, next = grown_size(cur, cur + 1);
    if (atomic_load(&s->open_readers) > 0) {
        folio_log(FOLIO_LOG_ERROR, "store '%s': LMDB map (%zu bytes) is full and cannot grow while a "
                  "reader of this process is open", s->path, cur);
        return FOLIO_ERR_MAP_FULL;
    }
    if (!next) {
        folio_log(FOLIO_LOG_ERROR, "store '%s': LMDB map full at %zu bytes (limit reached)", s->path, cur);
        return FOLIO_ERR_MAP_FULL;
    }
    FOLIO_TRY(store_map_resize(s, next));
    s->map_growths++;
    folio_log(FOLIO_LOG_DEBUG, "store '%s': map grown to %zu bytes", s->path, next);
    return FOLIO_OK;
}

/* Grows the map before a write txn that may add up to room bytes of pages
 * past the last one in use.  A txn that fills the map is aborted and run
 * again whole after each doubling: a 512-document round of ~90 MB on a new
 * store (16 MiB map) ran four times.  Pages on LMDB's free list are not
 * counted (they only make the room larger), and a short estimate falls back
 * to run_write_txn's growth.  Nothing is done while a reader of this
 * process is open (the map cannot move then; the txn may still fit). */
static folio_status_t ensure_room(folio_store_t *s, size_t room)
{
    if (room == 0 || atomic_load(&s->open_readers) > 0) return FOLIO_OK;
    MDB_envinfo ei;
    MDB_stat es;
    mdb_env_info(s->env, &ei);
    mdb_env_stat(s->env, &es);
    const size_t used = (size_t)(ei.me_last_pgno + 1) * es.ms_psize;
    if (ei.me_mapsize >= used + room) return FOLIO_OK;
    size_t next = grown_size(ei.me_mapsize, used + room);
    if (!next) return FOLIO_OK; /* past the limit: the txn says so if it does not fit */
    FOLIO_TRY(store_map_resize(s, next));
    s->map_growths++;
    folio_log(FOLIO_LOG_DEBUG, "store '%s': map grown to %zu bytes ahead of a txn of ~%zu bytes", s->path, next,
              room);
    return FOLIO_OK;
}

/* Runs body in one write txn; on MDB_MAP_FULL (in the body or at commit)
 * aborts, grows the map and runs the whole body again.  need: an estimate
 * of the bytes of pages the body adds (0: unknown): the map is grown first
 * to hold it with a quarter more and up to 1 MiB (branch pages, copies of
 * the pages the txn changes). */
static folio_status_t run_write_txn(folio_store_t *s, txn_body_fn body, void *ctx, size_t need)
{
    FOLIO_CHECK_GENERIC(!s->readonly, FOLIO_ERR_ARG, "store '%s' is open read-only", s->path);
    FOLIO_CHECK_GENERIC(!s->map_lost, FOLIO_ERR_STORE, "store '%s' is unusable after a failed remap", s->path);
    const size_t slack = need / 4 + (need < ((size_t)1 << 20) ? need : ((size_t)1 << 20));
    FOLIO_TRY(ensure_room(s, need ? need + slack : 0));
    for (int resized = 0;;) {
        MDB_txn *txn = NULL;
        int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
        if (rc == MDB_MAP_RESIZED && resized++ < 3 && atomic_load(&s->open_readers) == 0) {
            FOLIO_TRY(store_map_resize(s, 0)); /* another process grew the store */
            continue;
        }
        FOLIO_CHECK_MDB(rc, "begin write txn on store '%s'", s->path);
        s->map_full = false;
        folio_status_t st = body(s, txn, ctx);
        if (st != FOLIO_OK) {
            mdb_txn_abort(txn);
            if (st == FOLIO_ERR_MAP_FULL && s->map_full) {
                FOLIO_TRY(grow_map(s));
                s->txn_reruns++;
                continue;
            }
            return st;
        }
        double tc = folio_now();
        rc = mdb_txn_commit(txn); /* frees txn in every case */
        s->t_txn_commit += folio_now() - tc;
        if (rc == MDB_MAP_FULL) {
            FOLIO_TRY(grow_map(s));
            s->txn_reruns++;
            continue;
        }
        FOLIO_CHECK_MDB(rc, "commit on store '%s'", s->path);
        return FOLIO_OK;
    }
}

/* ------------------------------------------------------------ planning */

folio_status_t folio_store_classify(folio_store_t *s, const char *id, const uint8_t hash[16],
                                    folio_doc_state_t *state, char *other_id, size_t other_cap)
{
    FOLIO_TRY(check_id(id, "classify"));
    if (other_id && other_cap) other_id[0] = '\0';
    MDB_txn *txn;
    FOLIO_TRY(begin_read(s, &txn));
    folio_status_t st = FOLIO_OK;
    MDB_val k = {strlen(id), (void *)id}, v;
    uint32_t id_num = 0, hash_num = 0;
    int rc = mdb_get(txn, s->dbi[DB_DONE], &k, &v);
    if (rc == MDB_SUCCESS && v.mv_size == 4) memcpy(&id_num, v.mv_data, 4);
    else if (rc != MDB_NOTFOUND) goto fail;
    MDB_val hk = {16, (void *)hash};
    rc = mdb_get(txn, s->dbi[DB_HASHES], &hk, &v);
    if (rc == MDB_SUCCESS && v.mv_size == 4) memcpy(&hash_num, v.mv_data, 4);
    else if (rc != MDB_NOTFOUND) goto fail;

    if (id_num && id_num == hash_num) {
        *state = FOLIO_DOC_SAME;
    } else if (hash_num) {
        *state = FOLIO_DOC_DUPLICATE;
        uint32_t num = hash_num;
        MDB_val dk = {4, &num};
        rc = mdb_get(txn, s->dbi[DB_DOCS], &dk, &v);
        if (rc) goto fail;
        folio_store_docrec_t rec;
        if (v.mv_size < sizeof rec) {
            rc = MDB_CORRUPTED;
            goto fail;
        }
        memcpy(&rec, v.mv_data, sizeof rec);
        if (other_id && other_cap) {
            size_t n = rec.id_len < other_cap - 1 ? rec.id_len : other_cap - 1;
            memcpy(other_id, (const char *)v.mv_data + sizeof rec, n);
            other_id[n] = '\0';
        }
    } else if (id_num) {
        *state = FOLIO_DOC_REPLACE;
    } else {
        *state = FOLIO_DOC_NEW;
    }
    mdb_txn_abort(txn);
    return st;
fail:
    folio_log(FOLIO_LOG_ERROR, "store '%s': classify '%s': %s", s->path, id, mdb_strerror(rc));
    mdb_txn_abort(txn);
    return folio_store_mdb_status(rc);
}

folio_status_t folio_store_doc_terms(folio_store_t *s, const char *id, uint64_t **terms,
                                     uint32_t **tfs, uint32_t *n)
{
    *terms = NULL;
    *tfs = NULL;
    *n = 0;
    FOLIO_TRY(check_id(id, "doc_terms"));
    MDB_txn *txn;
    FOLIO_TRY(begin_read(s, &txn));
    MDB_val k = {strlen(id), (void *)id}, v;
    folio_status_t st = FOLIO_OK;
    int rc = mdb_get(txn, s->dbi[DB_DONE], &k, &v);
    if (rc == MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return FOLIO_ERR_NOT_FOUND;
    }
    uint32_t num = 0;
    if (rc == MDB_SUCCESS) {
        memcpy(&num, v.mv_data, 4);
        MDB_val tk = {4, &num};
        rc = mdb_get(txn, s->dbi[DB_TERMS], &tk, &v);
    }
    if (rc) {
        folio_log(FOLIO_LOG_ERROR, "store '%s': terms of '%s': %s", s->path, id, mdb_strerror(rc));
        mdb_txn_abort(txn);
        return rc == MDB_NOTFOUND ? FOLIO_ERR_CORRUPT : folio_store_mdb_status(rc);
    }
    if (v.mv_size % 12) {
        folio_log(FOLIO_LOG_ERROR, "store '%s': terms record of '%s' has %zu bytes", s->path, id, v.mv_size);
        mdb_txn_abort(txn);
        return FOLIO_ERR_CORRUPT;
    }
    uint32_t m = (uint32_t)(v.mv_size / 12);
    if (m) {
        *terms = malloc((size_t)m * 8);
        *tfs = malloc((size_t)m * 4);
        if (!*terms || !*tfs) {
            free(*terms);
            free(*tfs);
            *terms = NULL;
            *tfs = NULL;
            st = FOLIO_ERR_NOMEM;
        } else {
            memcpy(*terms, v.mv_data, (size_t)m * 8);
            memcpy(*tfs, (const char *)v.mv_data + (size_t)m * 8, (size_t)m * 4);
            *n = m;
        }
    }
    mdb_txn_abort(txn);
    return st;
}

folio_status_t folio_store_df_lookup(folio_store_t *s, const uint64_t *terms, uint32_t n, uint32_t *df)
{
    if (n == 0) return FOLIO_OK;
    MDB_txn *txn;
    FOLIO_TRY(begin_read(s, &txn));
    for (uint32_t i = 0; i < n; i++) {
        uint64_t t = terms[i];
        MDB_val k = {8, &t}, v;
        int rc = mdb_get(txn, s->dbi[DB_DF], &k, &v);
        if (rc == MDB_NOTFOUND) {
            df[i] = 0;
        } else if (rc == MDB_SUCCESS && v.mv_size == 4) {
            memcpy(&df[i], v.mv_data, 4);
        } else {
            folio_log(FOLIO_LOG_ERROR, "store '%s': df lookup: %s", s->path,
                      rc ? mdb_strerror(rc) : "malformed df record");
            mdb_txn_abort(txn);
            return rc ? folio_store_mdb_status(rc) : FOLIO_ERR_CORRUPT;
        }
    }
    mdb_txn_abort(txn);
    return FOLIO_OK;
}

/* A reader maps more than the store (see open), so the map size the
 * writers recorded is read from LMDB's two meta pages (0.9 layout: after
 * the 16-byte page header, magic u32, version u32, address ptr, mapsize
 * size_t, two 48-byte MDB_db, last_pg, txnid; the newer txnid wins).
 * Falls back to max(file length, used) if the layout is not recognized. */
static uint64_t recorded_map_size(const char *path, unsigned psize, uint64_t used)
{
    char datafile[4096];
    snprintf(datafile, sizeof datafile, "%s/data.mdb", path);
    uint64_t best = 0, best_txn = 0;
    FILE *f = fopen(datafile, "rb");
    if (f) {
        for (int m = 0; m < 2; m++) {
            unsigned char pg[160];
            if (fseek(f, (long)m * (long)psize, SEEK_SET) || fread(pg, 1, sizeof pg, f) != sizeof pg) break;
            uint32_t magic;
            uint64_t mapsize, txnid;
            memcpy(&magic, pg + 16, 4);
            memcpy(&mapsize, pg + 32, 8);
            memcpy(&txnid, pg + 144, 8);
            if (magic != 0xBEEFC0DEu) continue;
            if (best == 0 || txnid > best_txn) {
                best = mapsize;
                best_txn = txnid;
            }
        }
        if (best == 0) {
            struct stat sb;
            if (fstat(fileno(f), &sb) == 0) best = (uint64_t)sb.st_size;
        }
        fclose(f);
    }
    return best > used ? best : used;
}

folio_status_t folio_store_info(folio_store_t *s, folio_store_info_t *info)
{
    memset(info, 0, sizeof *info);
    MDB_txn *txn;
    FOLIO_TRY(begin_read(s, &txn));
    folio_store_counters_t c;
    folio_status_t st = get_counters(s, txn, &c);
    MDB_envinfo ei;
    MDB_stat es;
    mdb_env_info(s->env, &ei);
    mdb_env_stat(s->env, &es);
    mdb_txn_abort(txn);
    FOLIO_TRY(st);
    info->n_docs = c.n_docs;
    info->n_duplicates = c.n_duplicates;
    info->n_tokens = c.n_tokens;
    info->n_sents = c.n_sents;
    info->n_sections = c.n_sections;
    info->n_bytes = c.n_bytes;
    info->n_terms = c.n_terms;
    info->n_postings = c.n_postings;
    info->n_summaries = c.n_summaries;
    info->avg_doc_tokens = c.n_docs ? (double)c.n_tokens / (double)c.n_docs : 0.0;
    info->map_bytes = ei.me_mapsize;
    info->page_bytes = es.ms_psize;
    info->used_bytes = (uint64_t)(ei.me_last_pgno + 1) * es.ms_psize;
    if (s->readonly) info->map_bytes = recorded_map_size(s->path, es.ms_psize, info->used_bytes);
    info->map_growths = s->map_growths;
    info->txn_reruns = s->txn_reruns;
    info->commit_prepare_seconds = s->t_prepare;
    info->commit_values_seconds = s->t_values;
    info->commit_postings_seconds = s->t_postings;
    info->commit_txn_seconds = s->t_txn_commit;
    return FOLIO_OK;
}

/* ------------------------------------------------------------ layout */

bool store_layout_valid(size_t len, uint32_t n_tokens, const folio_sentence_t *sents,
                        uint32_t n_sents, const folio_section_t *sections, uint32_t n_sections,
                        char *why, size_t whylen)
{
#define BAD(...) do { snprintf(why, whylen, __VA_ARGS__); return false; } while (0)
    if (n_sents && !sents) BAD("%u sentences but no sentence array", n_sents);
    if (n_sections && !sections) BAD("%u sections but no section array", n_sections);
    if (n_sents && !n_sections) BAD("%u sentences but no section", n_sents);
    uint32_t prev_end = 0, prev_tok = 0;
    for (uint32_t i = 0; i < n_sents; i++) {
        const folio_sentence_t *q = &sents[i];
        if (q->start > q->end || q->end > len)
            BAD("sentence %u spans bytes [%u,%u) outside the text of %zu bytes", i, q->start, q->end, len);
        if (q->start < prev_end)
            BAD("sentence %u starts at byte %u before the end %u of sentence %u", i, q->start, prev_end, i - 1);
        if (q->tok_begin > q->tok_end || q->tok_end > n_tokens)
            BAD("sentence %u has tokens [%u,%u) outside %u tokens", i, q->tok_begin, q->tok_end, n_tokens);
        if (q->tok_begin < prev_tok)
            BAD("sentence %u token range starts at %u before the end %u of sentence %u", i,
                q->tok_begin, prev_tok, i - 1);
        if (q->section >= n_sections)
            BAD("sentence %u names section %u of %u", i, q->section, n_sections);
        prev_end = q->end;
        prev_tok = q->tok_end;
    }
    uint32_t next = 0;
    for (uint32_t j = 0; j < n_sections; j++) {
        const folio_section_t *c = &sections[j];
        if (c->start > c->end || c->end > len)
            BAD("section %u spans bytes [%u,%u) outside the text of %zu bytes", j, c->start, c->end, len);
        if (c->title_start > c->title_end || c->title_end > len)
            BAD("section %u title spans bytes [%u,%u) outside the text", j, c->title_start, c->title_end);
        if (c->sent_begin != next || c->sent_end < c->sent_begin || c->sent_end > n_sents)
            BAD("section %u covers sentences [%u,%u): sections must partition the %u sentences in order "
                "(expected to start at %u)", j, c->sent_begin, c->sent_end, n_sents, next);
        for (uint32_t i = c->sent_begin; i < c->sent_end; i++)
            if (sents[i].section != j) BAD("sentence %u is in section %u's range but names section %u", i, j,
                                           sents[i].section);
        next = c->sent_end;
    }
    if (next != n_sents) BAD("sections cover %u of %u sentences", next, n_sents);
    return true;
#undef BAD
}

/* ------------------------------------------------------------ removal */

static folio_status_t put_counters(folio_store_t *s, MDB_txn *txn, const folio_store_counters_t *c)
{
    MDB_val k = {8, "counters"}, v = {sizeof *c, (void *)c};
    BODY_MDB(s, mdb_put(txn, s->dbi[DB_META], &k, &v, 0), "writing counters");
    return FOLIO_OK;
}

/* Adds delta to the doc count of pattern spec (deleting the key at 0). */
static folio_status_t pattern_count_add(folio_store_t *s, MDB_txn *txn, const char *spec, size_t n, int delta)
{
    if (n == 0) return FOLIO_OK;
    char key[512];
    if (n > sizeof key - 9) n = sizeof key - 9; /* LMDB keys max 511 bytes */
    memcpy(key, "pattern:", 8);
    memcpy(key + 8, spec, n);
    MDB_val k = {8 + n, key}, v;
    uint64_t cnt = 0;
    int rc = mdb_get(txn, s->dbi[DB_META], &k, &v);
    if (rc == MDB_SUCCESS && v.mv_size == 8) memcpy(&cnt, v.mv_data, 8);
    else if (rc != MDB_NOTFOUND) BODY_MDB(s, rc ? rc : MDB_CORRUPTED, "pattern count");
    if (delta < 0 && cnt < (uint64_t)-delta) cnt = 0;
    else cnt = (uint64_t)((int64_t)cnt + delta);
    if (cnt == 0) {
        rc = mdb_del(txn, s->dbi[DB_META], &k, NULL);
        if (rc != MDB_NOTFOUND) BODY_MDB(s, rc, "pattern count");
    } else {
        v.mv_size = 8;
        v.mv_data = &cnt;
        BODY_MDB(s, mdb_put(txn, s->dbi[DB_META], &k, &v, 0), "pattern count");
    }
    return FOLIO_OK;
}

static folio_status_t del_num(folio_store_t *s, MDB_txn *txn, int db, uint32_t num)
{
    MDB_val k = {4, &num};
    int rc = mdb_del(txn, s->dbi[db], &k, NULL);
    if (rc == MDB_NOTFOUND) return FOLIO_OK;
    BODY_MDB(s, rc, "deleting %s of doc %u", folio_store_db_names[db], num);
    return FOLIO_OK;
}

/* Drops duplicate records whose dup_of is id, unless their hash equals
 * keep_hash (they still describe the stored content). */
static folio_status_t drop_dups_of(folio_store_t *s, MDB_txn *txn, const char *id, size_t id_len,
                                   const uint8_t *keep_hash, folio_store_counters_t *c)
{
    MDB_cursor *cur;
    BODY_MDB(s, mdb_cursor_open(txn, s->dbi[DB_DUPS], &cur), "cursor on dups");
    MDB_val k, v;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == MDB_SUCCESS) {
        folio_store_duprec_t d;
        bool drop = false;
        if (v.mv_size >= sizeof d) {
            memcpy(&d, v.mv_data, sizeof d);
            drop = d.dup_of_len == id_len && sizeof d + id_len <= v.mv_size &&
                   memcmp((const char *)v.mv_data + sizeof d, id, id_len) == 0 &&
                   !(keep_hash && memcmp(d.hash, keep_hash, 16) == 0);
        }
        if (drop) {
            rc = mdb_cursor_del(cur, 0);
            if (rc) break;
            if (c->n_duplicates) c->n_duplicates--;
        }
        /* after mdb_cursor_del, MDB_NEXT yields the item that followed */
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) BODY_MDB(s, rc, "scanning dups of '%s'", id);
    return FOLIO_OK;
}

/* Removes every record of committed doc num (not its done-marker unless
 * drop_done), adjusting postings, df and counters. */
static folio_status_t remove_doc(folio_store_t *s, MDB_txn *txn, uint32_t num, bool drop_done,
                                 const uint8_t *keep_hash, folio_store_counters_t *c)
{
    MDB_val k = {4, &num}, v;
    int rc = mdb_get(txn, s->dbi[DB_DOCS], &k, &v);
    BODY_MDB(s, rc, "record of doc %u", num);
    folio_store_docrec_t rec;
    FOLIO_CHECK_GENERIC(v.mv_size >= sizeof rec, FOLIO_ERR_CORRUPT, "store '%s': doc %u record too short",
                        s->path, num);
    memcpy(&rec, v.mv_data, sizeof rec);
    FOLIO_CHECK_GENERIC(v.mv_size >= sizeof rec + rec.id_len + rec.title_len + rec.pattern_len + 3,
                        FOLIO_ERR_CORRUPT, "store '%s': doc %u record truncated", s->path, num);
    /* copy what we need: values are invalid after the next write */
    char id[FOLIO_STORE_MAX_ID + 1], pattern[512];
    size_t idn = rec.id_len <= FOLIO_STORE_MAX_ID ? rec.id_len : FOLIO_STORE_MAX_ID;
    memcpy(id, (const char *)v.mv_data + sizeof rec, idn);
    id[idn] = '\0';
    size_t pn = rec.pattern_len < sizeof pattern ? rec.pattern_len : sizeof pattern - 1;
    memcpy(pattern, (const char *)v.mv_data + sizeof rec + rec.id_len + 1 + rec.title_len + 1, pn);
    pattern[pn] = '\0';

    /* postings and df of its terms */
    MDB_val tk = {4, &num}, tv;
    rc = mdb_get(txn, s->dbi[DB_TERMS], &tk, &tv);
    if (rc == MDB_SUCCESS) {
        FOLIO_CHECK_GENERIC(tv.mv_size % 12 == 0, FOLIO_ERR_CORRUPT, "store '%s': doc %u terms malformed",
                            s->path, num);
        size_t m = tv.mv_size / 12;
        void *copy = malloc(tv.mv_size ? tv.mv_size : 1);
        FOLIO_CHECK_ALLOC(copy);
        memcpy(copy, tv.mv_data, tv.mv_size);
        const uint64_t *terms = copy;
        const uint32_t *tfs = (const uint32_t *)((const char *)copy + m * 8);
        folio_status_t st = FOLIO_OK;
        for (size_t i = 0; i < m && st == FOLIO_OK; i++) {
            uint64_t t = terms[i], p = store_posting_pack(num, tfs[i]);
            MDB_val pk = {8, &t}, pv = {8, &p};
            rc = mdb_del(txn, s->dbi[DB_POSTINGS], &pk, &pv);
            if (rc == MDB_SUCCESS) {
                if (c->n_postings) c->n_postings--;
            } else if (rc != MDB_NOTFOUND) {
                st = rc == MDB_MAP_FULL ? (s->map_full = true, FOLIO_ERR_MAP_FULL) : folio_store_mdb_status(rc);
                if (rc != MDB_MAP_FULL) folio_log(FOLIO_LOG_ERROR, "store '%s': deleting posting: %s", s->path, mdb_strerror(rc));
                break;
            }
            MDB_val dk = {8, &t}, dv;
            uint32_t df = 0;
            rc = mdb_get(txn, s->dbi[DB_DF], &dk, &dv);
            if (rc == MDB_SUCCESS && dv.mv_size == 4) memcpy(&df, dv.mv_data, 4);
            if (df <= 1) {
                rc = mdb_del(txn, s->dbi[DB_DF], &dk, NULL);
                if (rc == MDB_SUCCESS && c->n_terms) c->n_terms--;
            } else {
                df--;
                dv.mv_size = 4;
                dv.mv_data = &df;
                rc = mdb_put(txn, s->dbi[DB_DF], &dk, &dv, 0);
            }
            if (rc && rc != MDB_NOTFOUND) {
                st = rc == MDB_MAP_FULL ? (s->map_full = true, FOLIO_ERR_MAP_FULL) : folio_store_mdb_status(rc);
                if (rc != MDB_MAP_FULL) folio_log(FOLIO_LOG_ERROR, "store '%s': updating df: %s", s->path, mdb_strerror(rc));
            }
        }
        free(copy);
        FOLIO_TRY(st);
    } else if (rc != MDB_NOTFOUND) {
        BODY_MDB(s, rc, "terms of doc %u", num);
    }

    /* hash entry (only if it points at this doc) */
    MDB_val hk = {16, rec.hash}, hv;
    rc = mdb_get(txn, s->dbi[DB_HASHES], &hk, &hv);
    if (rc == MDB_SUCCESS && hv.mv_size == 4 && memcmp(hv.mv_data, &num, 4) == 0)
        BODY_MDB(s, mdb_del(txn, s->dbi[DB_HASHES], &hk, NULL), "hash of doc %u", num);

    MDB_val sk = {4, &num}, sv;
    if (mdb_get(txn, s->dbi[DB_SUMMARIES], &sk, &sv) == MDB_SUCCESS && c->n_summaries) c->n_summaries--;
    static const int dbs[] = {DB_TEXT, DB_SENTS, DB_SECTIONS, DB_TERMS, DB_SENTVEC, DB_BLOCKVEC,
                              DB_SECVEC, DB_DOCVEC, DB_SALIENCE, DB_SUMMARIES, DB_DOCS};
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) FOLIO_TRY(del_num(s, txn, dbs[i], num));
    FOLIO_TRY(pattern_count_add(s, txn, pattern, pn, -1));
    if (drop_done) {
        MDB_val ik = {idn, id};
        rc = mdb_del(txn, s->dbi[DB_DONE], &ik, NULL);
        if (rc != MDB_NOTFOUND) BODY_MDB(s, rc, "done-marker of '%s'", id);
    }
    FOLIO_TRY(drop_dups_of(s, txn, id, idn, keep_hash, c));

    if (c->n_docs) c->n_docs--;
    c->n_tokens -= c->n_tokens >= rec.n_tokens ? rec.n_tokens : c->n_tokens;
    c->n_sents -= c->n_sents >= rec.n_sents ? rec.n_sents : c->n_sents;
    c->n_sections -= c->n_sections >= rec.n_sections ? rec.n_sections : c->n_sections;
    c->n_bytes -= c->n_bytes >= rec.bytes ? rec.bytes : c->n_bytes;
    return FOLIO_OK;
}

/* ------------------------------------------------------------ commit doc */

typedef struct {
    const folio_doc_t *doc;
    const folio_doc_results_t *res;
    const char *pattern;
    size_t pattern_len;
    uint64_t *terms;   /* (m) distinct stem hashes, increasing */
    uint32_t *tfs;     /* (m) */
    uint32_t m;
    uint32_t n_blocks, d, flags;
    struct pending *pend; /* batch: postings/df applied at the end, sorted */
} commit_ctx_t;

/* Postings of a batch not yet written: (term, packed posting) pairs. */
typedef struct pending {
    uint64_t *key, *val;
    size_t n, cap;
} pending_t;

static folio_status_t pending_add(pending_t *p, const uint64_t *terms, const uint32_t *tfs, uint32_t m,
                                  uint32_t num)
{
    if (p->n + m > p->cap) {
        size_t cap = p->cap ? p->cap : 4096;
        while (cap < p->n + m) cap *= 2;
        uint64_t *k = realloc(p->key, cap * 8);
        FOLIO_CHECK_ALLOC(k);
        p->key = k;
        uint64_t *v = realloc(p->val, cap * 8);
        FOLIO_CHECK_ALLOC(v);
        p->val = v;
        p->cap = cap;
    }
    for (uint32_t i = 0; i < m; i++) {
        p->key[p->n] = terms[i];
        p->val[p->n++] = store_posting_pack(num, tfs[i]);
    }
    return FOLIO_OK;
}

/* LSD radix sort of (key, val) pairs by key, 8 bits a pass, stable. */
static folio_status_t sort_pairs(uint64_t *key, uint64_t *val, size_t n)
{
    if (n < 2) return FOLIO_OK;
    uint64_t *tk = malloc(n * 8), *tv = malloc(n * 8);
    if (!tk || !tv) {
        free(tk);
        free(tv);
        return FOLIO_ERR_NOMEM;
    }
    uint64_t *sk = key, *sv = val, *dk = tk, *dv = tv;
    for (int shift = 0; shift < 64; shift += 8) {
        size_t cnt[256] = {0};
        for (size_t i = 0; i < n; i++) cnt[(sk[i] >> shift) & 255]++;
        if (cnt[(sk[0] >> shift) & 255] == n) continue;
        size_t sum = 0;
        for (int b = 0; b < 256; b++) {
            size_t c = cnt[b];
            cnt[b] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) {
            size_t j = cnt[(sk[i] >> shift) & 255]++;
            dk[j] = sk[i];
            dv[j] = sv[i];
        }
        uint64_t *t = sk; sk = dk; dk = t;
        t = sv; sv = dv; dv = t;
    }
    if (sk != key) {
        memcpy(key, sk, n * 8);
        memcpy(val, sv, n * 8);
    }
    free(tk);
    free(tv);
    return FOLIO_OK;
}

/* Writes the pending postings in term order (neighbouring puts touch the
 * same pages) and adds each distinct term's count to df once. */
static folio_status_t pending_flush(folio_store_t *s, MDB_txn *txn, pending_t *p)
{
    if (p->n == 0) return FOLIO_OK;
    FOLIO_TRY(sort_pairs(p->key, p->val, p->n));
    folio_store_counters_t c;
    FOLIO_TRY(get_counters(s, txn, &c));
    MDB_cursor *cur, *dcur;
    BODY_MDB(s, mdb_cursor_open(txn, s->dbi[DB_POSTINGS], &cur), "cursor on postings");
    int orc = mdb_cursor_open(txn, s->dbi[DB_DF], &dcur);
    if (orc) mdb_cursor_close(cur);
    BODY_MDB(s, orc, "cursor on df");
    folio_status_t st = FOLIO_OK;
    for (size_t i = 0; i < p->n && st == FOLIO_OK;) {
        size_t j = i;
        while (j < p->n && p->key[j] == p->key[i]) j++;
        {
            /* the term's postings of the whole batch in one put (the
             * database is DUPFIXED): one descent to the term instead of one
             * per posting, which was half of a round's commit */
            MDB_val k = {8, &p->key[i]}, v[2] = {{8, &p->val[i]}, {j - i, NULL}};
            int rc = mdb_cursor_put(cur, &k, v, MDB_MULTIPLE | MDB_NODUPDATA);
            if (rc == MDB_SUCCESS && v[1].mv_size != j - i) { /* LMDB says all or an error; check */
                folio_log(FOLIO_LOG_ERROR, "store '%s': writing postings: %zu of %zu written", s->path,
                          (size_t)v[1].mv_size, j - i);
                st = FOLIO_ERR_STORE;
                break;
            }
            if (rc) {
                if (rc == MDB_MAP_FULL) s->map_full = true;
                else folio_log(FOLIO_LOG_ERROR, "store '%s': writing postings: %s", s->path, mdb_strerror(rc));
                st = folio_store_mdb_status(rc);
                break;
            }
        }
        /* one descent: position on the term, then overwrite in place */
        MDB_val k = {8, &p->key[i]}, dv;
        uint32_t df = 0;
        int rc = mdb_cursor_get(dcur, &k, &dv, MDB_SET_KEY);
        bool found = rc == MDB_SUCCESS;
        if (found && dv.mv_size == 4) memcpy(&df, dv.mv_data, 4);
        else if (rc == MDB_NOTFOUND) c.n_terms++;
        else {
            folio_log(FOLIO_LOG_ERROR, "store '%s': reading df: %s", s->path, rc ? mdb_strerror(rc) : "malformed");
            st = rc ? folio_store_mdb_status(rc) : FOLIO_ERR_CORRUPT;
            break;
        }
        df += (uint32_t)(j - i);
        MDB_val nk = {8, &p->key[i]}, nv = {4, &df};
        rc = mdb_cursor_put(dcur, &nk, &nv, found ? MDB_CURRENT : 0);
        if (rc) {
            if (rc == MDB_MAP_FULL) s->map_full = true;
            else folio_log(FOLIO_LOG_ERROR, "store '%s': writing df: %s", s->path, mdb_strerror(rc));
            st = folio_store_mdb_status(rc);
        }
        i = j;
    }
    mdb_cursor_close(cur);
    mdb_cursor_close(dcur);
    FOLIO_TRY(st);
    p->n = 0;
    return put_counters(s, txn, &c);
}


static folio_status_t put_num(folio_store_t *s, MDB_txn *txn, int db, uint32_t num, const void *data,
                              size_t n)
{
    MDB_val k = {4, &num}, v = {n, (void *)data};
    BODY_MDB(s, mdb_put(txn, s->dbi[db], &k, &v, 0), "writing %s of doc %u (%zu bytes)",
             folio_store_db_names[db], num, n);
    return FOLIO_OK;
}

static folio_status_t commit_doc_body(folio_store_t *s, MDB_txn *txn, void *vctx)
{
    commit_ctx_t *x = vctx;
    const folio_doc_t *doc = x->doc;
    const folio_doc_results_t *res = x->res;
    size_t id_len = strlen(doc->id), title_len = doc->title ? strlen(doc->title) : 0;
    MDB_val ik = {id_len, doc->id}, v;
    uint32_t num = 0;
    int rc = mdb_get(txn, s->dbi[DB_DONE], &ik, &v);
    if (rc == MDB_SUCCESS) memcpy(&num, v.mv_data, 4);
    else if (rc != MDB_NOTFOUND) BODY_MDB(s, rc, "done-marker of '%s'", doc->id);
    /* a replace removes postings and df: earlier docs of the batch first */
    if (num && x->pend) FOLIO_TRY(pending_flush(s, txn, x->pend));
    folio_store_counters_t c;
    FOLIO_TRY(get_counters(s, txn, &c));

    MDB_val hk = {16, (void *)doc->hash};
    rc = mdb_get(txn, s->dbi[DB_HASHES], &hk, &v);
    if (rc == MDB_SUCCESS) {
        uint32_t other;
        memcpy(&other, v.mv_data, 4);
        if (other != num) {
            folio_log(FOLIO_LOG_ERROR, "store '%s': document '%s' (%s): its content is already stored "
                      "under another id (doc %u); record it as a duplicate", s->path, doc->id,
                      doc->origin ? doc->origin : "?", other);
            return FOLIO_ERR_CORRUPT;
        }
    } else if (rc != MDB_NOTFOUND) {
        BODY_MDB(s, rc, "hash lookup of '%s'", doc->id);
    }

    if (num) {
        FOLIO_TRY(remove_doc(s, txn, num, false, doc->hash, &c));
    } else {
        FOLIO_CHECK_GENERIC(c.next_docnum < UINT32_MAX, FOLIO_ERR_STORE,
                            "store '%s': out of document numbers", s->path);
        num = (uint32_t)c.next_docnum++;
    }
    /* an earlier duplicate record under this id is superseded */
    rc = mdb_del(txn, s->dbi[DB_DUPS], &ik, NULL);
    if (rc == MDB_SUCCESS) {
        if (c.n_duplicates) c.n_duplicates--;
    } else if (rc != MDB_NOTFOUND) {
        BODY_MDB(s, rc, "dup record of '%s'", doc->id);
    }

    /* document record */
    folio_store_docrec_t rec = {0};
    rec.docnum = num;
    rec.n_tokens = doc->n_tokens;
    rec.n_sents = doc->n_sents;
    rec.n_sections = doc->n_sections;
    rec.n_blocks = x->n_blocks;
    rec.n_terms = x->m;
    rec.d = x->d;
    rec.flags = x->flags;
    rec.bytes = doc->len;
    memcpy(rec.hash, doc->hash, 16);
    rec.id_len = (uint32_t)id_len;
    rec.title_len = (uint32_t)title_len;
    rec.pattern_len = (uint32_t)x->pattern_len;
    size_t reclen = sizeof rec + id_len + 1 + title_len + 1 + x->pattern_len + 1;
    MDB_val dk = {4, &num}, dv = {reclen, NULL};
    BODY_MDB(s, mdb_put(txn, s->dbi[DB_DOCS], &dk, &dv, MDB_RESERVE), "record of '%s'", doc->id);
    char *p = dv.mv_data;
    memcpy(p, &rec, sizeof rec);
    p += sizeof rec;
    memcpy(p, doc->id, id_len + 1);
    p += id_len + 1;
    if (title_len) memcpy(p, doc->title, title_len);
    p[title_len] = '\0';
    p += title_len + 1;
    if (x->pattern_len) memcpy(p, x->pattern, x->pattern_len);
    p[x->pattern_len] = '\0';

    /* text (+ NUL so readers get a C string) */
    MDB_val tk = {4, &num}, tv = {doc->len + 1, NULL};
    BODY_MDB(s, mdb_put(txn, s->dbi[DB_TEXT], &tk, &tv, MDB_RESERVE), "text of '%s' (%zu bytes)",
             doc->id, doc->len);
    if (doc->len) memcpy(tv.mv_data, doc->text, doc->len);
    ((char *)tv.mv_data)[doc->len] = '\0';

    FOLIO_TRY(put_num(s, txn, DB_SENTS, num, doc->sents, (size_t)doc->n_sents * sizeof(folio_sentence_t)));
    FOLIO_TRY(put_num(s, txn, DB_SECTIONS, num, doc->sections,
                      (size_t)doc->n_sections * sizeof(folio_section_t)));

    /* terms: (m) u64 then (m) u32 */
    MDB_val mk = {4, &num}, mv = {(size_t)x->m * 12, NULL};
    BODY_MDB(s, mdb_put(txn, s->dbi[DB_TERMS], &mk, &mv, MDB_RESERVE), "terms of '%s'", doc->id);
    if (x->m) {
        memcpy(mv.mv_data, x->terms, (size_t)x->m * 8);
        memcpy((char *)mv.mv_data + (size_t)x->m * 8, x->tfs, (size_t)x->m * 4);
    }

    if (res) {
        size_t d = x->d;
        if (x->flags & FOLIO_STORE_HAS_SENT_VECS)
            FOLIO_TRY(put_num(s, txn, DB_SENTVEC, num, res->sent_vecs, (size_t)doc->n_sents * d * 4));
        if (x->flags & FOLIO_STORE_HAS_BLOCK_VECS)
            FOLIO_TRY(put_num(s, txn, DB_BLOCKVEC, num, res->block_vecs, (size_t)x->n_blocks * d * 4));
        if (x->flags & FOLIO_STORE_HAS_SECTION_VECS)
            FOLIO_TRY(put_num(s, txn, DB_SECVEC, num, res->section_vecs, (size_t)doc->n_sections * d * 4));
        if (x->flags & FOLIO_STORE_HAS_DOC_VEC)
            FOLIO_TRY(put_num(s, txn, DB_DOCVEC, num, res->doc_vec, d * 4));
        if (x->flags & FOLIO_STORE_HAS_SALIENCE)
            FOLIO_TRY(put_num(s, txn, DB_SALIENCE, num, res->salience, (size_t)doc->n_sents * 4));
    }

    /* postings and df: a batch collects them for one sorted pass at its
     * end; a single doc writes them below, after the counters */
    if (x->pend) FOLIO_TRY(pending_add(x->pend, x->terms, x->tfs, x->m, num));
    c.n_postings += x->m;

    FOLIO_TRY(pattern_count_add(s, txn, x->pattern, x->pattern_len, +1));
    c.n_docs++;
    c.n_tokens += doc->n_tokens;
    c.n_sents += doc->n_sents;
    c.n_sections += doc->n_sections;
    c.n_bytes += doc->len;
    FOLIO_TRY(put_counters(s, txn, &c));
    if (!x->pend && x->m) { /* flush reads and updates the counters (n_terms) */
        pending_t one = {0};
        folio_status_t st = pending_add(&one, x->terms, x->tfs, x->m, num);
        if (st == FOLIO_OK) st = pending_flush(s, txn, &one);
        free(one.key);
        free(one.val);
        FOLIO_TRY(st);
    }

    MDB_val nv = {4, &num};
    BODY_MDB(s, mdb_put(txn, s->dbi[DB_HASHES], &hk, &nv, 0), "hash of '%s'", doc->id);
    /* the done-marker, last */
    BODY_MDB(s, mdb_put(txn, s->dbi[DB_DONE], &ik, &nv, 0), "done-marker of '%s'", doc->id);
    return FOLIO_OK;
}

folio_status_t store_count_terms(const uint64_t *hashes, size_t n, uint64_t **terms_out, uint32_t **tfs_out,
                                 uint32_t *m_out)
{
    *terms_out = NULL;
    *tfs_out = NULL;
    *m_out = 0;
    if (n == 0) return FOLIO_OK;
    /* distinct terms with their frequencies: count in a hash table (memory
     * grows with the distinct terms, not the tokens: a 100 MB document has
     * ~20M tokens but far fewer distinct stems), then sort those */
    size_t cap = 1024, used = 0;
    uint64_t *key = calloc(cap, 8);
    uint32_t *cnt = calloc(cap, 4);
    uint32_t zero_cnt = 0; /* the key 0 is counted apart (0 marks empty slots) */
    folio_status_t st = key && cnt ? FOLIO_OK : FOLIO_ERR_NOMEM;
    for (size_t i = 0; i < n && st == FOLIO_OK; i++) {
        uint64_t h = hashes[i];
        if (h == 0) {
            zero_cnt++;
            continue;
        }
        size_t mask = cap - 1, j = (size_t)((h * 0x9E3779B97F4A7C15ull) >> 20) & mask;
        while (cnt[j] && key[j] != h) j = (j + 1) & mask;
        if (cnt[j]++) continue;
        key[j] = h;
        if (++used * 2 <= cap) continue;
        /* grow x2 and rehash */
        size_t ncap = cap * 2;
        uint64_t *nk = calloc(ncap, 8);
        uint32_t *nc = calloc(ncap, 4);
        if (!nk || !nc) {
            free(nk);
            free(nc);
            st = FOLIO_ERR_NOMEM;
            break;
        }
        for (size_t k = 0; k < cap; k++) {
            if (!cnt[k]) continue;
            size_t q = (size_t)((key[k] * 0x9E3779B97F4A7C15ull) >> 20) & (ncap - 1);
            while (nc[q]) q = (q + 1) & (ncap - 1);
            nk[q] = key[k];
            nc[q] = cnt[k];
        }
        free(key);
        free(cnt);
        key = nk;
        cnt = nc;
        cap = ncap;
    }
    uint32_t m = (uint32_t)used + (zero_cnt > 0);
    uint64_t *sk = NULL, *sv = NULL;
    if (st == FOLIO_OK) {
        sk = malloc((size_t)m * 8 + 8);
        sv = malloc((size_t)m * 8 + 8);
        *terms_out = malloc((size_t)m * 8 + 8);
        *tfs_out = malloc((size_t)m * 4 + 4);
        if (!sk || !sv || !*terms_out || !*tfs_out) st = FOLIO_ERR_NOMEM;
    }
    if (st == FOLIO_OK) {
        size_t j = 0;
        if (zero_cnt) {
            sk[j] = 0;
            sv[j++] = zero_cnt;
        }
        for (size_t k = 0; k < cap; k++)
            if (cnt[k]) {
                sk[j] = key[k];
                sv[j++] = cnt[k];
            }
        st = sort_pairs(sk, sv, m);
    }
    if (st == FOLIO_OK) {
        for (uint32_t i = 0; i < m; i++) {
            (*terms_out)[i] = sk[i];
            (*tfs_out)[i] = (uint32_t)sv[i];
        }
        *m_out = m;
    }
    free(key);
    free(cnt);
    free(sk);
    free(sv);
    if (st != FOLIO_OK) {
        free(*terms_out);
        free(*tfs_out);
        *terms_out = NULL;
        *tfs_out = NULL;
    }
    return st;
}


/* Validates doc/res and fills x (distinct terms with frequencies).  x owns
 * terms/tfs afterwards: free_commit releases them. */
static folio_status_t prepare_commit(const folio_doc_t *doc, const folio_doc_results_t *res, commit_ctx_t *x)
{
    memset(x, 0, sizeof *x);
    FOLIO_CHECK_GENERIC(doc, FOLIO_ERR_ARG, "commit_doc: no document");
    FOLIO_TRY(check_id(doc->id, "commit"));
    const char *name = doc->id;
    FOLIO_CHECK_GENERIC(doc->text || doc->len == 0, FOLIO_ERR_ARG, "commit '%s': no text", name);
    FOLIO_CHECK_GENERIC(doc->len < UINT32_MAX, FOLIO_ERR_TOO_LARGE,
                        "commit '%s': %zu bytes exceed the 4 GiB limit", name, doc->len);
    FOLIO_CHECK_GENERIC(doc->n_tokens == 0 || doc->stem_hashes, FOLIO_ERR_ARG,
                        "commit '%s': document not analyzed (no stem hashes)", name);
    char why[256];
    FOLIO_CHECK_GENERIC(store_layout_valid(doc->len, doc->n_tokens, doc->sents, doc->n_sents, doc->sections,
                                           doc->n_sections, why, sizeof why),
                        FOLIO_ERR_ARG, "commit '%s': %s", name, why);
    x->doc = doc;
    x->res = res;
    x->pattern = res && res->pattern ? res->pattern : "";
    x->pattern_len = strlen(x->pattern);
    FOLIO_CHECK_GENERIC(x->pattern_len < 500, FOLIO_ERR_ARG, "commit '%s': pattern spec too long", name);
    if (res) {
        x->n_blocks = res->n_blocks;
        if (res->sent_vecs) x->flags |= FOLIO_STORE_HAS_SENT_VECS;
        if (res->block_vecs) x->flags |= FOLIO_STORE_HAS_BLOCK_VECS;
        if (res->section_vecs) x->flags |= FOLIO_STORE_HAS_SECTION_VECS;
        if (res->doc_vec) x->flags |= FOLIO_STORE_HAS_DOC_VEC;
        if (res->salience) x->flags |= FOLIO_STORE_HAS_SALIENCE;
        if (x->flags & ~(uint32_t)FOLIO_STORE_HAS_SALIENCE) {
            FOLIO_CHECK_GENERIC(res->d > 0, FOLIO_ERR_ARG, "commit '%s': vectors given with width d = 0", name);
            x->d = res->d;
        }
    }
    if (doc->n_tokens == 0) return FOLIO_OK;
    folio_status_t st = store_count_terms(doc->stem_hashes, doc->n_tokens, &x->terms, &x->tfs, &x->m);
    FOLIO_CHECK_GENERIC(st == FOLIO_OK, st, "commit '%s': out of memory counting terms", name);
    return FOLIO_OK;
}

/* Bytes of pages one value of n bytes (key of k bytes) may take: LMDB puts
 * a value larger than about half a page on overflow pages of its own; a
 * small one shares leaf pages, counted twice for pages left half full by
 * splits. */
static size_t value_room(size_t n, size_t k)
{
    const size_t psize = 4096; /* LMDB's page: the OS page on Linux */
    if (n + k + 8 > psize / 2) return (n + 16 + psize - 1) / psize * psize;
    return 2 * (n + k + 8);
}

/* Upper estimate of the pages a prepared document's commit adds (for
 * ensure_room): its values, its postings (dup entries of 8 bytes under an
 * 8-byte term) and df entries, with the same slack for split pages. */
static size_t commit_room(const commit_ctx_t *x)
{
    const folio_doc_t *doc = x->doc;
    size_t id = strlen(doc->id), r = 0;
    r += value_room(sizeof(folio_store_docrec_t) + id + (doc->title ? strlen(doc->title) : 0) + x->pattern_len + 3, 4);
    r += value_room(doc->len + 1, 4);
    r += value_room((size_t)doc->n_sents * sizeof(folio_sentence_t), 4);
    r += value_room((size_t)doc->n_sections * sizeof(folio_section_t), 4);
    r += value_room((size_t)x->m * 12, 4);
    if (x->res) {
        size_t d = x->d;
        if (x->flags & FOLIO_STORE_HAS_SENT_VECS) r += value_room((size_t)doc->n_sents * d * 4, 4);
        if (x->flags & FOLIO_STORE_HAS_BLOCK_VECS) r += value_room((size_t)x->n_blocks * d * 4, 4);
        if (x->flags & FOLIO_STORE_HAS_SECTION_VECS) r += value_room((size_t)doc->n_sections * d * 4, 4);
        if (x->flags & FOLIO_STORE_HAS_DOC_VEC) r += value_room(d * 4, 4);
        if (x->flags & FOLIO_STORE_HAS_SALIENCE) r += value_room((size_t)doc->n_sents * 4, 4);
    }
    r += value_room(4, 16) + value_room(4, id); /* hash, done-marker */
    r += (size_t)x->m * (2 * (8 + 8 + 8) + 2 * (8 + 4 + 8));
    return r;
}

static void free_commit(commit_ctx_t *x)
{
    free(x->terms);
    free(x->tfs);
    x->terms = NULL;
    x->tfs = NULL;
}

folio_status_t folio_store_commit_doc(folio_store_t *s, const folio_doc_t *doc, const folio_doc_results_t *res)
{
    FOLIO_CHECK_GENERIC(s, FOLIO_ERR_ARG, "commit_doc: no store");
    commit_ctx_t x;
    folio_status_t st = prepare_commit(doc, res, &x);
    if (st == FOLIO_OK) st = run_write_txn(s, commit_doc_body, &x, commit_room(&x));
    free_commit(&x);
    return st;
}

typedef struct {
    commit_ctx_t *x;
    uint32_t n;
    pending_t pend;
} batch_ctx_t;

static folio_status_t commit_batch_body(folio_store_t *s, MDB_txn *txn, void *vctx)
{
    batch_ctx_t *b = vctx;
    b->pend.n = 0; /* a retry after map growth starts over */
    double t0 = folio_now();
    for (uint32_t i = 0; i < b->n; i++) {
        b->x[i].pend = &b->pend;
        FOLIO_TRY(commit_doc_body(s, txn, &b->x[i]));
    }
    double t1 = folio_now();
    folio_status_t st = pending_flush(s, txn, &b->pend);
    s->t_values += t1 - t0;
    s->t_postings += folio_now() - t1;
    return st;
}

folio_status_t folio_store_commit_docs(folio_store_t *s, const folio_doc_t *const *docs,
                                       const folio_doc_results_t *const *res, uint32_t n)
{
    FOLIO_CHECK_GENERIC(s && (docs || n == 0), FOLIO_ERR_ARG, "commit_docs: no store or documents");
    if (n == 0) return FOLIO_OK;
    batch_ctx_t b = {calloc(n, sizeof(commit_ctx_t)), n, {0}};
    FOLIO_CHECK_ALLOC(b.x);
    /* Each document's distinct terms (a hash count and a sort) in parallel:
     * on the single writer they were a tenth of a round's commit.  The
     * first failing document (in order) decides, as one by one would. */
    folio_status_t *pst = malloc((size_t)n * sizeof *pst);
    if (!pst) {
        free(b.x);
        FOLIO_CHECK_ALLOC(NULL);
    }
    double tp = folio_now();
#pragma omp parallel for schedule(dynamic, 8) num_threads(STORE_PREPARE_THREADS) if (n >= 64)
    for (uint32_t i = 0; i < n; i++) pst[i] = prepare_commit(docs[i], res ? res[i] : NULL, &b.x[i]);
    s->t_prepare += folio_now() - tp;
    folio_status_t st = FOLIO_OK;
    for (uint32_t i = 0; i < n && st == FOLIO_OK; i++) st = pst[i];
    free(pst);
    if (st == FOLIO_OK) {
        size_t need = 0;
        for (uint32_t i = 0; i < n; i++) need += commit_room(&b.x[i]);
        st = run_write_txn(s, commit_batch_body, &b, need);
    }
    for (uint32_t i = 0; i < n; i++) free_commit(&b.x[i]); /* all prepared, failed ones empty */
    free(b.x);
    free(b.pend.key);
    free(b.pend.val);
    return st;
}

/* ------------------------------------------------------------ duplicates */

typedef struct {
    const char *id, *dup_of, *origin;
    const uint8_t *hash;
} dup_ctx_t;

static folio_status_t commit_dup_body(folio_store_t *s, MDB_txn *txn, void *vctx)
{
    dup_ctx_t *x = vctx;
    folio_store_counters_t c;
    FOLIO_TRY(get_counters(s, txn, &c));
    /* dup_of must be stored with this content */
    MDB_val ok = {strlen(x->dup_of), (void *)x->dup_of}, v;
    int rc = mdb_get(txn, s->dbi[DB_DONE], &ok, &v);
    uint32_t target = 0;
    if (rc == MDB_SUCCESS) memcpy(&target, v.mv_data, 4);
    else if (rc != MDB_NOTFOUND) BODY_MDB(s, rc, "done-marker of '%s'", x->dup_of);
    MDB_val hk = {16, (void *)x->hash};
    uint32_t hnum = 0;
    rc = mdb_get(txn, s->dbi[DB_HASHES], &hk, &v);
    if (rc == MDB_SUCCESS) memcpy(&hnum, v.mv_data, 4);
    else if (rc != MDB_NOTFOUND) BODY_MDB(s, rc, "hash lookup for '%s'", x->id);
    if (!target || target != hnum) {
        folio_log(FOLIO_LOG_ERROR, "store '%s': cannot record '%s' as a duplicate of '%s': %s", s->path,
                  x->id, x->dup_of, target ? "that document holds other content" : "that document is not stored");
        return FOLIO_ERR_NOT_FOUND;
    }
    /* the id itself was a committed doc: its new content is the duplicate */
    MDB_val ik = {strlen(x->id), (void *)x->id};
    rc = mdb_get(txn, s->dbi[DB_DONE], &ik, &v);
    if (rc == MDB_SUCCESS) {
        uint32_t num;
        memcpy(&num, v.mv_data, 4);
        FOLIO_CHECK_GENERIC(num != target, FOLIO_ERR_ARG, "store '%s': '%s' cannot be a duplicate of itself",
                            s->path, x->id);
        FOLIO_TRY(remove_doc(s, txn, num, true, NULL, &c));
    } else if (rc != MDB_NOTFOUND) {
        BODY_MDB(s, rc, "done-marker of '%s'", x->id);
    }
    rc = mdb_get(txn, s->dbi[DB_DUPS], &ik, &v);
    if (rc == MDB_NOTFOUND) c.n_duplicates++;
    else if (rc) BODY_MDB(s, rc, "dup record of '%s'", x->id);

    folio_store_duprec_t d = {0};
    memcpy(d.hash, x->hash, 16);
    const char *origin = x->origin ? x->origin : "";
    d.dup_of_len = (uint32_t)strlen(x->dup_of);
    d.origin_len = (uint32_t)strlen(origin);
    size_t n = sizeof d + d.dup_of_len + 1 + d.origin_len + 1;
    MDB_val dv = {n, NULL};
    BODY_MDB(s, mdb_put(txn, s->dbi[DB_DUPS], &ik, &dv, MDB_RESERVE), "dup record of '%s'", x->id);
    char *p = dv.mv_data;
    memcpy(p, &d, sizeof d);
    memcpy(p + sizeof d, x->dup_of, d.dup_of_len + 1);
    memcpy(p + sizeof d + d.dup_of_len + 1, origin, d.origin_len + 1);
    return put_counters(s, txn, &c);
}

folio_status_t folio_store_commit_duplicate(folio_store_t *s, const char *id, const uint8_t hash[16],
                                            const char *dup_of, const char *origin)
{
    FOLIO_TRY(check_id(id, "commit_duplicate"));
    FOLIO_TRY(check_id(dup_of, "commit_duplicate (dup_of)"));
    FOLIO_CHECK_GENERIC(!origin || strlen(origin) < (1u << 20), FOLIO_ERR_ARG, "commit_duplicate: origin too long");
    dup_ctx_t x = {id, dup_of, origin, hash};
    return run_write_txn(s, commit_dup_body, &x, 0);
}

/* ------------------------------------------------------------ summaries */

typedef struct {
    const char *id, *json;
    size_t len;
} sum_ctx_t;

static folio_status_t put_summary_body(folio_store_t *s, MDB_txn *txn, void *vctx)
{
    sum_ctx_t *x = vctx;
    MDB_val ik = {strlen(x->id), (void *)x->id}, v;
    int rc = mdb_get(txn, s->dbi[DB_DONE], &ik, &v);
    if (rc == MDB_NOTFOUND) {
        folio_log(FOLIO_LOG_ERROR, "store '%s': no document '%s' to store a summary for", s->path, x->id);
        return FOLIO_ERR_NOT_FOUND;
    }
    BODY_MDB(s, rc, "done-marker of '%s'", x->id);
    uint32_t num;
    memcpy(&num, v.mv_data, 4);
    folio_store_counters_t c;
    FOLIO_TRY(get_counters(s, txn, &c));
    MDB_val k = {4, &num};
    rc = mdb_get(txn, s->dbi[DB_SUMMARIES], &k, &v);
    if (rc == MDB_NOTFOUND) c.n_summaries++;
    else BODY_MDB(s, rc, "summary of '%s'", x->id);
    FOLIO_TRY(put_num(s, txn, DB_SUMMARIES, num, x->json, x->len));
    return put_counters(s, txn, &c);
}

folio_status_t folio_store_put_summary(folio_store_t *s, const char *id, const char *json, size_t len)
{
    FOLIO_TRY(check_id(id, "put_summary"));
    FOLIO_CHECK_GENERIC(json && len > 0, FOLIO_ERR_ARG, "put_summary '%s': empty summary", id);
    folio_json_t *j = NULL;
    char err[128];
    folio_status_t st = folio_json_parse(json, len, &j, err, sizeof err);
    folio_json_free(&j);
    FOLIO_CHECK_GENERIC(st == FOLIO_OK, FOLIO_ERR_PARSE, "put_summary '%s': summary is not JSON: %s", id, err);
    sum_ctx_t x = {id, json, len};
    return run_write_txn(s, put_summary_body, &x, 0);
}

/* ------------------------------------------------------------ results */

typedef struct {
    const char *id;
    const folio_doc_results_t *res;
    uint32_t flags;
    const char *pattern;
    size_t pattern_len;
} res_ctx_t;

static folio_status_t put_results_body(folio_store_t *s, MDB_txn *txn, void *vctx)
{
    res_ctx_t *x = vctx;
    const folio_doc_results_t *res = x->res;
    MDB_val ik = {strlen(x->id), (void *)x->id}, v;
    int rc = mdb_get(txn, s->dbi[DB_DONE], &ik, &v);
    if (rc == MDB_NOTFOUND) {
        folio_log(FOLIO_LOG_ERROR, "store '%s': no document '%s' to store results for", s->path, x->id);
        return FOLIO_ERR_NOT_FOUND;
    }
    BODY_MDB(s, rc, "done-marker of '%s'", x->id);
    uint32_t num;
    memcpy(&num, v.mv_data, 4);
    MDB_val dk = {4, &num}, dv;
    BODY_MDB(s, mdb_get(txn, s->dbi[DB_DOCS], &dk, &dv), "record of '%s'", x->id);
    folio_store_docrec_t rec;
    FOLIO_CHECK_GENERIC(dv.mv_size >= sizeof rec, FOLIO_ERR_CORRUPT, "store '%s': record of '%s' too short",
                        s->path, x->id);
    memcpy(&rec, dv.mv_data, sizeof rec);
    size_t head = sizeof rec + rec.id_len + 1 + rec.title_len + 1;
    FOLIO_CHECK_GENERIC(dv.mv_size == head + rec.pattern_len + 1, FOLIO_ERR_CORRUPT,
                        "store '%s': record of '%s' malformed", s->path, x->id);
    /* copy id and title out: the value is invalid after the next write */
    char *idtitle = malloc(head - sizeof rec);
    FOLIO_CHECK_ALLOC(idtitle);
    memcpy(idtitle, (const char *)dv.mv_data + sizeof rec, head - sizeof rec);
    char oldpat[512];
    size_t opn = rec.pattern_len < sizeof oldpat ? rec.pattern_len : sizeof oldpat - 1;
    memcpy(oldpat, (const char *)dv.mv_data + head, opn);
    oldpat[opn] = '\0';

    folio_status_t st = pattern_count_add(s, txn, oldpat, opn, -1);
    if (st == FOLIO_OK) st = pattern_count_add(s, txn, x->pattern, x->pattern_len, +1);
    rec.flags = x->flags;
    rec.d = x->flags & ~(uint32_t)FOLIO_STORE_HAS_SALIENCE ? res->d : 0;
    rec.n_blocks = res->n_blocks;
    rec.pattern_len = (uint32_t)x->pattern_len;
    MDB_val nv = {head + x->pattern_len + 1, NULL};
    if (st == FOLIO_OK) {
        rc = mdb_put(txn, s->dbi[DB_DOCS], &dk, &nv, MDB_RESERVE);
        if (rc == MDB_MAP_FULL) s->map_full = true;
        else if (rc) folio_log(FOLIO_LOG_ERROR, "store '%s': record of '%s': %s", s->path, x->id, mdb_strerror(rc));
        st = folio_store_mdb_status(rc);
    }
    if (st == FOLIO_OK) {
        char *p = nv.mv_data;
        memcpy(p, &rec, sizeof rec);
        memcpy(p + sizeof rec, idtitle, head - sizeof rec);
        if (x->pattern_len) memcpy(p + head, x->pattern, x->pattern_len);
        p[head + x->pattern_len] = '\0';
    }
    free(idtitle);
    FOLIO_TRY(st);

    size_t d = rec.d;
    const struct { int db; uint32_t flag; const float *data; size_t n; } arr[] = {
        {DB_SENTVEC, FOLIO_STORE_HAS_SENT_VECS, res->sent_vecs, (size_t)rec.n_sents * d},
        {DB_BLOCKVEC, FOLIO_STORE_HAS_BLOCK_VECS, res->block_vecs, (size_t)rec.n_blocks * d},
        {DB_SECVEC, FOLIO_STORE_HAS_SECTION_VECS, res->section_vecs, (size_t)rec.n_sections * d},
        {DB_DOCVEC, FOLIO_STORE_HAS_DOC_VEC, res->doc_vec, d},
        {DB_SALIENCE, FOLIO_STORE_HAS_SALIENCE, res->salience, rec.n_sents},
    };
    for (size_t i = 0; i < sizeof arr / sizeof arr[0]; i++) {
        if (x->flags & arr[i].flag) FOLIO_TRY(put_num(s, txn, arr[i].db, num, arr[i].data, arr[i].n * 4));
        else FOLIO_TRY(del_num(s, txn, arr[i].db, num));
    }
    return FOLIO_OK;
}

folio_status_t folio_store_put_results(folio_store_t *s, const char *id, const folio_doc_results_t *res)
{
    FOLIO_TRY(check_id(id, "put_results"));
    FOLIO_CHECK_GENERIC(res, FOLIO_ERR_ARG, "put_results '%s': no results", id);
    res_ctx_t x = {id, res, 0, res->pattern ? res->pattern : "", 0};
    x.pattern_len = strlen(x.pattern);
    FOLIO_CHECK_GENERIC(x.pattern_len < 500, FOLIO_ERR_ARG, "put_results '%s': pattern spec too long", id);
    if (res->sent_vecs) x.flags |= FOLIO_STORE_HAS_SENT_VECS;
    if (res->block_vecs) x.flags |= FOLIO_STORE_HAS_BLOCK_VECS;
    if (res->section_vecs) x.flags |= FOLIO_STORE_HAS_SECTION_VECS;
    if (res->doc_vec) x.flags |= FOLIO_STORE_HAS_DOC_VEC;
    if (res->salience) x.flags |= FOLIO_STORE_HAS_SALIENCE;
    FOLIO_CHECK_GENERIC(!(x.flags & ~(uint32_t)FOLIO_STORE_HAS_SALIENCE) || res->d > 0, FOLIO_ERR_ARG,
                        "put_results '%s': vectors given with width d = 0", id);
    return run_write_txn(s, put_results_body, &x, 0);
}
