/* tests/unit/test_shard_reader.c — the reader over a temporary directory of
 * good and bad inputs: order, ids, hidden entries, BOM, JSONL lines (good,
 * malformed, "contents", missing id, NUL escape, numeric id), invalid UTF-8,
 * binary, NUL, empty and whitespace-only files, a dangling symlink, a
 * symlink loop, an unreadable file (chmod 000; as root, who reads anything,
 * /proc/self/mem), and files given directly. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_shard_common.h"

static char root[256];

static void put(const char *rel, const void *data, size_t n)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    FILE *f = fopen(p, "wb");
    cr_assert(f, "cannot create %s", p);
    if (n) cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}
#define PUTS(rel, s) put(rel, s, sizeof(s) - 1)

static void mkd(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    cr_assert_eq(mkdir(p, 0755), 0, "mkdir %s", p);
}

static void make_tree(void)
{
    strcpy(root, "/tmp/folio-shard-reader-XXXXXX");
    cr_assert(mkdtemp(root));
    PUTS("a.txt", "Alpha text. It has two sentences.\n");
    PUTS("b.md", "\xEF\xBB\xBF# Title\n\nBody with a BOM.\n");
    PUTS("bad_utf8.txt", "Latin\xE9-1 text");
    unsigned char bin[2048];
    uint64_t seed = 1;
    for (size_t i = 0; i < sizeof bin; i++) bin[i] = (unsigned char)folio_splitmix64(&seed);
    put("binary.bin", bin, sizeof bin);
    PUTS("docs.jsonl", "{\"id\":\"j1\",\"title\":\"T1\",\"text\":\"Hello world.\"}\n"
                       "{\"id\":\"j2\",\"contents\":\"Contents field.\"}\n"
                       "{not json\n"
                       "{\"title\":\"no id\",\"text\":\"Missing id.\"}\n"
                       "{\"id\":\"j5\",\"text\":\"bad \\u0000 nul\"}\n"
                       "\n"
                       "{\"id\":5,\"text\":\"numeric id\"}\n"
                       "{\"id\":\"j8\"}\n"
                       "[1,2]\n"
                       "{\"id\":\"j10\",\"text\":\"caf\\u00e9 \\ud83d\\ude00 ok\"}");  /* no final newline */
    PUTS("empty.txt", "");
    put("nul.txt", "abc\0def", 7);
    PUTS("ws.txt", "  \n\t \r\n");
    PUTS(".hidden.txt", "hidden");
    mkd(".hiddendir");
    PUTS(".hiddendir/x.txt", "hidden too");
    mkd("sub");
    PUTS("sub/c.txt", "Charlie.");
    mkd("sub/deeper");
    PUTS("sub/deeper/d.txt", "Delta.");
    char p[512], t[512];
    snprintf(p, sizeof p, "%s/sub/loop", root);
    cr_assert_eq(symlink("..", p), 0);           /* sub/loop -> root: a loop */
    snprintf(p, sizeof p, "%s/zz_dangling", root);
    cr_assert_eq(symlink("/nonexistent/folio/x", p), 0);
    snprintf(p, sizeof p, "%s/sub/deeper/link.txt", root);
    snprintf(t, sizeof t, "%s/a.txt", root);
    cr_assert_eq(symlink(t, p), 0);              /* a symlinked file is read */
}

static void rm_tree(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    cr_assert_eq(system(cmd), 0);
}

typedef struct { const char *id; folio_status_t st; const char *why; } want_t;

Test(shard_reader, directory_of_good_and_bad_inputs)
{
    make_tree();
    const char *in[] = { root };
    folio_reader_t *r;
    cr_assert_eq(folio_reader_create(in, 1, &r), FOLIO_OK);
    const want_t want[] = {
        { "a.txt", FOLIO_OK, NULL },
        { "b.md", FOLIO_OK, NULL },
        { "bad_utf8.txt", FOLIO_ERR_UTF8, "invalid UTF-8 at byte 5" },
        { "binary.bin", FOLIO_ERR_BINARY, "binary" },
        { "j1", FOLIO_OK, NULL },
        { "j2", FOLIO_OK, NULL },
        { "docs.jsonl:3", FOLIO_ERR_PARSE, "malformed JSON" },
        { "docs.jsonl:4", FOLIO_OK, NULL },
        { "j5", FOLIO_ERR_NUL, "NUL byte at byte 4" },
        { "5", FOLIO_OK, NULL },
        { "j8", FOLIO_ERR_PARSE, "no \"text\"" },
        { "docs.jsonl:9", FOLIO_ERR_PARSE, "not a JSON object" },
        { "j10", FOLIO_OK, NULL },
        { "empty.txt", FOLIO_OK, NULL },
        { "nul.txt", FOLIO_ERR_NUL, "NUL byte at byte 3" },
        { "sub/c.txt", FOLIO_OK, NULL },
        { "sub/deeper/d.txt", FOLIO_OK, NULL },
        { "sub/deeper/link.txt", FOLIO_OK, NULL },
        /* sub/loop: skipped with a warning */
        { "ws.txt", FOLIO_OK, NULL },
        { "zz_dangling", FOLIO_ERR_IO, "cannot access: No such file or directory" },
    };
    size_t nw = sizeof want / sizeof want[0], k = 0;
    char why[256];
    for (;;) {
        folio_doc_t d = { 0 };
        folio_status_t st = folio_reader_next(r, &d, why, sizeof why);
        if (st == FOLIO_EOF) { folio_doc_clear(&d); break; }
        cr_assert(k < nw, "extra document %s (%s)", d.id, d.origin);
        cr_assert_str_eq(d.id, want[k].id, "document %zu", k);
        cr_assert_eq(st, want[k].st, "%s: status %s (%s), want %s", d.id, folio_status_str(st), why,
                     folio_status_str(want[k].st));
        cr_assert(d.origin && strstr(d.origin, root), "%s: origin %s", d.id, d.origin);
        if (want[k].why) cr_assert(strstr(why, want[k].why), "%s: reason '%s' lacks '%s'", d.id, why, want[k].why);
        if (st == FOLIO_OK) {
            cr_assert(d.text && d.title, "%s", d.id);
            cr_assert_eq(strlen(d.text), d.len, "%s", d.id);
            cr_assert_str_empty(why);
        }
        /* specific contents */
        if (!strcmp(d.id, "b.md")) cr_assert_str_eq(d.text, "# Title\n\nBody with a BOM.\n", "BOM stripped");
        if (!strcmp(d.id, "j1")) { cr_assert_str_eq(d.title, "T1"); cr_assert_str_eq(d.text, "Hello world."); }
        if (!strcmp(d.id, "j2")) cr_assert_str_eq(d.text, "Contents field.");
        if (!strcmp(d.id, "j10")) cr_assert_str_eq(d.text, "caf\xC3\xA9 \xF0\x9F\x98\x80 ok");
        if (!strcmp(d.id, "docs.jsonl:3")) cr_assert(strstr(d.origin, "docs.jsonl:3"), "%s", d.origin);
        if (!strcmp(d.id, "sub/deeper/link.txt")) cr_assert_str_eq(d.text, "Alpha text. It has two sentences.\n");
        /* emptiness is analyze's business */
        if (!strcmp(d.id, "empty.txt") || !strcmp(d.id, "ws.txt")) cr_assert_eq(folio_doc_analyze(&d), FOLIO_ERR_EMPTY);
        else if (st == FOLIO_OK) {
            cr_assert_eq(folio_doc_analyze(&d), FOLIO_OK, "%s", d.id);
            tsh_check_doc(&d, d.id);
        }
        folio_doc_clear(&d);
        k++;
    }
    cr_assert_eq(k, nw, "%zu documents, want %zu", k, nw);
    /* EOF is sticky */
    folio_doc_t d = { 0 };
    cr_assert_eq(folio_reader_next(r, &d, why, sizeof why), FOLIO_EOF);
    folio_reader_destroy(&r);
    cr_assert_null(r);
    folio_reader_destroy(&r);
    rm_tree();
}

Test(shard_reader, files_given_directly_and_missing_paths)
{
    make_tree();
    char a[512], j[512], missing[512], sub[512];
    snprintf(a, sizeof a, "%s/a.txt", root);
    snprintf(j, sizeof j, "%s/docs.jsonl", root);
    snprintf(missing, sizeof missing, "%s/nope.txt", root);
    snprintf(sub, sizeof sub, "%s/sub/", root);
    const char *in[] = { a, missing, sub, j };
    folio_reader_t *r;
    cr_assert_eq(folio_reader_create(in, 4, &r), FOLIO_OK);
    char why[256];
    folio_doc_t d = { 0 };
    cr_assert_eq(folio_reader_next(r, &d, why, sizeof why), FOLIO_OK);
    cr_assert_str_eq(d.id, a, "a file given directly keeps its path as id");
    folio_doc_clear(&d);
    cr_assert_eq(folio_reader_next(r, &d, why, sizeof why), FOLIO_ERR_IO);
    cr_assert_str_eq(d.id, missing);
    cr_assert(strstr(why, "No such file"), "%s", why);
    folio_doc_clear(&d);
    cr_assert_eq(folio_reader_next(r, &d, why, sizeof why), FOLIO_OK);
    cr_assert_str_eq(d.id, "c.txt", "ids relative to the directory given");
    char origin[600];
    snprintf(origin, sizeof origin, "%s/sub/c.txt", root);
    cr_assert_str_eq(d.origin, origin);
    folio_doc_clear(&d);
    cr_assert_eq(folio_reader_next(r, &d, why, sizeof why), FOLIO_OK);
    cr_assert_str_eq(d.id, "deeper/d.txt");
    folio_doc_clear(&d);
    cr_assert_eq(folio_reader_next(r, &d, why, sizeof why), FOLIO_OK);
    cr_assert_str_eq(d.id, "deeper/link.txt");
    folio_doc_clear(&d);
    /* sub/loop -> root: a different directory, walked once (root's own
     * "sub" is then recognized as visited) */
    int n = 0;
    folio_status_t st;
    bool saw_j1 = false, saw_missing_id = false;
    while ((st = folio_reader_next(r, &d, why, sizeof why)) != FOLIO_EOF) {
        if (d.id && !strcmp(d.id, "j1")) saw_j1 = true;
        char expect[600];
        snprintf(expect, sizeof expect, "%s:4", j);
        if (d.id && !strcmp(d.id, expect)) saw_missing_id = true;
        folio_doc_clear(&d);
        cr_assert(++n < 100, "the walk must end");
    }
    cr_assert(saw_j1);
    cr_assert(saw_missing_id, "a JSONL given directly names id-less lines PATH:LINE");
    folio_reader_destroy(&r);
    rm_tree();
}

Test(shard_reader, unreadable_file)
{
    char why[256];
    folio_doc_t d = { 0 };
    folio_reader_t *r;
    if (geteuid() == 0) {
        /* root reads a chmod 000 file, so use a file no one can read:
         * /proc/self/mem is a regular file whose read at offset 0 fails
         * (EIO: page 0 is never mapped) */
        const char *in[] = { "/proc/self/mem" };
        cr_assert_eq(folio_reader_create(in, 1, &r), FOLIO_OK);
        cr_assert_eq(folio_reader_next(r, &d, why, sizeof why), FOLIO_ERR_IO);
        cr_assert_str_eq(d.id, "/proc/self/mem");
        cr_assert(strstr(why, "read failed"), "%s", why);
        folio_doc_clear(&d);
        cr_assert_eq(folio_reader_next(r, &d, why, sizeof why), FOLIO_EOF);
        folio_reader_destroy(&r);
        return;
    }
    make_tree();
    char p[512];
    snprintf(p, sizeof p, "%s/a.txt", root);
    cr_assert_eq(chmod(p, 0), 0);
    const char *in[] = { p };
    cr_assert_eq(folio_reader_create(in, 1, &r), FOLIO_OK);
    cr_assert_eq(folio_reader_next(r, &d, why, sizeof why), FOLIO_ERR_IO);
    cr_assert(strstr(why, "Permission denied"), "%s", why);
    folio_doc_clear(&d);
    folio_reader_destroy(&r);
    chmod(p, 0644);
    rm_tree();
}

Test(shard_reader, big_jsonl_line_streams)
{
    /* a 3 MB document on one JSONL line, then a small one: both come out,
     * and the text is the decoded string, byte for byte */
    make_tree();
    size_t n = 3u << 20;
    char *line = malloc(n + 64);
    size_t k = (size_t)sprintf(line, "{\"id\":\"big\",\"text\":\"");
    for (size_t i = 0; i < n; i++) line[k++] = (i % 7 == 6) ? ' ' : (char)('a' + i % 26);
    k += (size_t)sprintf(line + k, "\"}\n{\"id\":\"small\",\"text\":\"x\"}\n");
    put("big.jsonl", line, k);
    free(line);
    char p[512];
    snprintf(p, sizeof p, "%s/big.jsonl", root);
    const char *in[] = { p };
    folio_reader_t *r;
    cr_assert_eq(folio_reader_create(in, 1, &r), FOLIO_OK);
    char why[256];
    folio_doc_t d = { 0 };
    cr_assert_eq(folio_reader_next(r, &d, why, sizeof why), FOLIO_OK, "%s", why);
    cr_assert_str_eq(d.id, "big");
    cr_assert_eq(d.len, n);
    cr_assert_eq(d.text[7], 'h');
    cr_assert_eq(folio_doc_analyze(&d), FOLIO_OK);
    tsh_check_doc(&d, "big");
    folio_doc_clear(&d);
    cr_assert_eq(folio_reader_next(r, &d, why, sizeof why), FOLIO_OK);
    cr_assert_str_eq(d.id, "small");
    folio_doc_clear(&d);
    cr_assert_eq(folio_reader_next(r, &d, why, sizeof why), FOLIO_EOF);
    folio_reader_destroy(&r);
    rm_tree();
}
