/* cli/cmd_attn.c — placeholder until its owner lands the real commands. */
#include "cli.h"
#include <stdio.h>
int cmd_eval_pattern(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "folio: eval_pattern: not implemented yet\n"); return FOLIO_EXIT_FAIL; }
int cmd_bench(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "folio: bench: not implemented yet\n"); return FOLIO_EXIT_FAIL; }
