/* cli/cmd_store.c — placeholder until its owner lands the real commands. */
#include "cli.h"
#include <stdio.h>
int cmd_stats(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "folio: stats: not implemented yet\n"); return FOLIO_EXIT_FAIL; }
int cmd_export(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "folio: export: not implemented yet\n"); return FOLIO_EXIT_FAIL; }
int cmd_check(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "folio: check: not implemented yet\n"); return FOLIO_EXIT_FAIL; }
