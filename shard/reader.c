/* shard/reader.c — streams raw documents out of files, directories and
 * JSONL files.
 *
 * Rules (what a user can rely on):
 *  - Inputs are read in the order given.  A directory is walked depth-first,
 *    entries sorted by name (byte order, not locale), so every run sees the
 *    same documents in the same order.  Names starting with "." (hidden
 *    files and directories) are skipped.  Symbolic links are followed; a
 *    directory already visited under the same input (a symlink loop, or two
 *    links to one directory) is skipped with a warning, so the walk ends.
 *  - A file whose name ends in ".jsonl" holds one document per line:
 *    {"id": ..., "title": ..., "text": ...}, with "contents" accepted for
 *    "text".  Blank lines are skipped.  The id is the "id" member (a string,
 *    or a number written as JSON writes it); without one it is
 *    "FILE:LINE" (FILE as below).  Any other file is one text document.
 *  - Ids of files: the path relative to the directory given, or for a file
 *    given directly, its path as given.  doc->origin is the path as opened
 *    (with ":LINE" for JSONL), for messages.
 *  - Text must be valid UTF-8 without NUL bytes and must not look binary
 *    (folio_utf8_validate); a leading BOM is stripped.  Emptiness is not
 *    checked here (folio_doc_analyze returns FOLIO_ERR_EMPTY).
 *  - A bad input never stops the stream: folio_reader_next returns its
 *    status with doc->id / doc->origin set and a reason (which does not
 *    repeat the origin: print "origin: reason"), and the next call goes on.
 *  - Memory: a text file is read with one allocation of its size; a JSONL
 *    line is read with getline, parsed, and its decoded text is taken over
 *    from the parse tree without a copy; a line buffer that grew past 1 MiB
 *    is released after the line, so one 100 MB document costs about two
 *    times its size while it is read, and one time afterwards.
 */
#define _GNU_SOURCE
#include "shard.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINEBUF_KEEP (1u << 20)

typedef struct {
    char *path; /* as opened */
    char *id;   /* id of the file (relative path, or path as given) */
} item_t;

typedef struct {
    dev_t dev;
    ino_t ino;
} dirkey_t;

struct folio_reader {
    char **inputs;
    int n_inputs, next_input;
    item_t *stack;      /* pending paths; the top is the next one */
    size_t n_stack, cap_stack;
    dirkey_t *visited;  /* directories seen under the current input */
    size_t n_visited, cap_visited;
    /* the JSONL file being read */
    FILE *jf;
    char *jpath, *jid;
    size_t jline;
    char *line;
    size_t line_cap;
};

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = NULL;
    if (vasprintf(&p, fmt, ap) < 0) p = NULL;
    va_end(ap);
    return p;
}

static void set_reason(char *reason, size_t reasonlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_reason(char *reason, size_t reasonlen, const char *fmt, ...)
{
    if (!reason || !reasonlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, reasonlen, fmt, ap);
    va_end(ap);
}

static folio_status_t push_item(folio_reader_t *r, char *path, char *id)
{
    if (!path || !id) { free(path); free(id); return FOLIO_ERR_NOMEM; }
    if (r->n_stack == r->cap_stack) {
        size_t nc = r->cap_stack ? 2 * r->cap_stack : 16;
        item_t *p = realloc(r->stack, nc * sizeof *p);
        if (!p) { free(path); free(id); return FOLIO_ERR_NOMEM; }
        r->stack = p;
        r->cap_stack = nc;
    }
    r->stack[r->n_stack].path = path;
    r->stack[r->n_stack].id = id;
    r->n_stack++;
    return FOLIO_OK;
}

folio_status_t folio_reader_create(const char *const *inputs, int n_inputs, folio_reader_t **out)
{
    FOLIO_CHECK_GENERIC(out && (inputs || n_inputs == 0) && n_inputs >= 0, FOLIO_ERR_ARG,
                        "folio_reader_create: bad arguments");
    *out = NULL;
    folio_reader_t *r = calloc(1, sizeof *r);
    FOLIO_CHECK_ALLOC(r);
    r->inputs = calloc((size_t)n_inputs + 1, sizeof *r->inputs);
    if (!r->inputs) { free(r); return FOLIO_ERR_NOMEM; }
    r->n_inputs = n_inputs;
    for (int i = 0; i < n_inputs; i++) {
        r->inputs[i] = xstrdup(inputs[i] ? inputs[i] : "");
        if (!r->inputs[i]) { folio_reader_destroy(&r); return FOLIO_ERR_NOMEM; }
    }
    *out = r;
    return FOLIO_OK;
}

static void close_jsonl(folio_reader_t *r)
{
    if (r->jf) fclose(r->jf);
    r->jf = NULL;
    free(r->jpath);
    free(r->jid);
    r->jpath = r->jid = NULL;
    r->jline = 0;
}

void folio_reader_destroy(folio_reader_t **pr)
{
    if (!pr || !*pr) return;
    folio_reader_t *r = *pr;
    close_jsonl(r);
    for (int i = 0; i < r->n_inputs; i++) free(r->inputs[i]);
    free(r->inputs);
    for (size_t i = 0; i < r->n_stack; i++) { free(r->stack[i].path); free(r->stack[i].id); }
    free(r->stack);
    free(r->visited);
    free(r->line);
    free(r);
    *pr = NULL;
}

static bool ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

/* Validates text[0..*len), strips a BOM in place. */
static folio_status_t check_text(char *text, size_t *len, char *reason, size_t reasonlen)
{
    size_t bom = folio_utf8_bom_len(text, *len);
    if (bom) {
        memmove(text, text + bom, *len - bom);
        *len -= bom;
        text[*len] = 0;
    }
    return folio_utf8_validate(text, *len, reason, reasonlen);
}

/* Sets id and origin of a document (copies). */
static folio_status_t name_doc(folio_doc_t *doc, const char *id, const char *origin)
{
    free(doc->id);
    free(doc->origin);
    doc->id = xstrdup(id);
    doc->origin = xstrdup(origin);
    if (!doc->title) doc->title = xstrdup("");
    return doc->id && doc->origin && doc->title ? FOLIO_OK : FOLIO_ERR_NOMEM;
}

static folio_status_t read_text_file(const item_t *it, folio_doc_t *doc, char *reason, size_t reasonlen)
{
    FOLIO_TRY(name_doc(doc, it->id, it->path));
    int fd = open(it->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        set_reason(reason, reasonlen, "cannot open: %s", strerror(errno));
        return FOLIO_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        set_reason(reason, reasonlen, "cannot stat: %s", strerror(errno));
        close(fd);
        return FOLIO_ERR_IO;
    }
    if ((uint64_t)st.st_size >= UINT32_MAX) {
        set_reason(reason, reasonlen, "file too large: %lld bytes (a document is limited to 4 GiB - 1)",
                   (long long)st.st_size);
        close(fd);
        return FOLIO_ERR_TOO_LARGE;
    }
    size_t cap = (size_t)st.st_size, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf) { close(fd); return FOLIO_ERR_NOMEM; }
    for (;;) {
        if (len == cap) {
            /* the file grew while we read it: read on, up to the limit */
            if (cap >= UINT32_MAX - 1) break;
            size_t nc = cap ? cap * 2 : 4096;
            char *p = realloc(buf, nc + 1);
            if (!p) { free(buf); close(fd); return FOLIO_ERR_NOMEM; }
            buf = p;
            cap = nc;
        }
        ssize_t k = read(fd, buf + len, cap - len);
        if (k < 0) {
            if (errno == EINTR) continue;
            set_reason(reason, reasonlen, "read failed: %s", strerror(errno));
            free(buf);
            close(fd);
            return FOLIO_ERR_IO;
        }
        if (k == 0) break;
        len += (size_t)k;
    }
    close(fd);
    if (len >= UINT32_MAX) {
        free(buf);
        set_reason(reason, reasonlen, "file too large (a document is limited to 4 GiB - 1)");
        return FOLIO_ERR_TOO_LARGE;
    }
    buf[len] = 0;
    doc->text = buf;
    doc->len = len;
    folio_status_t s = check_text(doc->text, &doc->len, reason, reasonlen);
    if (s != FOLIO_OK) {
        free(doc->text);
        doc->text = NULL;
        doc->len = 0;
    }
    return s;
}

/* Steals a string member's buffer from the parse tree. */
static char *steal_str(const folio_json_t *obj, const char *key, size_t *len)
{
    folio_json_t *v = (folio_json_t *)folio_json_get(obj, key);
    if (!v || v->type != FOLIO_JSON_STR) return NULL;
    char *s = v->str;
    *len = v->len;
    v->str = NULL;
    v->len = 0;
    return s;
}

static folio_status_t jsonl_doc(folio_reader_t *r, char *line, size_t n, folio_doc_t *doc, char *reason,
                                size_t reasonlen)
{
    char *deflt = xasprintf("%s:%zu", r->jid, r->jline);
    char *origin = xasprintf("%s:%zu", r->jpath, r->jline);
    folio_status_t st = (deflt && origin) ? name_doc(doc, deflt, origin) : FOLIO_ERR_NOMEM;
    free(deflt);
    free(origin);
    if (st != FOLIO_OK) return st;
    if (n >= UINT32_MAX) {
        set_reason(reason, reasonlen, "line too long: %zu bytes (a document is limited to 4 GiB - 1)", n);
        return FOLIO_ERR_TOO_LARGE;
    }
    folio_json_t *v = NULL;
    char err[160];
    st = folio_json_parse(line, n, &v, err, sizeof err);
    if (st == FOLIO_ERR_NOMEM) return st;
    if (st != FOLIO_OK) {
        set_reason(reason, reasonlen, "malformed JSON line: %s", err);
        return FOLIO_ERR_PARSE;
    }
    if (v->type != FOLIO_JSON_OBJ) {
        set_reason(reason, reasonlen, "malformed JSONL line: not a JSON object");
        folio_json_free(&v);
        return FOLIO_ERR_PARSE;
    }
    /* id */
    const folio_json_t *idv = folio_json_get(v, "id");
    if (idv && idv->type == FOLIO_JSON_STR) {
        if (idv->len == 0 || memchr(idv->str, 0, idv->len) ||
            folio_utf8_validate(idv->str, idv->len, err, sizeof err) != FOLIO_OK) {
            set_reason(reason, reasonlen, "bad \"id\": %s", idv->len == 0 ? "empty string" : "not valid UTF-8 text");
            folio_json_free(&v);
            return FOLIO_ERR_PARSE;
        }
        free(doc->id);
        doc->id = xstrdup(idv->str);
    } else if (idv && idv->type == FOLIO_JSON_NUM) {
        free(doc->id);
        doc->id = (idv->num == (double)(long long)idv->num) ? xasprintf("%lld", (long long)idv->num)
                                                            : xasprintf("%.17g", idv->num);
    } else if (idv && idv->type != FOLIO_JSON_NULL) {
        set_reason(reason, reasonlen, "bad \"id\": must be a string or a number");
        folio_json_free(&v);
        return FOLIO_ERR_PARSE;
    }
    if (!doc->id) { folio_json_free(&v); return FOLIO_ERR_NOMEM; }
    /* title */
    size_t tl = 0;
    char *title = steal_str(v, "title", &tl);
    if (title) {
        if (memchr(title, 0, tl) || folio_utf8_validate(title, tl, err, sizeof err) != FOLIO_OK) {
            set_reason(reason, reasonlen, "bad \"title\": not valid UTF-8 text");
            free(title);
            folio_json_free(&v);
            return FOLIO_ERR_PARSE;
        }
        free(doc->title);
        doc->title = title;
    }
    /* text */
    size_t len = 0;
    const char *field = "text";
    char *text = steal_str(v, "text", &len);
    if (!text) { field = "contents"; text = steal_str(v, "contents", &len); }
    folio_json_free(&v);
    if (!text) {
        set_reason(reason, reasonlen, "no \"text\" (or \"contents\") string member");
        return FOLIO_ERR_PARSE;
    }
    doc->text = text;
    doc->len = len;
    char why[200];
    st = check_text(doc->text, &doc->len, why, sizeof why);
    if (st != FOLIO_OK) {
        set_reason(reason, reasonlen, "\"%s\": %s", field, why);
        free(doc->text);
        doc->text = NULL;
        doc->len = 0;
    }
    return st;
}

/* Next line of the open JSONL file: FOLIO_OK with a document or a rejected
 * line, FOLIO_EOF when the file is done. */
static folio_status_t next_jsonl(folio_reader_t *r, folio_doc_t *doc, char *reason, size_t reasonlen)
{
    for (;;) {
        errno = 0;
        ssize_t n = getline(&r->line, &r->line_cap, r->jf);
        if (n < 0) {
            folio_status_t st = FOLIO_EOF;
            if (ferror(r->jf)) {
                char *origin = xasprintf("%s:%zu", r->jpath, r->jline + 1);
                st = origin ? name_doc(doc, r->jid, origin) : FOLIO_ERR_NOMEM;
                free(origin);
                if (st == FOLIO_OK) {
                    set_reason(reason, reasonlen, "read failed: %s", strerror(errno ? errno : EIO));
                    st = FOLIO_ERR_IO;
                }
            }
            close_jsonl(r);
            return st;
        }
        r->jline++;
        char *s = r->line;
        size_t len = (size_t)n;
        if (r->jline == 1) {
            size_t bom = folio_utf8_bom_len(s, len);
            s += bom;
            len -= bom;
        }
        size_t k = 0;
        while (k < len && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r' || s[k] == '\n')) k++;
        if (k == len) continue; /* blank line: no document */
        folio_status_t st = jsonl_doc(r, s, len, doc, reason, reasonlen);
        if (r->line_cap > LINEBUF_KEEP) { /* do not hold on to a huge line */
            free(r->line);
            r->line = NULL;
            r->line_cap = 0;
        }
        return st;
    }
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Pushes the visible entries of a directory, sorted, so the first name is
 * on top of the stack. */
static folio_status_t expand_dir(folio_reader_t *r, const item_t *it, char *reason, size_t reasonlen)
{
    DIR *d = opendir(it->path);
    if (!d) {
        set_reason(reason, reasonlen, "cannot open directory: %s", strerror(errno));
        return FOLIO_ERR_IO;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    folio_status_t st = FOLIO_OK;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue; /* ".", "..", hidden entries */
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 32;
            char **p = realloc(names, nc * sizeof *p);
            if (!p) { st = FOLIO_ERR_NOMEM; break; }
            names = p;
            cap = nc;
        }
        if (!(names[n] = xstrdup(e->d_name))) { st = FOLIO_ERR_NOMEM; break; }
        n++;
    }
    if (st == FOLIO_OK && errno != 0 && e == NULL) {
        set_reason(reason, reasonlen, "cannot read directory: %s", strerror(errno));
        st = FOLIO_ERR_IO;
    }
    closedir(d);
    if (st == FOLIO_OK) {
        qsort(names, n, sizeof *names, cmp_names);
        bool slash = ends_with(it->path, "/");
        for (size_t i = n; i-- > 0 && st == FOLIO_OK;) {
            char *path = xasprintf(slash ? "%s%s" : "%s/%s", it->path, names[i]);
            char *id = it->id[0] ? xasprintf("%s/%s", it->id, names[i]) : xstrdup(names[i]);
            st = push_item(r, path, id);
        }
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return st;
}

/* Returns true if the directory was seen before under this input. */
static bool visited_before(folio_reader_t *r, const struct stat *st, bool *nomem)
{
    for (size_t i = 0; i < r->n_visited; i++)
        if (r->visited[i].dev == st->st_dev && r->visited[i].ino == st->st_ino) return true;
    if (r->n_visited == r->cap_visited) {
        size_t nc = r->cap_visited ? 2 * r->cap_visited : 16;
        dirkey_t *p = realloc(r->visited, nc * sizeof *p);
        if (!p) { *nomem = true; return true; }
        r->visited = p;
        r->cap_visited = nc;
    }
    r->visited[r->n_visited].dev = st->st_dev;
    r->visited[r->n_visited].ino = st->st_ino;
    r->n_visited++;
    return false;
}

folio_status_t folio_reader_next(folio_reader_t *r, folio_doc_t *doc, char *reason, size_t reasonlen)
{
    FOLIO_CHECK_GENERIC(r && doc, FOLIO_ERR_ARG, "folio_reader_next: NULL argument");
    if (reason && reasonlen) reason[0] = 0;
    for (;;) {
        if (r->jf) {
            folio_status_t st = next_jsonl(r, doc, reason, reasonlen);
            if (st != FOLIO_EOF) return st;
            continue;
        }
        if (r->n_stack == 0) {
            if (r->next_input >= r->n_inputs) return FOLIO_EOF;
            const char *in = r->inputs[r->next_input++];
            r->n_visited = 0; /* loops are detected per input */
            struct stat st;
            /* a directory given as input: ids relative to it */
            bool dir = stat(in, &st) == 0 && S_ISDIR(st.st_mode);
            FOLIO_TRY(push_item(r, xstrdup(in), xstrdup(dir ? "" : in)));
        }
        item_t it = r->stack[--r->n_stack];
        folio_status_t res = FOLIO_OK;
        bool produced = false;
        struct stat st;
        if (stat(it.path, &st) != 0) {
            res = name_doc(doc, it.id[0] ? it.id : it.path, it.path);
            if (res == FOLIO_OK) {
                set_reason(reason, reasonlen, "cannot access: %s", strerror(errno));
                res = FOLIO_ERR_IO;
            }
            produced = true;
        } else if (S_ISDIR(st.st_mode)) {
            bool nomem = false;
            if (visited_before(r, &st, &nomem)) {
                if (nomem) res = FOLIO_ERR_NOMEM, produced = true;
                else folio_log(FOLIO_LOG_WARN, "%s: directory already visited (symbolic link loop?), skipped",
                               it.path);
            } else {
                char why[256] = "";
                res = expand_dir(r, &it, why, sizeof why);
                if (res != FOLIO_OK) {
                    produced = true;
                    if (res == FOLIO_ERR_IO && name_doc(doc, it.id[0] ? it.id : it.path, it.path) == FOLIO_OK)
                        set_reason(reason, reasonlen, "%s", why);
                }
            }
        } else if (S_ISREG(st.st_mode) && ends_with(it.path, ".jsonl")) {
            FILE *f = fopen(it.path, "re");
            if (!f) {
                res = name_doc(doc, it.id, it.path);
                if (res == FOLIO_OK) {
                    set_reason(reason, reasonlen, "cannot open: %s", strerror(errno));
                    res = FOLIO_ERR_IO;
                }
                produced = true;
            } else {
                r->jf = f;
                r->jpath = it.path;
                r->jid = it.id;
                r->jline = 0;
                it.path = it.id = NULL; /* now owned by the reader */
            }
        } else if (S_ISREG(st.st_mode)) {
            res = read_text_file(&it, doc, reason, reasonlen);
            produced = true;
        } else {
            res = name_doc(doc, it.id, it.path);
            if (res == FOLIO_OK) {
                set_reason(reason, reasonlen, "not a regular file or directory");
                res = FOLIO_ERR_IO;
            }
            produced = true;
        }
        free(it.path);
        free(it.id);
        if (produced || res == FOLIO_ERR_NOMEM) return res;
    }
}
