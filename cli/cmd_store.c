/* cli/cmd_store.c — `folio stats`, `folio export`, `folio check`: read-only
 * views of the store (store/store.h). */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../store/store.h"

static const char *const STATS_HELP =
    "usage: folio stats [--db P] [--json]\n"
    "\n"
    "Counts and sizes of the store: documents, duplicates, tokens, sentences,\n"
    "sections, text bytes, distinct index terms, postings, summaries, bytes\n"
    "used of the LMDB map, and the attention pattern(s) the stored vectors\n"
    "were computed with (with their document counts).\n"
    "\n"
    "options:\n"
    "  --db P      store directory (default $FOLIO_DB, else ./folio.lmdb)\n"
    "  --json      one JSON object on stdout:\n"
    "              {\"documents\":N,\"duplicates\":N,\"tokens\":N,\"sentences\":N,\n"
    "               \"sections\":N,\"bytes\":N,\"terms\":N,\"postings\":N,\"summaries\":N,\n"
    "               \"avg_doc_tokens\":X,\"store_bytes\":N,\"map_bytes\":N,\n"
    "               \"patterns\":{\"SPEC\":N,...}}\n"
    "  -h, --help  this text\n"
    "\n"
    "Exit status: 0 success, 1 the store cannot be read, 2 usage error.\n";

static const char *const EXPORT_HELP =
    "usage: folio export [--db P] [--vectors] [--text]\n"
    "\n"
    "Deterministic JSONL dump of the store on stdout.  Two stores holding the\n"
    "same documents export byte-identically, whatever the order they were\n"
    "ingested in (internal document numbers are never printed; but of two\n"
    "inputs with equal content, the first one read is stored and the other is\n"
    "recorded as its duplicate).\n"
    "\n"
    "Lines, in this order:\n"
    "  one per document, in id order (bytewise):\n"
    "    {\"id\",\"title\",\"hash\" (128-bit content hash, hex),\"bytes\",\"tokens\",\n"
    "     \"terms\" (distinct index terms),\"blocks\",\"d\" (vector width),\"pattern\",\n"
    "     \"sentences\":[[start,end,tok_begin,tok_end,section],...] (byte offsets\n"
    "       into the original text, token range, section index),\n"
    "     \"sections\":[[start,end,title_start,title_end,sent_begin,sent_end,level],...],\n"
    "     \"salience\":[...] or null}\n"
    "  one per duplicate record, in id order:\n"
    "    {\"duplicate\":ID,\"of\":ID,\"hash\":HEX,\"origin\":WHERE}\n"
    "  one per stored summary, in id order:  {\"summary_of\":ID,\"summary\":JSON}\n"
    "Floats are printed with 9 significant digits (trailing zeros dropped),\n"
    "which parse back to exactly the stored float.\n"
    "\n"
    "options:\n"
    "  --db P      store directory (default $FOLIO_DB, else ./folio.lmdb)\n"
    "  --vectors   add \"sent_vecs\",\"block_vecs\",\"section_vecs\" (arrays of rows)\n"
    "              and \"doc_vec\" to document lines (null when not stored)\n"
    "  --text      add the original \"text\" to document lines\n"
    "  -h, --help  this text\n"
    "\n"
    "Exit status: 0 success, 1 the store cannot be read or is damaged, 2 usage error.\n";

static const char *const CHECK_HELP =
    "usage: folio check [--db P] [--deep] [--max-faults N] [--json]\n"
    "\n"
    "Verifies every invariant of the store schema (store/store.h) in one\n"
    "consistent snapshot: every document record has its done-marker and vice\n"
    "versa; record sizes and counts match the arrays; sentence spans lie in\n"
    "the text, in order; sections partition the sentences; the hash of the\n"
    "stored text equals the stored hash; the hash index and the documents\n"
    "agree; postings, per-document term lists and document frequencies agree;\n"
    "vectors and salience have the right sizes and finite values; duplicates\n"
    "point at stored documents with the same content; no record belongs to a\n"
    "missing document; the global counters and pattern counts match.\n"
    "\n"
    "Each fault is printed on stderr as 'fault: ...'.\n"
    "\n"
    "options:\n"
    "  --db P            store directory (default $FOLIO_DB, else ./folio.lmdb)\n"
    "  --deep            also re-tokenize every text and verify token counts,\n"
    "                    sentence token ranges and the index terms against it\n"
    "                    (slower: a tokenization of the whole store)\n"
    "  --max-faults N    print at most N faults (default 100; all are counted)\n"
    "  --json            also print {\"ok\":true|false,\"faults\":N,\"documents\":N} on stdout\n"
    "  -h, --help        this text\n"
    "\n"
    "Exit status: 0 no fault, 1 any fault (or the store cannot be read), 2 usage error.\n";

static int open_ro(const char *db, folio_store_t **s)
{
    folio_store_opts_t o = {.readonly = true};
    folio_status_t st = folio_store_open(db, &o, s);
    if (st != FOLIO_OK) {
        fprintf(stderr, "folio: cannot open store '%s': %s\n", db, folio_status_str(st));
        return FOLIO_EXIT_FAIL;
    }
    return FOLIO_EXIT_OK;
}

/* ------------------------------------------------------------ stats */

typedef struct {
    bool json;
    int n;
} pat_print_t;

static int print_pattern(const char *spec, uint64_t n_docs, void *ctx)
{
    pat_print_t *p = ctx;
    if (p->json) {
        if (p->n++) fputc(',', stdout);
        folio_json_write_str(stdout, spec, strlen(spec));
        printf(":%llu", (unsigned long long)n_docs);
    } else {
        printf("pattern:        %s (%llu documents)\n", spec, (unsigned long long)n_docs);
        p->n++;
    }
    return 0;
}

int cmd_stats(int argc, char **argv)
{
    const char *db = cli_default_db();
    bool json = false;
    static const struct option opts[] = {
        {"db", required_argument, 0, 'd'}, {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'j': json = true; break;
        case 'h': fputs(STATS_HELP, stdout); return FOLIO_EXIT_OK;
        default: return cli_usage_error("stats", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("stats", "unexpected argument '%s'", argv[optind]);
    folio_store_t *s = NULL;
    int rc = open_ro(db, &s);
    if (rc) return rc;
    folio_store_info_t in;
    folio_status_t st = folio_store_info(s, &in);
    folio_store_reader_t *r = NULL;
    if (st == FOLIO_OK) st = folio_store_reader_open(s, &r);
    if (st != FOLIO_OK) {
        fprintf(stderr, "folio stats: reading store '%s': %s\n", db, folio_status_str(st));
        folio_store_close(&s);
        return FOLIO_EXIT_FAIL;
    }
    pat_print_t pp = {json, 0};
    if (json) {
        printf("{\"documents\":%llu,\"duplicates\":%llu,\"tokens\":%llu,\"sentences\":%llu,\"sections\":%llu,"
               "\"bytes\":%llu,\"terms\":%llu,\"postings\":%llu,\"summaries\":%llu,\"avg_doc_tokens\":%.3f,"
               "\"store_bytes\":%llu,\"map_bytes\":%llu,\"patterns\":{",
               (unsigned long long)in.n_docs, (unsigned long long)in.n_duplicates, (unsigned long long)in.n_tokens,
               (unsigned long long)in.n_sents, (unsigned long long)in.n_sections, (unsigned long long)in.n_bytes,
               (unsigned long long)in.n_terms, (unsigned long long)in.n_postings,
               (unsigned long long)in.n_summaries, in.avg_doc_tokens, (unsigned long long)in.used_bytes,
               (unsigned long long)in.map_bytes);
        st = folio_store_iter_patterns(r, print_pattern, &pp);
        printf("}}\n");
    } else {
        printf("store:          %s\n", db);
        printf("documents:      %llu\n", (unsigned long long)in.n_docs);
        printf("duplicates:     %llu\n", (unsigned long long)in.n_duplicates);
        printf("tokens:         %llu (%.1f per document)\n", (unsigned long long)in.n_tokens, in.avg_doc_tokens);
        printf("sentences:      %llu\n", (unsigned long long)in.n_sents);
        printf("sections:       %llu\n", (unsigned long long)in.n_sections);
        printf("text bytes:     %llu\n", (unsigned long long)in.n_bytes);
        printf("distinct terms: %llu\n", (unsigned long long)in.n_terms);
        printf("postings:       %llu\n", (unsigned long long)in.n_postings);
        printf("summaries:      %llu\n", (unsigned long long)in.n_summaries);
        printf("store bytes:    %llu used of a %llu-byte map (%.1f%%)\n", (unsigned long long)in.used_bytes,
               (unsigned long long)in.map_bytes, in.map_bytes ? 100.0 * (double)in.used_bytes / (double)in.map_bytes : 0.0);
        st = folio_store_iter_patterns(r, print_pattern, &pp);
        if (pp.n == 0) printf("pattern:        (no vectors stored)\n");
    }
    folio_store_reader_close(&r);
    folio_store_close(&s);
    if (fflush(stdout) != 0 || st != FOLIO_OK) return FOLIO_EXIT_FAIL;
    return FOLIO_EXIT_OK;
}

/* ------------------------------------------------------------ export */

int cmd_export(int argc, char **argv)
{
    const char *db = cli_default_db();
    folio_store_export_opts_t eo = {0};
    static const struct option opts[] = {
        {"db", required_argument, 0, 'd'}, {"vectors", no_argument, 0, 'v'}, {"text", no_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},     {0, 0, 0, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'v': eo.vectors = true; break;
        case 't': eo.text = true; break;
        case 'h': fputs(EXPORT_HELP, stdout); return FOLIO_EXIT_OK;
        default: return cli_usage_error("export", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("export", "unexpected argument '%s'", argv[optind]);
    folio_store_t *s = NULL;
    int rc = open_ro(db, &s);
    if (rc) return rc;
    folio_status_t st = folio_store_export(s, &eo, stdout);
    folio_store_close(&s);
    if (st != FOLIO_OK) {
        fprintf(stderr, "folio export: store '%s': %s\n", db, folio_status_str(st));
        return FOLIO_EXIT_FAIL;
    }
    return FOLIO_EXIT_OK;
}

/* ------------------------------------------------------------ check */

int cmd_check(int argc, char **argv)
{
    const char *db = cli_default_db();
    long max_faults = 100;
    bool json = false;
    static const struct option opts[] = {
        {"db", required_argument, 0, 'd'}, {"max-faults", required_argument, 0, 'm'},
        {"json", no_argument, 0, 'j'},     {"help", no_argument, 0, 'h'},
        {"deep", no_argument, 0, 'D'},     {0, 0, 0, 0},
    };
    bool deep = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'm':
            if (!cli_parse_long(optarg, 0, 1000000000L, &max_faults))
                return cli_usage_error("check", "--max-faults needs a non-negative number, not '%s'", optarg);
            break;
        case 'j': json = true; break;
        case 'D': deep = true; break;
        case 'h': fputs(CHECK_HELP, stdout); return FOLIO_EXIT_OK;
        default: return cli_usage_error("check", "unknown option");
        }
    }
    if (optind < argc) return cli_usage_error("check", "unexpected argument '%s'", argv[optind]);
    folio_store_t *s = NULL;
    int rc = open_ro(db, &s);
    if (rc) return rc;
    uint64_t faults = 0;
    folio_store_info_t in = {0};
    folio_status_t st = folio_store_check_ex(s, deep, stderr, (uint64_t)max_faults, &faults);
    if (st == FOLIO_OK) folio_store_info(s, &in);
    folio_store_close(&s);
    if (st != FOLIO_OK) {
        fprintf(stderr, "folio check: store '%s' could not be checked: %s\n", db, folio_status_str(st));
        return FOLIO_EXIT_FAIL;
    }
    if (json)
        printf("{\"ok\":%s,\"faults\":%llu,\"documents\":%llu}\n", faults ? "false" : "true",
               (unsigned long long)faults, (unsigned long long)in.n_docs);
    if (faults) {
        fprintf(stderr, "folio check: store '%s': %llu fault%s\n", db, (unsigned long long)faults,
                faults == 1 ? "" : "s");
        return FOLIO_EXIT_FAIL;
    }
    fprintf(stderr, "folio check: store '%s': ok (%llu documents, %llu duplicates)\n", db,
            (unsigned long long)in.n_docs, (unsigned long long)in.n_duplicates);
    return FOLIO_EXIT_OK;
}
