/* cli/cmd_jobs.c — placeholder until its owner lands the real commands. */
#include "cli.h"
#include <stdio.h>
int cmd_summarize(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "folio: summarize: not implemented yet\n"); return FOLIO_EXIT_FAIL; }
int cmd_ask(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "folio: ask: not implemented yet\n"); return FOLIO_EXIT_FAIL; }
int cmd_eval_summarize(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "folio: eval_summarize: not implemented yet\n"); return FOLIO_EXIT_FAIL; }
int cmd_eval_qa(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "folio: eval_qa: not implemented yet\n"); return FOLIO_EXIT_FAIL; }
