/* cli/main.c — the folio binary: dispatch to subcommands. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FOLIO_VERSION
#define FOLIO_VERSION "dev"
#endif

static const char *const USAGE =
    "usage: folio <command> [options] [args]\n"
    "\n"
    "folio turns archives of very long documents into a searchable, summarized\n"
    "LMDB store using sparse attention, as one process or an MPI batch job.\n"
    "\n"
    "commands:\n"
    "  ingest     read files, directories or JSONL into the store (mpirun-aware)\n"
    "  summarize  extractive summary of a stored document (or --all)\n"
    "  ask        answer a question from one document or the whole store\n"
    "  stats      counts and sizes of the store\n"
    "  export     deterministic JSONL dump of the store\n"
    "  check      verify every invariant of the store (exit 1 on any fault)\n"
    "  eval       evaluate: 'eval summarize', 'eval qa', 'eval pattern'\n"
    "  bench      benchmarks: 'bench attn'\n"
    "\n"
    "Every command takes --help.  --db defaults to $FOLIO_DB, else ./folio.lmdb.\n"
    "Exit status: 0 success, 1 failure (or a document ended in error), 2 usage error.\n";

const char *cli_default_db(void)
{
    const char *e = getenv("FOLIO_DB");
    return (e && *e) ? e : "./folio.lmdb";
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "folio %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'folio %s --help'.\n", cmd);
    return FOLIO_EXIT_USAGE;
}

bool cli_parse_long(const char *s, long min, long max, long *out)
{
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max) return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(USAGE, stderr);
        return FOLIO_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(USAGE, stdout);
        return FOLIO_EXIT_OK;
    }
    if (!strcmp(cmd, "--version")) {
        printf("folio %s\n", FOLIO_VERSION);
        return FOLIO_EXIT_OK;
    }
    static const struct { const char *name; int (*fn)(int, char **); } cmds[] = {
        {"ingest", cmd_ingest}, {"summarize", cmd_summarize}, {"ask", cmd_ask},
        {"stats", cmd_stats},   {"export", cmd_export},       {"check", cmd_check},
        {"bench", cmd_bench},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(cmd, cmds[i].name)) return cmds[i].fn(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval")) {
        const char *sub = argc > 2 ? argv[2] : "";
        if (!strcmp(sub, "summarize")) return cmd_eval_summarize(argc - 2, argv + 2);
        if (!strcmp(sub, "qa")) return cmd_eval_qa(argc - 2, argv + 2);
        if (!strcmp(sub, "pattern")) return cmd_eval_pattern(argc - 2, argv + 2);
        int help = !strcmp(sub, "--help") || !strcmp(sub, "-h");
        fputs("usage: folio eval summarize|qa|pattern [options]\n"
              "  summarize  ROUGE-1/2/Lsum of summaries against references (--data F.jsonl)\n"
              "  qa         passage retrieval hit@k and MRR (--data F.jsonl)\n"
              "  pattern    per attention pattern: keys/query, fidelity vs dense, ms\n",
              help ? stdout : stderr);
        return help ? FOLIO_EXIT_OK : FOLIO_EXIT_USAGE;
    }
    if (!strcmp(cmd, "serve") || !strcmp(cmd, "query")) {
        fprintf(stderr, "folio: '%s' (the ZeroMQ service) is not built yet in this version\n", cmd);
        return FOLIO_EXIT_FAIL;
    }
    fprintf(stderr, "folio: unknown command '%s'\n\n%s", cmd, USAGE);
    return FOLIO_EXIT_USAGE;
}
